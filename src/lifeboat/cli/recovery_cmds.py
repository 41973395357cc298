"""``lifeboat recovery``: the guardian-recovery client. Every action is signed here, with the actor's key file.

The service is ``--service URL`` or ``$LIFEBOAT_RECOVERY_URL``. Each signing command asks the
service for its identity (the EIP-712 domain) and its clock, then signs one message valid from
60 s before the service's ``now`` until ``now + --valid-for`` (default 1h, at most 30 days), with
a random 64-bit nonce. ``--print-typed-data`` (request, approve, veto) prints the EIP-712 typed
data instead, for a wallet to sign; ``recovery submit`` sends what the wallet signed.

Ids on the command line: a vault is its 64 hex digits (``0x`` optional); a request may be any
unique prefix of 4+ hex digits of its id within the vault. Key files hold one private key
(``recovery keygen``, 0600); only public keys are ever printed.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from lifeboat.cli import inputs
from lifeboat.cli.output import emit, info, stdout
from lifeboat.errors import InputError, RecoveryError, UsageError
from lifeboat.fs import PUBLIC_MODE, SECRET_MODE, check_writable, read_bounded, write_atomic

if TYPE_CHECKING:
    import pyrage

    from lifeboat.recovery import messages
    from lifeboat.recovery.client import Client, ServiceInfo
    from lifeboat.recovery.config import Guardian, Policy, VaultConfig
    from lifeboat.recovery.keys import PrivateKey, PublicKey
    from lifeboat.recovery.policy import Request, VaultState


recovery_app = typer.Typer(
    help="Guardian recovery: vaults, policies, requests, approvals, vetoes, escrowed shares, the audit log.",
    no_args_is_help=True,
)
key_app = typer.Typer(help="Recovery key files.", no_args_is_help=True)
vault_app = typer.Typer(help="Create and inspect vaults.", no_args_is_help=True)
policy_app = typer.Typer(help="Change a vault's policies (after the security period).", no_args_is_help=True)
guardian_app = typer.Typer(
    help="Change a vault's guardians (after the security period).", no_args_is_help=True
)
change_app = typer.Typer(help="A pending configuration change.", no_args_is_help=True)
escrow_app = typer.Typer(help="Escrowed shares for a request's new owner.", no_args_is_help=True)
audit_app = typer.Typer(help="The service's hash-chained audit log.", no_args_is_help=True)
clock_app = typer.Typer(
    help="A simulated-clock service's clock (tours, drills, tests).", no_args_is_help=True
)
for _name, _sub in (
    ("key", key_app),
    ("vault", vault_app),
    ("policy", policy_app),
    ("guardian", guardian_app),
    ("change", change_app),
    ("escrow", escrow_app),
    ("audit", audit_app),
    ("clock", clock_app),
):
    recovery_app.add_typer(_sub, name=_name)

ENV_URL: Final = "LIFEBOAT_RECOVERY_URL"
DEFAULT_VALID_FOR: Final = "1h"
MAX_HEAD_FILE: Final = 4096
MAX_SHARE_FILE: Final = 64 * 1024
MAX_EXPORT: Final = 1 << 30
TIMEOUT: Final = 30.0


# --- options -----------------------------------------------------------------------------------

ServiceOpt = Annotated[
    str | None,
    typer.Option(
        "--service", help=f"The recovery service's URL (default: ${ENV_URL}).", metavar="URL", envvar=ENV_URL
    ),
]
KeyOpt = Annotated[
    Path, typer.Option("--key", "-k", help="Sign with this key file (`recovery keygen`).", metavar="KEYFILE")
]
ValidForOpt = Annotated[
    str,
    typer.Option(
        "--valid-for",
        help="How long the signed message stays valid from the service's now (e.g. 1h, 3d; at most 30d).",
        metavar="DURATION",
    ),
]
VaultArg = Annotated[str, typer.Argument(help="The vault id (64 hex digits).", metavar="VAULT")]
RequestArg = Annotated[
    str, typer.Argument(help="The request id (a unique prefix of 4+ hex digits).", metavar="REQUEST")
]
TypedDataOpt = Annotated[
    bool,
    typer.Option(
        "--print-typed-data",
        help="Print the EIP-712 typed data for a wallet to sign instead of signing and sending "
        "(send the signature with `recovery submit`).",
    ),
]
SecurityOpt = Annotated[
    str | None,
    typer.Option("--security-period", help="How long owner changes wait (default 2d).", metavar="DURATION"),
]
LockOpt = Annotated[
    str | None,
    typer.Option("--lock-period", help="How long a guardian lock lasts (default 5d).", metavar="DURATION"),
]


# --- durations -----------------------------------------------------------------------------------

_UNITS: Final = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION: Final = re.compile(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(text: str, what: str = "a duration") -> int:
    """Seconds in ``3d``, ``12h``, ``1d12h``, ``90m``, ``45s``, ``2w`` or a bare number of seconds.

    >>> parse_duration("1d12h"), parse_duration("90"), parse_duration("0s")
    (129600, 90, 0)
    """
    value = text.strip().lower()
    if value.isascii() and value.isdigit():
        return int(value)
    match = _DURATION.fullmatch(value)
    if not value or match is None or not any(match.groups()):
        raise UsageError(f"{what} {text[:40]!r} is not a duration; write e.g. 3d, 12h, 1d12h, 90m, 45s or 2w")
    return sum(
        int(amount) * seconds
        for amount, seconds in zip(match.groups(), _UNITS.values(), strict=True)
        if amount
    )


def format_duration(seconds: int) -> str:
    """The shortest ``parse_duration`` text for ``seconds`` (``1d12h``, ``0s``).

    >>> format_duration(129600), format_duration(0), format_duration(61)
    ('1d12h', '0s', '1m1s')
    """
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in _UNITS.items():
        if unit == "w" and seconds % size:
            continue  # weeks only when whole: 10d reads better than 1w3d
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


# --- configuration specs -------------------------------------------------------------------------


def parse_public_key(text: str, what: str = "a key") -> PublicKey:
    from lifeboat.recovery.keys import PublicKey
    from lifeboat.recovery.refusals import MalformedKey

    try:
        return PublicKey.parse(text.strip())
    except MalformedKey as error:
        raise UsageError(f"{what} {text[:30]!r}: {error}") from None


def parse_guardian(spec: str) -> Guardian:
    """``KEYTEXT[=WEIGHT][:LABEL]``, e.g. ``ed25519:ab..=2:Alice`` (the label may contain ':')."""
    from lifeboat.recovery.config import Guardian

    kind, colon, rest = spec.partition(":")
    if not colon:
        raise UsageError(
            f"--guardian {spec[:30]!r}: write KEYTEXT[=WEIGHT][:LABEL], e.g. ed25519:<64 hex>=2:Alice"
        )
    body, _, label = rest.partition(":")
    body, equals, weight_text = body.partition("=")
    weight = 1
    if equals:
        if not weight_text.isascii() or not weight_text.isdigit():
            raise UsageError(f"--guardian {kind}:{body[:12]}...: the weight after '=' must be a whole number")
        weight = int(weight_text)
    return Guardian(parse_public_key(f"{kind}:{body}", "--guardian"), weight, label)


def _find_guardian(guardians: Sequence[Guardian], ref: str) -> Guardian:
    """A guardian named by label, by 1-based position, or by key text."""
    ref = ref.strip()
    matches = [g for g in guardians if g.label and g.label == ref]
    if not matches and ref.isdigit() and 1 <= int(ref) <= len(guardians):
        matches = [guardians[int(ref) - 1]]
    if not matches and ":" in ref:
        key = parse_public_key(ref, "a guardian")
        matches = [g for g in guardians if g.key == key]
    if len(matches) != 1:
        known = ", ".join(g.label or g.key.text for g in guardians)
        raise UsageError(f"no single guardian {ref[:40]!r} (by label, number or key); the guardians: {known}")
    return matches[0]


def parse_policy(spec: str, guardians: Sequence[Guardian]) -> Policy:
    """``NAME:THRESHOLD:PERIOD:EXPIRY[:veto=N][:by-weight][:guardians=A,B]``.

    ``PERIOD`` is the recovery period, ``EXPIRY`` the expiry window; ``veto=N`` lets N of the
    policy's guardians veto (default 0, the owner only); ``by-weight`` counts weights instead of
    guardians; ``guardians=`` lists the policy's guardians by label, 1-based number or key
    (default: every guardian of the vault).
    """
    from lifeboat.recovery.config import Policy

    fields = spec.split(":")
    if len(fields) < 4:
        raise UsageError(
            f"--policy {spec[:40]!r}: write NAME:THRESHOLD:PERIOD:EXPIRY[:veto=N][:by-weight][:guardians=A,B]"
        )
    name, threshold_text, period_text, expiry_text, *options = fields
    if not threshold_text.isascii() or not threshold_text.isdigit():
        raise UsageError(f"policy {name[:40]!r}: the threshold {threshold_text[:20]!r} is not a whole number")
    veto, by_weight, members = 0, False, tuple(g.key for g in guardians)
    for option in options:
        key, equals, value = option.partition("=")
        if key == "veto" and equals and value.isascii() and value.isdigit():
            veto = int(value)
        elif key == "by-weight" and not equals:
            by_weight = True
        elif key == "guardians" and equals and value:
            members = tuple(_find_guardian(guardians, ref).key for ref in value.split(","))
        else:
            raise UsageError(
                f"policy {name[:40]!r}: unknown option {option[:30]!r} (veto=N, by-weight or guardians=A,B)"
            )
    return Policy(
        name=name,
        guardians=members,
        threshold=int(threshold_text),
        by_weight=by_weight,
        recovery_period=parse_duration(period_text, f"policy {name[:40]!r}: the recovery period"),
        expiry_window=parse_duration(expiry_text, f"policy {name[:40]!r}: the expiry window"),
        veto_guardians=veto,
    )


def parse_id(text: str, what: str) -> bytes:
    from lifeboat.recovery import messages

    value = text.strip().lower().removeprefix("0x")
    if len(value) != 2 * messages.ID_BYTES or not all(c in "0123456789abcdef" for c in value):
        raise UsageError(f"{what} {text[:20]!r} is not an id: 64 hex digits, optionally after 0x")
    return bytes.fromhex(value)


def resolve_request(state: VaultState, text: str) -> Request:
    """The request whose id starts with ``text`` (4+ hex digits, ``0x`` optional), if exactly one does."""
    prefix = text.strip().lower().removeprefix("0x")
    if len(prefix) < 4 or not all(c in "0123456789abcdef" for c in prefix):
        raise UsageError(f"request {text[:20]!r}: give 4 or more hex digits of its id")
    found = [r for r in state.requests if r.id.hex().startswith(prefix)]
    if not found:
        raise RecoveryError(f"vault 0x{state.vault.hex()} has no request 0x{prefix[:64]}...")
    if len(found) > 1:
        raise UsageError(f"request prefix {prefix} names {len(found)} requests; give more digits")
    return found[0]


# --- the service -------------------------------------------------------------------------------


def connect(url: str | None) -> Client:
    """The recovery service at ``url`` (``--service`` or $LIFEBOAT_SERVICE)."""
    import click

    if not url:
        raise UsageError(f"which recovery service? pass --service URL or set ${ENV_URL}")
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--service {url[:60]!r} is not an http:// or https:// URL")
    from lifeboat.recovery.client import Client  # httpx only for the commands that talk to a service

    client = Client(url, timeout=TIMEOUT)
    context = click.get_current_context(silent=True)
    if context is not None:
        context.call_on_close(client.close)
    return client


def _valid_for(text: str) -> int:
    from lifeboat.recovery import messages

    seconds = parse_duration(text, "--valid-for")
    if not 1 <= seconds <= messages.MAX_LIFETIME:
        raise UsageError(
            f"--valid-for must be 1s to {format_duration(messages.MAX_LIFETIME)}, not {text[:20]}"
        )
    return seconds


def _message(info_: ServiceInfo, vault: bytes, action: messages.Action, valid_for: str) -> messages.Message:
    """The message with a random 64-bit nonce, valid from 60 s before the service's now."""
    from lifeboat.recovery import messages

    return messages.new_message(vault, action, now=info_.now, lifetime=_valid_for(valid_for))


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _send_signed(
    connection: Client,
    signed: messages.SignedMessage,
    ciphertext: bytes | None = None,
    extra: dict[str, Any] | None = None,
    human: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    answer = connection.act(signed, ciphertext)
    events = list(answer.events)
    data = {
        "ok": True,
        "action": signed.message.kind,
        "vault": answer.vault,
        "version": answer.version,
        "signer": signed.signer.text,
        "events": events,
        **(extra or {}),
    }

    def default() -> None:
        kinds = ", ".join(str(e.get("kind")) for e in events if isinstance(e, dict)) or "nothing new"
        stdout.print(f"{signed.message.kind} accepted: {kinds}")

    emit(data, (lambda: human(data)) if human else default)


def _sign_and_send(
    service_url: str | None,
    key_file: Path,
    vault: bytes,
    build: Callable[[VaultState | None], messages.Action],
    valid_for: str,
    *,
    state: VaultState | None = None,
    extra: dict[str, Any] | None = None,
    human: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    from lifeboat.recovery import messages
    from lifeboat.recovery.keyfile import read_key_file

    key = read_key_file(key_file)
    _valid_for(valid_for)  # a usage error before any network call
    connection = connect(service_url)
    info_ = connection.service()
    signed = messages.sign(info_.service, _message(info_, vault, build(state), valid_for), key)
    _send_signed(connection, signed, extra=extra, human=human)


def _print_typed_data(info_: ServiceInfo, message: messages.Message) -> None:
    """The typed data, always as JSON (a wallet's input), on stdout."""
    from lifeboat.recovery import messages

    sys.stdout.write(json.dumps(messages.typed_data(info_.service, message), indent=2) + "\n")


# --- keys --------------------------------------------------------------------------------------


@recovery_app.command("keygen")
def keygen_command(
    kind: Annotated[str, typer.Option("--kind", help="ed25519, bip340 or eip712.")] = "ed25519",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="The key file to write (0600).", metavar="KEYFILE")
    ] = None,
) -> None:
    """Make a recovery key (owner, guardian or new owner); prints its public key, never the secret."""
    from lifeboat.recovery.keyfile import write_key_file
    from lifeboat.recovery.keys import KeyKind, PrivateKey

    try:
        key_kind = KeyKind(kind.strip().lower())
    except ValueError:
        raise UsageError(f"--kind {kind[:20]!r}: choose ed25519, bip340 or eip712") from None
    if output is None:
        raise UsageError("the key is secret: pass -o KEYFILE to write it (0600)")
    check_writable(output)
    key = PrivateKey.generate(key_kind)
    write_key_file(output, key)
    public = key.public_key.text
    info(f"wrote {output} (mode 0600)")
    emit({"public_key": public, "kind": key_kind.value, "file": str(output)}, lambda: print(public))


