"""The guardians' web page: a vault's state, its requests with a live countdown, approve and veto.

Server-rendered HTML with one inline stylesheet and one inline script, no build step and no
external assets. Every value that reaches the page (labels, policy names, keys, the typed data)
is HTML-escaped, and a strict Content-Security-Policy allows only the inline style and script
that carry this response's nonce, so a hostile guardian label stays text.

The page never holds a key. For each open request it shows the exact ``lifeboat recovery`` CLI
command and the EIP-712 typed data (``eth_signTypedData_v4``) of an Approve and of a Veto, each
with a fresh random nonce and a one-hour lifetime on the service clock. A guardian signs either
way, pastes the signature and their key text; the script assembles the signed message exactly as
:func:`lifeboat.recovery.messages.signed_to_json` does and POSTs it to ``/v1/actions``, the one
door every action goes through, then shows the result or the problem's detail.
"""

from __future__ import annotations

import html
import json
import secrets
import shlex
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from lifeboat.errors import LifeboatError
from lifeboat.recovery import messages, policy
from lifeboat.recovery.config import Policy
from lifeboat.recovery.db import VaultNotFound
from lifeboat.recovery.keys import PublicKey
from lifeboat.recovery.service import actions

__all__ = ["router"]

#: A message signed on the page is valid from a minute before the service's now (clock skew
#: between signer and service) until an hour after it.
NOT_BEFORE_SLACK: Final = 60
LIFETIME: Final = 3600

router = APIRouter(include_in_schema=False)


def _e(value: object) -> str:
    """HTML-escape anything for text and double-quoted attributes."""
    return html.escape(str(value), quote=True)


def _duration(seconds: int) -> str:
    seconds = max(0, seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}d {clock}" if days else clock


def _when(at: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))


@dataclass(frozen=True)
class _View:
    """What one render needs: the nonce of this response and the service's base URL and now."""

    nonce: str
    base_url: str
    now: int


# --- the service's data ------------------------------------------------------------------------


def _now(request: Request) -> int:
    return int(request.app.state.service.database.now())


def _identity(request: Request) -> messages.Service:
    identity: messages.Service = request.app.state.service.identity
    return identity


def _load_state(request: Request, vault: bytes) -> tuple[int, policy.VaultState]:
    """(the service's now, the vault's state advanced to it), as ``GET /v1/vaults/{vault}`` reads it."""
    _version, now, state = actions.view_vault(request.app.state.service.database, vault)
    return now, state


# --- the page ------------------------------------------------------------------------------------

_STYLE: Final = """
:root{--fg:#1d2430;--muted:#5b6576;--bg:#f5f6f8;--card:#fff;--line:#d9dde4;--accent:#1f5fbf;
--ok:#1d7a3d;--warn:#a35a00;--bad:#b3261e}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
header{background:#14304f;color:#fff;padding:14px 24px}
header a{color:#fff;text-decoration:none;font-weight:600}
main{max-width:1100px;margin:0 auto;padding:16px 24px 48px}
section.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 18px;margin:14px 0}
h1{font-size:22px;margin:6px 0 4px}h2{font-size:18px;margin:0 0 8px}h3{font-size:16px;margin:12px 0 6px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600;font-size:13px}
code,pre,.key{font:13px/1.4 ui-monospace,"DejaVu Sans Mono",monospace;overflow-wrap:anywhere}
pre{background:#eef1f5;border:1px solid var(--line);border-radius:6px;padding:8px;white-space:pre-wrap;max-height:260px;overflow:auto}
.muted{color:var(--muted)}
.badge{display:inline-block;border-radius:10px;padding:1px 9px;font-size:13px;font-weight:600;color:#fff;background:var(--muted)}
.badge.pending{background:var(--warn)}.badge.approved{background:var(--accent)}.badge.executable{background:var(--ok)}
.badge.executed{background:#355e3b}.badge.cancelled,.badge.expired{background:var(--bad)}
.mark-approved{color:var(--ok);font-weight:700}.mark-vetoed{color:var(--bad);font-weight:700}.mark-pending{color:var(--warn)}
.countdown{font-weight:700;font-variant-numeric:tabular-nums}
.panels{display:grid;grid-template-columns:1fr 1fr;gap:12px}
@media (max-width:800px){.panels{grid-template-columns:1fr}}
.panels>*{min-width:0}
.panel{border:1px solid var(--line);border-radius:6px;padding:10px 12px;background:#fafbfc}
.panel.veto{border-color:#e3b8b5}
label{display:block;font-size:13px;color:var(--muted);margin-top:6px}
input,textarea{width:100%;font:13px ui-monospace,monospace;padding:6px;border:1px solid var(--line);border-radius:4px}
button{margin-top:8px;padding:6px 14px;border:0;border-radius:4px;background:var(--accent);color:#fff;font-weight:600;cursor:pointer}
.veto button{background:var(--bad)}button.secondary{background:#6b7686}
.result{min-height:1.2em;margin:8px 0 0;font-weight:600}.result.ok{color:var(--ok)}.result.error{color:var(--bad)}
form.lookup{display:flex;gap:8px;align-items:flex-end}form.lookup input{flex:1}
"""