@key_app.command("show")
def key_show(
    key_file: Annotated[Path, typer.Argument(help="A recovery key file.", metavar="KEYFILE")],
) -> None:
    """Print a key file's public key (never its secret)."""
    from lifeboat.recovery.keyfile import read_key_file

    key = read_key_file(key_file)
    public = key.public_key.text
    emit({"public_key": public, "kind": key.kind.value, "file": str(key_file)}, lambda: print(public))


# --- vaults ------------------------------------------------------------------------------------


def _periods(config: VaultConfig, security: str | None, lock: str | None) -> VaultConfig:
    if security is not None:
        config = replace(config, security_period=parse_duration(security, "--security-period"))
    if lock is not None:
        config = replace(config, lock_period=parse_duration(lock, "--lock-period"))
    return config


@vault_app.command("create")
def vault_create(
    key_file: Annotated[
        Path,
        typer.Option(
            "--key", "-k", help="The owner's key file; its key becomes the owner.", metavar="KEYFILE"
        ),
    ],
    guardian: Annotated[
        list[str],
        typer.Option(
            "--guardian", "-g", help="KEYTEXT[=WEIGHT][:LABEL] (repeatable, in order).", metavar="GUARDIAN"
        ),
    ],
    policy: Annotated[
        list[str],
        typer.Option(
            "--policy",
            "-p",
            help="NAME:THRESHOLD:PERIOD:EXPIRY[:veto=N][:by-weight][:guardians=A,B] (repeatable), "
            "e.g. family:2:3d:7d:veto=1.",
            metavar="POLICY",
        ),
    ],
    security_period: SecurityOpt = None,
    lock_period: LockOpt = None,
    service: ServiceOpt = None,
    valid_for: ValidForOpt = DEFAULT_VALID_FOR,
) -> None:
    """Create a vault owned by --key; prints its id."""
    from lifeboat.recovery import messages
    from lifeboat.recovery.config import VaultConfig, check_config
    from lifeboat.recovery.keyfile import read_key_file
    from lifeboat.recovery.refusals import Refusal

    key = read_key_file(key_file)
    guardians = tuple(parse_guardian(spec) for spec in guardian)
    config = _periods(
        VaultConfig(guardians, tuple(parse_policy(spec, guardians) for spec in policy)),
        security_period,
        lock_period,
    )
    try:
        check_config(config, key.public_key)
    except Refusal as error:
        raise UsageError(str(error)) from None
    vault = secrets.token_bytes(messages.ID_BYTES)
    _valid_for(valid_for)  # a usage error before any network call
    connection = connect(service)
    info_ = connection.service()
    signed = messages.sign(
        info_.service, _message(info_, vault, messages.CreateVault(config), valid_for), key
    )

    def human(data: dict[str, Any]) -> None:
        info(
            f"vault created; owner {key.public_key.text}, {len(guardians)} guardians, {len(config.policies)} policies"
        )
        print(vault.hex())

    _send_signed(connection, signed, extra={"vault": vault.hex(), "owner": key.public_key.text}, human=human)