_SCRIPT: Final = """
(function () {
  "use strict";
  var serviceNow = Number(document.body.dataset.now);
  var loaded = performance.now();
  function current() { return serviceNow + Math.floor((performance.now() - loaded) / 1000); }
  function two(n) { return (n < 10 ? "0" : "") + n; }
  function duration(s) {
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    var clock = two(h) + ":" + two(m) + ":" + two(s % 60);
    return d ? d + "d " + clock : clock;
  }
  function tick() {
    document.querySelectorAll(".countdown").forEach(function (el) {
      var left = Math.max(0, Number(el.dataset.target) - current());
      el.dataset.seconds = String(left);
      el.textContent = left > 0 ? duration(left) : "now (reload the page)";
    });
  }
  tick();
  setInterval(tick, 1000);

  function keyText(text) {
    text = text.trim();
    if (/^0x[0-9a-fA-F]{40}$/.test(text)) { text = "eip712:" + text; }
    var colon = text.indexOf(":");
    return colon < 0 ? text : text.slice(0, colon).toLowerCase() + ":" + text.slice(colon + 1).toLowerCase();
  }
  function signatureText(text) {
    var hex = text.trim().toLowerCase().replace(/^0x/, "");
    if (hex.length === 130) {
      var v = parseInt(hex.slice(128), 16);
      if (v === 0 || v === 1) { hex = hex.slice(0, 128) + (v + 27).toString(16); }
    }
    return "0x" + hex;
  }
  document.querySelectorAll("button.copy").forEach(function (button) {
    button.addEventListener("click", function () {
      var text = document.getElementById(button.dataset.target).textContent;
      if (navigator.clipboard) { navigator.clipboard.writeText(text); }
      button.textContent = "Copied";
    });
  });
  document.querySelectorAll("form.sign").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var result = form.querySelector(".result");
      var typed = JSON.parse(document.getElementById(form.dataset.typed).textContent);
      var signed = {
        version: 1,
        service: {chainId: typed.domain.chainId, verifyingContract: typed.domain.verifyingContract},
        action: typed.primaryType,
        message: typed.message,
        signer: keyText(form.elements.signer.value),
        signature: signatureText(form.elements.signature.value)
      };
      result.className = "result";
      result.textContent = "Sending\\u2026";
      fetch("/v1/actions", {
        method: "POST",
        headers: {"Content-Type": "application/json", "Accept": "application/json"},
        body: JSON.stringify({signed: signed})
      }).then(function (response) {
        return response.json().then(function (body) { return {ok: response.ok, body: body}; });
      }).then(function (answer) {
        if (answer.ok) {
          var kinds = (answer.body.events || []).map(function (e) { return e.kind; }).join(", ");
          result.className = "result ok";
          result.textContent = "Accepted (vault version " + answer.body.version + "): " + kinds +
            ". Reload to see the new state.";
        } else {
          result.className = "result error";
          result.textContent = "Refused: " + (answer.body.detail || answer.body.title || "error");
        }
      }).catch(function (error) {
        result.className = "result error";
        result.textContent = "Could not reach the service: " + error;
      });
    });
  });
})();
"""