def _config_text(config: VaultConfig, indent: str = "") -> list[str]:
    from lifeboat.recovery.config import Guardian

    lines = [f"{indent}guardians:"]
    for number, g in enumerate(config.guardians, start=1):
        label = f" {g.label}" if g.label else ""
        lines.append(f"{indent}  {number}.{label} {g.key.text} (weight {g.weight})")
    lines.append(f"{indent}policies:")
    for p in config.policies:
        names = ", ".join((config.guardian(k) or Guardian(k)).label or k.text[:20] for k in p.guardians)
        unit = "weight" if p.by_weight else "of " + str(len(p.guardians))
        veto = f"the owner, or {p.veto_guardians} of its guardians" if p.veto_guardians else "the owner only"
        lines.append(
            f"{indent}  {p.name}: {p.threshold} {unit}, recovery period {format_duration(p.recovery_period)}, "
            f"expiry window {format_duration(p.expiry_window)}, veto: {veto}; guardians: {names}"
        )
    lines.append(
        f"{indent}security period {format_duration(config.security_period)}, "
        f"lock period {format_duration(config.lock_period)}"
    )
    return lines


@vault_app.command("show")
def vault_show(vault: VaultArg, service: ServiceOpt = None) -> None:
    """A vault's owner, guardians, policies, lock and pending change (as the service has them now)."""
    vault_id = parse_id(vault, "vault")
    view = connect(service).vault(vault_id)
    state, now = view.state, view.now
    data = {"vault": vault_id.hex(), "now": now, "state": json.loads(_state_json(state))}

    def human() -> None:
        lines = [f"vault {vault_id.hex()}", f"owner {state.owner.text}"]
        lines += _config_text(state.config)
        if state.locked(now):
            lines.append(
                f"locked for {format_duration(state.locked_until - now)} (until {state.locked_until})"
            )
        change = state.pending_change
        if change is not None:
            lines.append(f"pending change, takes effect in {format_duration(change.effective_at - now)}:")
            lines += _config_text(change.config, "  ")
        open_requests = sum(r.status.is_open for r in state.requests)
        lines.append(
            f"requests: {len(state.requests)} ({open_requests} open; `lifeboat recovery status` for details)"
        )
        stdout.print("\n".join(lines))

    emit(data, human)


def _state_json(state: VaultState) -> bytes:
    from lifeboat.recovery.policy import vault_state_to_json

    return vault_state_to_json(state)


# --- configuration changes (ProposeChange of the whole new configuration) ------------------------


def _propose(
    service: str | None,
    key_file: Path,
    vault: str,
    valid_for: str,
    change: Callable[[VaultConfig], VaultConfig],
    what: str,
) -> None:
    from lifeboat.recovery import messages
    from lifeboat.recovery.config import check_config
    from lifeboat.recovery.keyfile import read_key_file
    from lifeboat.recovery.refusals import Refusal

    key = read_key_file(key_file)
    vault_id = parse_id(vault, "vault")
    _valid_for(valid_for)  # a usage error before any network call
    connection = connect(service)
    state = connection.vault(vault_id).state
    # A pending change is the owner's latest intent: a second change builds on it (and replaces it).
    base = state.pending_change.config if state.pending_change is not None else state.config
    config = change(base)
    try:
        check_config(config, state.owner)
    except Refusal as error:
        raise UsageError(f"{what}: {error}") from None
    info_ = connection.service()
    signed = messages.sign(
        info_.service, _message(info_, vault_id, messages.ProposeChange(config), valid_for), key
    )

    def human(data: dict[str, Any]) -> None:
        effective = next(
            (e["detail"].get("effective_at") for e in data["events"] if e.get("kind") == "change_proposed"),
            None,
        )
        when = (
            f"in {format_duration(int(effective) - info_.now)}" if effective else "after the security period"
        )
        stdout.print(f"{what}: proposed; takes effect {when} (open requests are cancelled)")

    _send_signed(connection, signed, human=human)


@policy_app.command("add")
def policy_add(
    vault: VaultArg,
    key_file: Annotated[Path, typer.Option("--key", "-k", help="The owner's key file.", metavar="KEYFILE")],
    policy: Annotated[
        list[str],
        typer.Option(
            "--policy",
            "-p",
            help="NAME:THRESHOLD:PERIOD:EXPIRY[:veto=N][:by-weight][:guardians=A,B].",
            metavar="POLICY",
        ),
    ],
    replace_existing: Annotated[
        bool, typer.Option("--replace", help="Replace a policy of the same name.")
    ] = False,
    service: ServiceOpt = None,
    valid_for: ValidForOpt = DEFAULT_VALID_FOR,
) -> None:
    """Add (or with --replace, change) policies; takes effect after the security period."""

    def change(config: VaultConfig) -> VaultConfig:
        policies = list(config.policies)
        for spec in policy:
            new = parse_policy(spec, config.guardians)
            index = next((i for i, p in enumerate(policies) if p.name == new.name), None)
            if index is None:
                policies.append(new)
            elif replace_existing:
                policies[index] = new
            else:
                raise UsageError(f"the vault already has a policy {new.name!r}; pass --replace to change it")
        return replace(config, policies=tuple(policies))

    _propose(service, key_file, vault, valid_for, change, "policy change")


@policy_app.command("remove")
def policy_remove(
    vault: VaultArg,
    name: Annotated[str, typer.Argument(help="The policy's name.")],
    key_file: Annotated[Path, typer.Option("--key", "-k", help="The owner's key file.", metavar="KEYFILE")],
    service: ServiceOpt = None,
    valid_for: ValidForOpt = DEFAULT_VALID_FOR,
) -> None:
    """Remove a policy; takes effect after the security period."""

    def change(config: VaultConfig) -> VaultConfig:
        if config.policy(name) is None:
            raise UsageError(f"the vault has no policy {name[:64]!r}")
        return replace(config, policies=tuple(p for p in config.policies if p.name != name))

    _propose(service, key_file, vault, valid_for, change, "policy removal")