def _page(view: _View, title: str, body: str, status: int = 200) -> HTMLResponse:
    """The whole document, with its security headers; ``body`` is HTML built from escaped values."""
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} · Lifeboat recovery</title>"
        f'<style nonce="{view.nonce}">{_STYLE}</style></head>'
        f'<body data-now="{view.now}">'
        '<header><a href="/">Lifeboat recovery</a></header>'
        f"<main>{body}</main>"
        f'<script nonce="{view.nonce}">{_SCRIPT}</script></body></html>'
    )
    policy_text = (
        "default-src 'none'; "
        f"script-src 'nonce-{view.nonce}'; style-src 'nonce-{view.nonce}'; "
        "connect-src 'self'; img-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    )
    headers = {
        "Content-Security-Policy": policy_text,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }
    return HTMLResponse(document, status_code=status, headers=headers)


def _view(request: Request, now: int) -> _View:
    return _View(secrets.token_urlsafe(18), str(request.base_url).rstrip("/"), now)


def _lookup_form(value: str = "") -> str:
    return (
        '<form class="lookup" method="get" action="/vaults">'
        '<div><label for="vault">Vault id (0x and 64 hex digits)</label>'
        f'<input id="vault" name="vault" value="{_e(value)}" required pattern="(0x)?[0-9a-fA-F]{{64}}"></div>'
        "<button>Show</button></form>"
    )


@router.get("/", response_class=HTMLResponse)
async def index(request: Request) -> HTMLResponse:
    """What this service is (its EIP-712 domain) and a form to look up a vault."""
    now = await run_in_threadpool(_now, request)
    view = _view(request, now)
    domain = (
        "<p>Guardians and owners sign every action as EIP-712 typed data for this domain:</p>"
        f'<pre id="domain">{_e(json.dumps(_identity(request).domain(), indent=2))}</pre>'
    )
    body = (
        "<h1>Guardian recovery service</h1>"
        '<section class="card"><h2>This service</h2>'
        "<p>Time-locked guardian recovery: guardians approve a new owner together, a waiting period "
        "lets the owner veto, and every action lands in a tamper-evident log.</p>"
        f'{domain}<p class="muted">Service time: {_e(_when(now))}</p></section>'
        f'<section class="card"><h2>Find a vault</h2>{_lookup_form()}</section>'
    )
    return _page(view, "Recovery service", body)


def _parse_vault(text: str) -> bytes | None:
    body = text.strip().lower().removeprefix("0x")
    if len(body) != 64:
        return None
    try:
        return bytes.fromhex(body)
    except ValueError:
        return None


@router.get("/vaults", response_class=HTMLResponse)
async def lookup(request: Request, vault: str = "") -> HTMLResponse:
    """The lookup form's target: show the vault, or the form again with the reason."""
    vault_id = _parse_vault(vault)
    if vault_id is not None:
        return await show_vault(request, "0x" + vault_id.hex())
    now = await run_in_threadpool(_now, request)
    body = (
        "<h1>Find a vault</h1>"
        '<section class="card"><p class="result error">A vault id is 0x and 64 hex digits.</p>'
        f"{_lookup_form(vault[:80])}</section>"
    )
    return _page(_view(request, now), "Find a vault", body, status=400)


def _not_found(view: _View, vault: str, reason: str) -> HTMLResponse:
    body = (
        "<h1>No such vault</h1>"
        f'<section class="card"><p class="result error">{_e(reason)}</p>{_lookup_form(vault[:80])}</section>'
    )
    return _page(view, "No such vault", body, status=404)


@router.get("/vaults/{vault}", response_class=HTMLResponse)
async def show_vault(request: Request, vault: str) -> HTMLResponse:
    """A vault's state, its requests, and approve/veto panels for the open ones."""
    vault_id = _parse_vault(vault)
    reason = "A vault id is 0x and 64 hex digits."
    if vault_id is not None:
        try:
            now, state = await run_in_threadpool(_load_state, request, vault_id)
        except VaultNotFound:
            reason = f"This service has no vault 0x{vault_id.hex()}."
        except LifeboatError as error:  # a damaged or newer state document
            reason = f"The vault's state cannot be shown: {error}"
        else:
            view = _view(request, now)
            return _page(view, f"Vault 0x{vault_id.hex()[:12]}…", _vault_body(view, state))
    view = _view(request, await run_in_threadpool(_now, request))
    return _not_found(view, vault, reason)


# --- the vault's parts ---------------------------------------------------------------------------


def _name(state: policy.VaultState, key: PublicKey) -> str:
    """What people call this key: "owner", the guardian's label, or the start of the key."""
    if key == state.owner:
        return "owner"
    guardian = state.config.guardian(key)
    if guardian is not None and guardian.label:
        return guardian.label
    return key.text[:22] + "…"


def _label(state: policy.VaultState, key: PublicKey) -> str:
    """:func:`_name`, escaped for the page."""
    return _e(_name(state, key))


def _vault_body(view: _View, state: policy.VaultState) -> str:
    parts = [
        f"<h1>Vault <code>0x{state.vault.hex()}</code></h1>",
        f'<p class="muted">Service time {_e(_when(view.now))}; created {_e(_when(state.created_at))}.</p>',
        _overview(view, state),
        _guardians(state),
        _policies(state),
        _requests(view, state),
    ]
    return "".join(parts)


def _overview(view: _View, state: policy.VaultState) -> str:
    if state.locked(view.now):
        lock = (
            f'<span class="badge cancelled">locked</span> until {_e(_when(state.locked_until))} '
            f'(<span class="countdown" data-target="{state.locked_until}">'
            f"{_duration(state.locked_until - view.now)}</span> left)"
        )
    else:
        lock = '<span class="badge executable">unlocked</span>'
    change = state.pending_change
    if change is None:
        pending = '<span class="muted">none</span>'
    else:
        pending = (
            f"{len(change.config.guardians)} guardians, {len(change.config.policies)} policies, takes effect "
            f"{_e(_when(change.effective_at))} (in "
            f'<span class="countdown" data-target="{change.effective_at}">'
            f"{_duration(change.effective_at - view.now)}</span>); it cancels pending requests"
        )
    config = state.config
    return (
        '<section class="card" id="overview"><h2>Overview</h2><table>'
        f'<tr><th>Owner</th><td class="key" id="owner">{_e(state.owner.text)}</td></tr>'
        f'<tr><th>Lock</th><td id="lock">{lock}</td></tr>'
        f'<tr><th>Pending change</th><td id="pending-change">{pending}</td></tr>'
        f"<tr><th>Security period</th><td>{_duration(config.security_period)}</td></tr>"
        f"<tr><th>Lock period</th><td>{_duration(config.lock_period)}</td></tr>"
        f"<tr><th>Signing domain</th><td><code>{_e(json.dumps(state.service.domain()))}</code></td></tr>"
        "</table></section>"
    )


def _guardians(state: policy.VaultState) -> str:
    rows = "".join(
        f'<tr class="guardian" data-key="{_e(g.key.text)}"><td class="label">{_e(g.label) or "—"}</td>'
        f"<td>{_e(g.key.kind.value)}</td><td>{g.weight}</td>"
        f'<td class="key">{_e(g.key.text)}</td></tr>'
        for g in state.config.guardians
    )
    return (
        '<section class="card" id="guardians"><h2>Guardians</h2><table>'
        "<tr><th>Label</th><th>Key kind</th><th>Weight</th><th>Key</th></tr>"
        f"{rows}</table></section>"
    )


def _threshold(p: Policy) -> str:
    return f"{p.threshold} by weight" if p.by_weight else f"{p.threshold} of {len(p.guardians)}"


def _policies(state: policy.VaultState) -> str:
    rows = "".join(
        f'<tr class="policy"><td>{_e(p.name)}</td><td>{_threshold(p)}</td>'
        f"<td>{', '.join(_label(state, k) for k in p.guardians)}</td>"
        f"<td>{_duration(p.recovery_period)}</td><td>{_duration(p.expiry_window)}</td>"
        f"<td>{'owner' if p.veto_guardians == 0 else f'owner, or {p.veto_guardians} guardians'}</td></tr>"
        for p in state.config.policies
    )
    return (
        '<section class="card" id="policies"><h2>Policies</h2><table>'
        "<tr><th>Name</th><th>Threshold</th><th>Guardians</th><th>Recovery period</th>"
        f"<th>Expiry window</th><th>Veto</th></tr>{rows}</table></section>"
    )


def _requests(view: _View, state: policy.VaultState) -> str:
    if not state.requests:
        return '<section class="card" id="requests"><h2>Requests</h2><p class="muted">None.</p></section>'
    ordered = sorted(state.requests, key=lambda r: (not r.status.is_open, -r.opened_at))
    return "".join(_request(view, state, r) for r in ordered)


def _countdown(view: _View, r: policy.Request) -> str:
    if r.status is policy.Status.APPROVED and r.executable_at is not None:
        what, target = "Executable in", r.executable_at
    elif r.status in (policy.Status.PENDING, policy.Status.EXECUTABLE):
        what, target = "Expires in", r.deadline
    else:
        closed = "" if r.closed_at is None else f" at {_e(_when(r.closed_at))}"
        reason = "" if r.reason is None else f" ({_e(r.reason)})"
        return f'<p class="outcome">{_e(r.status.value.capitalize())}{closed}{reason}.</p>'
    return (
        f'<p>{what} <span class="countdown" data-target="{target}" data-seconds="{max(0, target - view.now)}">'
        f'{_duration(target - view.now)}</span> <span class="muted">({_e(_when(target))})</span></p>'
    )


def _request(view: _View, state: policy.VaultState, r: policy.Request) -> str:
    rid = r.id.hex()
    p = state.config.policy(r.policy)
    members: Iterable[PublicKey] = p.guardians if p is not None else ()
    marks = []
    for key in members:
        if key in r.approvals:
            mark = '<span class="mark-approved">✓ approved</span>'
        elif key in r.vetoes:
            mark = '<span class="mark-vetoed">✗ vetoed</span>'
        else:
            mark = '<span class="mark-pending">pending</span>'
        marks.append(
            f'<tr class="approval" data-key="{_e(key.text)}"><td>{_label(state, key)}</td><td>{mark}</td></tr>'
        )
    if p is None:
        tally = '<span class="muted">its policy no longer exists</span>'
    else:
        weight = state.config.weight(p, r.approvals)
        unit = "weight" if p.by_weight else "approvals"
        tally = f'<span class="tally">{weight} of {p.threshold} {unit}</span>'
    panels = _panels(view, state, r) if r.status.is_open and p is not None else ""
    return (
        f'<section class="card request" id="request-{rid}" data-status="{r.status.value}">'
        f'<h2>Request <code>0x{rid[:16]}…</code> <span class="badge {r.status.value}">{r.status.value}</span></h2>'
        "<table>"
        f'<tr><th>Id</th><td class="key">0x{rid}</td></tr>'
        f"<tr><th>Policy</th><td>{_e(r.policy)}</td></tr>"
        f'<tr><th>New owner</th><td class="key">{_e(r.new_owner.text)}</td></tr>'
        f"<tr><th>Opened</th><td>{_e(_when(r.opened_at))} by {_label(state, r.opened_by)}</td></tr>"
        f"<tr><th>Threshold</th><td>{tally}</td></tr>"
        "</table>"
        f"{_countdown(view, r)}"
        f'<h3>Guardians of “{_e(r.policy)}”</h3><table class="approvals">{"".join(marks)}</table>'
        f"{panels}</section>"
    )


def _nonce() -> int:
    return secrets.randbelow(messages.MAX_NONCE + 1)


def _panels(view: _View, state: policy.VaultState, r: policy.Request) -> str:
    p = state.config.policy(r.policy)
    assert p is not None
    approvers = [k for k in p.guardians if k not in r.approvals and k not in r.vetoes]
    vetoers = [state.owner, *(approvers if p.veto_guardians else [])]
    approve = messages.Approve(r.id, r.new_owner, r.policy)
    veto = messages.Veto(r.id)
    return (
        '<div class="panels">'
        f"{_panel(view, state, r, approve, 'approve', approvers)}"
        f"{_panel(view, state, r, veto, 'veto', vetoers)}"
        "</div>"
    )


def cli_command(base_url: str, verb: str, vault: bytes, request: policy.Request) -> str:
    """The ``lifeboat recovery approve|veto`` command line that signs and sends this action.

    An approval names the new owner (``--new-owner``), so the CLI refuses it should the request
    name another key than the one the guardian sees here (and checked with the owner).
    """
    words = ["lifeboat", "recovery", verb, "0x" + vault.hex(), "0x" + request.id.hex()]
    if verb == "approve":
        words += ["--new-owner", request.new_owner.text]
    words += ["--key", "KEYFILE", "--service", base_url]
    return " ".join(shlex.quote(w) for w in words)


def _panel(
    view: _View,
    state: policy.VaultState,
    r: policy.Request,
    action: messages.Approve | messages.Veto,
    verb: str,
    signers: list[PublicKey],
) -> str:
    message = messages.Message(
        vault=state.vault,
        action=action,
        nonce=_nonce(),
        not_before=max(0, view.now - NOT_BEFORE_SLACK),
        expiry=view.now + LIFETIME,
    )
    typed = json.dumps(messages.typed_data(state.service, message), indent=2, ensure_ascii=False)
    ident = f"{verb}-{r.id.hex()}"
    options = "".join(f'<option value="{_e(k.text)}" label="{_label(state, k)}"></option>' for k in signers)
    who = ", ".join(_label(state, k) for k in signers) or "nobody left"
    return (
        f'<div class="panel {verb}" id="panel-{ident}"><h3>{verb.capitalize()}</h3>'
        f'<p class="muted">Who can: {who}.</p>'
        "<label>With the Lifeboat CLI (add --print-typed-data to sign in a wallet instead)</label>"
        f'<pre class="cli">{_e(cli_command(view.base_url, verb, state.vault, r))}</pre>'
        "<label>Or sign this EIP-712 typed data (eth_signTypedData_v4) in any wallet; valid for an hour</label>"
        f'<pre class="typed" id="typed-{ident}">{_e(typed)}</pre>'
        f'<button type="button" class="copy secondary" data-target="typed-{ident}">Copy typed data</button>'
        f'<form class="sign" data-typed="typed-{ident}" autocomplete="off">'
        f'<label for="signer-{ident}">Signer (key text, e.g. eip712:0x…)</label>'
        f'<input id="signer-{ident}" name="signer" list="signers-{ident}" required>'
        f'<datalist id="signers-{ident}">{options}</datalist>'
        f'<label for="signature-{ident}">Signature (0x…)</label>'
        f'<textarea id="signature-{ident}" name="signature" rows="2" required></textarea>'
        f"<button>Submit {verb}</button>"
        '<p class="result" role="status"></p></form></div>'
    )