@guardian_app.command("add")
def guardian_add(
    vault: VaultArg,
    guardian: Annotated[str, typer.Argument(help="KEYTEXT[=WEIGHT][:LABEL].", metavar="GUARDIAN")],
    key_file: Annotated[Path, typer.Option("--key", "-k", help="The owner's key file.", metavar="KEYFILE")],
    to_policy: Annotated[
        list[str] | None,
        typer.Option("--policy", "-p", help="Also add them to this policy (repeatable).", metavar="NAME"),
    ] = None,
    security_period: SecurityOpt = None,
    lock_period: LockOpt = None,
    service: ServiceOpt = None,
    valid_for: ValidForOpt = DEFAULT_VALID_FOR,
) -> None:
    """Add a guardian (and to policies with --policy); takes effect after the security period."""
    new = parse_guardian(guardian)

    def change(config: VaultConfig) -> VaultConfig:
        if config.guardian(new.key) is not None:
            raise UsageError(f"{new.key.text} is already a guardian of the vault")
        names = set(to_policy or ())
        unknown = names - {p.name for p in config.policies}
        if unknown:
            raise UsageError(f"the vault has no policy {sorted(unknown)[0][:64]!r}")
        policies = tuple(
            replace(p, guardians=(*p.guardians, new.key)) if p.name in names else p for p in config.policies
        )
        return _periods(
            replace(config, guardians=(*config.guardians, new), policies=policies),
            security_period,
            lock_period,
        )

    _propose(service, key_file, vault, valid_for, change, "guardian addition")


@guardian_app.command("remove")
def guardian_remove(
    vault: VaultArg,
    guardian: Annotated[
        str, typer.Argument(help="The guardian: label, number or key text.", metavar="GUARDIAN")
    ],
    key_file: Annotated[Path, typer.Option("--key", "-k", help="The owner's key file.", metavar="KEYFILE")],
    service: ServiceOpt = None,
    valid_for: ValidForOpt = DEFAULT_VALID_FOR,
) -> None:
    """Remove a guardian from the vault and every policy; takes effect after the security period.

    Refused if a policy's threshold could no longer be met (change that policy first)."""

    def change(config: VaultConfig) -> VaultConfig:
        gone = _find_guardian(config.guardians, guardian).key
        policies = tuple(
            replace(p, guardians=tuple(k for k in p.guardians if k != gone)) for p in config.policies
        )
        return replace(
            config, guardians=tuple(g for g in config.guardians if g.key != gone), policies=policies
        )

    _propose(service, key_file, vault, valid_for, change, "guardian removal")


@change_app.command("cancel")
def change_cancel(
    vault: VaultArg,
    key_file: Annotated[Path, typer.Option("--key", "-k", help="The owner's key file.", metavar="KEYFILE")],
    service: ServiceOpt = None,
    valid_for: ValidForOpt = DEFAULT_VALID_FOR,
) -> None:
    """Withdraw the pending configuration change."""
    from lifeboat.recovery import messages

    _sign_and_send(service, key_file, parse_id(vault, "vault"), lambda _: messages.CancelChange(), valid_for)


# --- requests ----------------------------------------------------------------------------------


@recovery_app.command("request")
def request_command(
    vault: VaultArg,
    policy: Annotated[str, typer.Option("--policy", "-p", help="The policy to recover under.")],
    new_owner: Annotated[
        str,
        typer.Option("--new-owner", help="The new owner's public key text (checked with them out of band)."),
    ],
    key_file: Annotated[
        Path | None, typer.Option("--key", "-k", help="The opening guardian's key file.", metavar="KEYFILE")
    ] = None,
    print_typed_data: TypedDataOpt = False,
    service: ServiceOpt = None,
    valid_for: ValidForOpt = DEFAULT_VALID_FOR,
) -> None:
    """Open a recovery request (counts as your approval); prints the request id."""
    from lifeboat.recovery import messages

    vault_id = parse_id(vault, "vault")
    owner = parse_public_key(new_owner, "--new-owner")
    key = None if print_typed_data else _need_key(key_file)
    request_id = secrets.token_bytes(messages.ID_BYTES)
    _valid_for(valid_for)  # a usage error before any network call
    connection = connect(service)
    info_ = connection.service()
    message = _message(info_, vault_id, messages.OpenRequest(request_id, owner, policy), valid_for)
    if key is None:
        info(f"request id {request_id.hex()}")
        _print_typed_data(info_, message)
        return

    def human(data: dict[str, Any]) -> None:
        approved = any(e.get("kind") == "request_approved" for e in data["events"])
        info(f"request opened under policy {policy!r} for {owner.text}{'; approved' if approved else ''}")
        print(request_id.hex())

    _send_signed(
        connection,
        messages.sign(info_.service, message, key),
        extra={"request": request_id.hex()},
        human=human,
    )


def _need_key(key_file: Path | None) -> PrivateKey:
    from lifeboat.recovery.keyfile import read_key_file

    if key_file is None:
        raise UsageError("pass --key KEYFILE to sign (or --print-typed-data to sign with a wallet)")
    return read_key_file(key_file)


@recovery_app.command("approve")
def approve_command(
    vault: VaultArg,
    request: RequestArg,
    key_file: Annotated[
        Path | None, typer.Option("--key", "-k", help="The guardian's key file.", metavar="KEYFILE")
    ] = None,
    new_owner: Annotated[
        str | None,
        typer.Option(
            "--new-owner",
            help="The new owner key you verified with them: refused if the request names another.",
        ),
    ] = None,
    print_typed_data: TypedDataOpt = False,
    service: ServiceOpt = None,
    valid_for: ValidForOpt = DEFAULT_VALID_FOR,
) -> None:
    """Approve a request: the new owner and policy are taken from the request and signed with it."""
    from lifeboat.recovery import messages

    vault_id = parse_id(vault, "vault")
    key = None if print_typed_data else _need_key(key_file)
    _valid_for(valid_for)  # a usage error before any network call
    connection = connect(service)
    state = connection.vault(vault_id).state
    target = resolve_request(state, request)
    if new_owner is not None and parse_public_key(new_owner, "--new-owner") != target.new_owner:
        raise RecoveryError(
            f"request {target.id.hex()[:12]} names new owner {target.new_owner.text}, not the key you gave; "
            "do not approve it"
        )
    info_ = connection.service()
    action = messages.Approve(target.id, target.new_owner, target.policy)
    message = _message(info_, vault_id, action, valid_for)
    if key is None:
        _print_typed_data(info_, message)
        return
    info(
        f"approving request {target.id.hex()[:12]}: new owner {target.new_owner.text}, policy {target.policy!r}"
    )
    _send_signed(connection, messages.sign(info_.service, message, key), extra={"request": target.id.hex()})


def _on_request(
    vault: str,
    request: str,
    key_file: Path | None,
    service: str | None,
    valid_for: str,
    build: Callable[[bytes], messages.Action],
    print_typed_data: bool = False,
) -> None:
    from lifeboat.recovery import messages

    vault_id = parse_id(vault, "vault")
    key = None if print_typed_data else _need_key(key_file)
    _valid_for(valid_for)  # a usage error before any network call
    connection = connect(service)
    state = connection.vault(vault_id).state
    target = resolve_request(state, request)
    info_ = connection.service()
    message = _message(info_, vault_id, build(target.id), valid_for)
    if key is None:
        _print_typed_data(info_, message)
        return
    _send_signed(connection, messages.sign(info_.service, message, key), extra={"request": target.id.hex()})


@recovery_app.command("veto")
def veto_command(
    vault: VaultArg,
    request: RequestArg,
    key_file: Annotated[
        Path | None,
        typer.Option("--key", "-k", help="The owner's (or a guardian's) key file.", metavar="KEYFILE"),
    ] = None,
    print_typed_data: TypedDataOpt = False,
    service: ServiceOpt = None,
    valid_for: ValidForOpt = DEFAULT_VALID_FOR,
) -> None:
    """Veto a request: the owner at any open stage; guardians where the policy allows."""
    from lifeboat.recovery import messages

    _on_request(vault, request, key_file, service, valid_for, messages.Veto, print_typed_data)


@recovery_app.command("execute")
def execute_command(
    vault: VaultArg,
    request: RequestArg,
    key_file: KeyOpt,
    service: ServiceOpt = None,
    valid_for: ValidForOpt = DEFAULT_VALID_FOR,
) -> None:
    """Execute an executable request (the new owner or a guardian of its policy)."""
    from lifeboat.recovery import messages

    _on_request(vault, request, key_file, service, valid_for, messages.Execute)


@recovery_app.command("lock")
def lock_command(
    vault: VaultArg, key_file: KeyOpt, service: ServiceOpt = None, valid_for: ValidForOpt = DEFAULT_VALID_FOR
) -> None:
    """Freeze owner-initiated changes for the lock period (any guardian)."""
    from lifeboat.recovery import messages

    _sign_and_send(service, key_file, parse_id(vault, "vault"), lambda _: messages.Lock(), valid_for)


@recovery_app.command("unlock")
def unlock_command(
    vault: VaultArg, key_file: KeyOpt, service: ServiceOpt = None, valid_for: ValidForOpt = DEFAULT_VALID_FOR
) -> None:
    """Lift a guardian lock (any guardian)."""
    from lifeboat.recovery import messages

    _sign_and_send(service, key_file, parse_id(vault, "vault"), lambda _: messages.Unlock(), valid_for)


# --- status ------------------------------------------------------------------------------------


def request_summary(state: VaultState, request: Request, now: int) -> dict[str, Any]:
    """What a person needs about one request: status, approvals against the threshold, times left."""
    from lifeboat.recovery.policy import Status

    policy = state.config.policy(request.policy)
    approvals = (
        state.config.weight(policy, request.approvals) if policy is not None else len(request.approvals)
    )
    summary: dict[str, Any] = {
        "request": request.id.hex(),
        "policy": request.policy,
        "new_owner": request.new_owner.text,
        "status": request.status.value,
        "approvals": [k.text for k in request.approvals],
        "vetoes": [k.text for k in request.vetoes],
        "approved": approvals,
        "threshold": None if policy is None else policy.threshold,
        "by_weight": None if policy is None else policy.by_weight,
        "veto_guardians": None if policy is None else policy.veto_guardians,
        "opened_at": request.opened_at,
        "executable_at": request.executable_at,
        "deadline": request.deadline,
        "closed_at": request.closed_at,
        "reason": request.reason,
        "escrowed_shares": len(request.escrow),
        "seconds_to_executable": None,
        "seconds_to_expiry": None,
    }
    if request.status is Status.APPROVED and request.executable_at is not None:
        summary["seconds_to_executable"] = max(0, request.executable_at - now)
    if request.status.is_open:
        summary["seconds_to_expiry"] = max(0, request.deadline - now)
    return summary


def _request_line(summary: dict[str, Any]) -> str:
    unit = " weight" if summary["by_weight"] else ""
    parts = [
        f"{summary['request'][:12]}  {summary['status']:<10}  policy {summary['policy']}",
        f"approvals {summary['approved']}/{summary['threshold']}{unit}",
    ]
    if summary["vetoes"]:
        parts.append(f"guardian vetoes {len(summary['vetoes'])}/{summary['veto_guardians']}")
    if summary["seconds_to_executable"] is not None:
        parts.append(f"executable in {format_duration(summary['seconds_to_executable'])}")
    if summary["seconds_to_expiry"] is not None:
        parts.append(f"expires in {format_duration(summary['seconds_to_expiry'])}")
    if summary["reason"]:
        parts.append(f"reason {summary['reason']}")
    if summary["escrowed_shares"]:
        parts.append(f"{summary['escrowed_shares']} shares escrowed")
    parts.append(f"new owner {summary['new_owner']}")
    return ", ".join(parts)


@recovery_app.command("status")
def status_command(
    vault: VaultArg,
    request: Annotated[
        str | None, typer.Argument(help="One request (4+ hex digits of its id).", metavar="[REQUEST]")
    ] = None,
    service: ServiceOpt = None,
) -> None:
    """Each request's status, approvals against its threshold and countdowns to executable and expiry."""
    vault_id = parse_id(vault, "vault")
    view = connect(service).vault(vault_id)
    state, now = view.state, view.now
    chosen = [resolve_request(state, request)] if request is not None else list(state.requests)
    summaries = [request_summary(state, r, now) for r in chosen]
    data = {
        "vault": vault_id.hex(),
        "now": now,
        "owner": state.owner.text,
        "locked_until": state.locked_until if state.locked(now) else None,
        "pending_change_at": None if state.pending_change is None else state.pending_change.effective_at,
        "requests": summaries,
    }

    def human() -> None:
        lines = [f"vault {vault_id.hex()[:12]}  owner {state.owner.text}  (service time {now})"]
        if state.locked(now):
            lines.append(f"locked for {format_duration(state.locked_until - now)}")
        if state.pending_change is not None:
            lines.append(
                f"configuration change takes effect in {format_duration(state.pending_change.effective_at - now)}"
            )
        lines += [_request_line(s) for s in summaries] or ["no requests"]
        stdout.print("\n".join(lines))

    emit(data, human)


# --- escrow and claim --------------------------------------------------------------------------


@escrow_app.command("upload")
def escrow_upload(
    vault: VaultArg,
    request: RequestArg,
    share: Annotated[
        Path, typer.Option("--share", help="Your share file (from `lifeboat shares`).", metavar="SHAREFILE")
    ],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="The new owner's age recipient (age1...), checked with them out of band like their key.",
            metavar="AGE_RECIPIENT",
        ),
    ],
    key_file: KeyOpt,
    service: ServiceOpt = None,
    valid_for: ValidForOpt = DEFAULT_VALID_FOR,
) -> None:
    """Escrow your share for a request you approved, encrypted to the new owner; released only after execution."""
    from lifeboat.recovery import escrow, messages
    from lifeboat.recovery.keyfile import read_key_file
    from lifeboat.secrets import envelope

    vault_id = parse_id(vault, "vault")
    key = read_key_file(key_file)
    recipient = envelope.parse_recipient(to)
    data = read_bounded(share, MAX_SHARE_FILE, what="share file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"share file {share} is not UTF-8 text") from None
    ciphertext = escrow.escrow_share(text, recipient)
    _valid_for(valid_for)  # a usage error before any network call
    connection = connect(service)
    state = connection.vault(vault_id).state
    target = resolve_request(state, request)
    info_ = connection.service()
    action = messages.UploadShare(target.id, escrow.ciphertext_digest(ciphertext))
    signed = messages.sign(info_.service, _message(info_, vault_id, action, valid_for), key)
    _send_signed(
        connection,
        signed,
        ciphertext,
        extra={"request": target.id.hex(), "ciphertext_sha256": escrow.ciphertext_digest(ciphertext).hex()},
    )


@recovery_app.command("claim")
def claim_command(
    vault: VaultArg,
    request: RequestArg,
    identity: Annotated[
        Path,
        typer.Option(
            "--identity", "-i", help="The new owner's age identity file.", metavar="AGE_IDENTITY_FILE"
        ),
    ],
    fingerprint: Annotated[
        str | None,
        typer.Option(
            "--fingerprint",
            help="The secret's fingerprint (default: the one the escrowed share files state).",
            metavar="FP",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the secret (hex) here, 0600.", metavar="FILE")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output file.")] = False,
    reveal: Annotated[bool, typer.Option("--reveal", help="Print the secret on standard output.")] = False,
    passphrase_file: Annotated[
        Path | None,
        typer.Option(
            "--passphrase-file",
            help="The share set's passphrase (else $LIFEBOAT_PASSPHRASE).",
            metavar="FILE",
        ),
    ] = None,
    ask_passphrase: Annotated[
        bool, typer.Option("--ask-passphrase", help="Prompt for the passphrase.")
    ] = False,
    service: ServiceOpt = None,
) -> None:
    """After execution: fetch the escrowed shares, decrypt them, rebuild the secret and check its fingerprint."""
    from lifeboat.recovery import escrow
    from lifeboat.secrets import envelope

    if not reveal and output is None:
        raise UsageError("the result is secret: pass --reveal to print it, or -o FILE to write it (0600)")
    if output is not None:
        check_writable(output, overwrite=force)
    vault_id = parse_id(vault, "vault")
    identities = envelope.load_identities(identity)
    if not identities:
        raise InputError(f"identity file {identity} holds no age identity (AGE-SECRET-KEY-1...)")
    connection = connect(service)
    state = connection.vault(vault_id).state
    target = resolve_request(state, request)
    bundle = connection.escrow(vault_id, target.id)
    if not bundle:
        raise RecoveryError(f"request {target.id.hex()[:12]} was executed, but no guardian escrowed a share")
    ciphertexts = [share.ciphertext for share in bundle]
    chosen, expected = _identity_and_fingerprint(identities, ciphertexts, fingerprint)
    secret = escrow.open_bundle(
        chosen, ciphertexts, expected, passphrase=inputs.passphrase(passphrase_file, ask_passphrase)
    )
    if output is not None:
        write_atomic(output, (secret.hex() + "\n").encode(), mode=SECRET_MODE, overwrite=force)
        info(f"wrote {output} (mode 0600)")
    data: dict[str, Any] = {
        "request": target.id.hex(),
        "shares": len(bundle),
        "guardians": [share.guardian.text for share in bundle],
        "fingerprint": expected,
        "file": None if output is None else str(output),
    }
    if reveal:
        data["secret"] = secret.hex()

    def human() -> None:
        if reveal:
            print(secret.hex())
        stdout.print(f"recovered from {len(bundle)} escrowed shares; fingerprint {expected} matches")

    emit(data, human)


def _identity_and_fingerprint(
    identities: list[pyrage.x25519.Identity], ciphertexts: list[bytes], fingerprint: str | None
) -> tuple[pyrage.x25519.Identity, str]:
    """The identity that opens the first share, and the fingerprint to check against."""
    import pyrage

    from lifeboat.secrets.backup import parse_share_text, stated_fingerprint

    for identity in identities:
        try:
            first = pyrage.decrypt(ciphertexts[0], [identity])
        except pyrage.DecryptError:
            continue
        break
    else:
        raise RecoveryError(
            "the first escrowed share does not decrypt with this identity: is it the new owner's?"
        )
    if fingerprint is not None:
        return identity, fingerprint
    loaded = []
    for number, ciphertext in enumerate(ciphertexts, start=1):
        try:
            plaintext = first if number == 1 else pyrage.decrypt(ciphertext, [identity])
            loaded += parse_share_text(
                bytes(plaintext).decode("utf-8", "replace"), f"escrowed share {number}"
            )
        except pyrage.DecryptError:
            continue  # open_bundle names it
    stated = stated_fingerprint(loaded)
    if stated is None:
        raise UsageError("the escrowed shares state no fingerprint; pass --fingerprint FP")
    return identity, stated


# --- wallet-signed messages ----------------------------------------------------------------------


@recovery_app.command("submit")
def submit_command(
    signature: Annotated[
        str, typer.Option("--signature", help="The wallet's signature, 0x + 130 hex digits.")
    ],
    signer: Annotated[str, typer.Option("--signer", help="The signer's key text, e.g. eip712:0x....")],
    message_file: Annotated[
        Path,
        typer.Option(
            "--message", help="The typed data that was signed (--print-typed-data).", metavar="FILE"
        ),
    ],
    service: ServiceOpt = None,
) -> None:
    """Send a message a wallet signed (the typed data from --print-typed-data and its signature)."""
    from lifeboat.recovery import messages
    from lifeboat.recovery.refusals import Refusal

    key = parse_public_key(signer, "--signer")
    try:
        typed = json.loads(read_bounded(message_file, messages.MAX_WIRE_BYTES, what="typed data file"))
        kind = typed["primaryType"]
        service_id = messages.Service(
            typed["domain"]["chainId"], bytes.fromhex(str(typed["domain"]["verifyingContract"])[2:])
        )
        message = messages.message_from_json(kind, typed["message"])
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(
            f"{message_file} is not the typed data `--print-typed-data` prints ({type(error).__name__})"
        ) from None
    except Refusal as error:
        raise InputError(f"{message_file}: {error}") from None
    if messages.typed_data(service_id, message)["domain"] != typed["domain"]:
        raise InputError(f"{message_file}: its domain is not a Lifeboat Recovery version 1 domain")
    text = signature.strip().lower().removeprefix("0x")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise UsageError("--signature is not hex") from None
    signed = messages.SignedMessage(service_id, message, key, raw)
    if not key.verify(messages.digest(service_id, message), raw):
        raise RecoveryError(
            f"the signature does not verify under {key.text} for this {message.kind}; nothing was sent"
        )
    _send_signed(connect(service), signed)


# --- audit -------------------------------------------------------------------------------------


@audit_app.command("export")
def audit_export(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the export here (else standard output).", metavar="FILE"),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    service: ServiceOpt = None,
) -> None:
    """Download the whole audit log (JSON Lines ending in a signed head)."""
    if output is not None:
        check_writable(output, overwrite=force)
    export = connect(service).audit_export()
    if output is None:
        sys.stdout.buffer.write(export)
        sys.stdout.flush()
        return
    write_atomic(output, export, mode=PUBLIC_MODE, overwrite=force)
    lines = export.count(b"\n")
    emit(
        {"file": str(output), "bytes": len(export), "entries": max(0, lines - 2)},
        lambda: stdout.print(f"wrote {output}: {max(0, lines - 2)} entries, {len(export)} bytes"),
    )


@audit_app.command("head")
def audit_head(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Keep the signed head in this file.", metavar="FILE")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    service: ServiceOpt = None,
) -> None:
    """The audit chain's newest entry signed by the service: keep it for `audit verify --known-head`."""
    from lifeboat.documents import canonical_json
    from lifeboat.recovery import audit

    if output is not None:
        check_writable(output, overwrite=force)
    document = connect(service).audit_head()
    try:
        head = document["head"]
        key = bytes.fromhex(head["service_key"])
        audit.verify_head(document, key)
    except (KeyError, TypeError, ValueError):
        raise RecoveryError("the service's signed head is not readable") from None
    if output is not None:
        write_atomic(output, canonical_json(document) + b"\n", mode=PUBLIC_MODE, overwrite=force)
    emit(
        document,
        lambda: stdout.print(f"entry {head['seq']} hash {head['hash']}\nservice key {head['service_key']}"),
    )


@audit_app.command("verify")
def audit_verify(
    export_file: Annotated[
        Path, typer.Argument(help="An export (`audit export -o FILE`).", metavar="EXPORT")
    ],
    service_key: Annotated[
        str,
        typer.Option("--service-key", help="The service's Ed25519 public key, 64 hex digits.", metavar="HEX"),
    ],
    known_head: Annotated[
        list[Path] | None,
        typer.Option(
            "--known-head", help="A signed head kept earlier (`audit head -o`); repeatable.", metavar="FILE"
        ),
    ] = None,
) -> None:
    """Check an export offline: every hash, the order, the signed head, and heads kept earlier."""
    from lifeboat.recovery import audit

    text = service_key.strip().lower().removeprefix("0x")
    if len(text) != 64 or not all(c in "0123456789abcdef" for c in text):
        raise UsageError("--service-key is the service's Ed25519 public key: 64 hex digits")
    key = bytes.fromhex(text)
    heads = []
    for path in known_head or []:
        try:
            document = json.loads(read_bounded(path, MAX_HEAD_FILE, what="signed head file"))
        except ValueError:
            raise InputError(f"signed head file {path} is not JSON") from None
        head = audit.verify_head(document, key, f"signed head file {path}")
        heads.append((head.seq, head.hash))
    verified = audit.verify(
        read_bounded(export_file, MAX_EXPORT, what="audit export"), key, known_heads=heads
    )
    data = {
        "ok": True,
        "entries": len(verified.entries),
        "head": {"seq": verified.head.seq, "hash": verified.head.hash.hex(), "time": verified.head.time},
        "known_heads": len(heads),
    }
    emit(
        data,
        lambda: stdout.print(
            f"audit log verified: {len(verified.entries)} entries, head {verified.head.hash.hex()[:16]}..."
            + (f", extends {len(heads)} kept heads" if heads else "")
        ),
    )


# --- simulated clock ---------------------------------------------------------------------------


@clock_app.command("advance")
def clock_advance(
    duration: Annotated[str, typer.Argument(help="How far, e.g. 3d or 12h.", metavar="DURATION")],
    service: ServiceOpt = None,
) -> None:
    """Move a `lifeboat serve --simulated-clock` service's clock forward (refused by a real one)."""
    seconds = parse_duration(duration, "the duration")
    now = connect(service).advance_clock(seconds)
    emit(
        {"now": now, "advanced": seconds},
        lambda: stdout.print(f"service clock advanced {format_duration(seconds)}; now {now}"),
    )


__all__ = [
    "connect",
    "format_duration",
    "parse_duration",
    "parse_guardian",
    "parse_policy",
    "request_summary",
]
