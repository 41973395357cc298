"""Drive the real recovery service through a fixed scenario and print the example exchanges of
docs/formats.md, "Recovery HTTP API, version 1".

Every key, nonce, vault id and escrowed ciphertext is fixed and the service runs on a frozen clock
(``--simulated-clock`` over a constant wall clock), so each run gives the same bodies, signatures
included. ``python tools/make_recovery_api_examples.py`` prints the example blocks;
``--write`` replaces them in docs/formats.md. tests/test_recovery_api_doc.py runs the same
scenario and fails while a documented example differs from what the service answers.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final

from fastapi import FastAPI
from fastapi.testclient import TestClient

from lifeboat.documents import canonical_json
from lifeboat.fs import SECRET_MODE, write_atomic
from lifeboat.recovery import escrow, messages
from lifeboat.recovery.config import Guardian, Policy, VaultConfig
from lifeboat.recovery.db import Database
from lifeboat.recovery.keys import KeyKind, PrivateKey
from lifeboat.recovery.messages import (
    Action,
    Approve,
    CancelChange,
    CreateVault,
    Execute,
    Lock,
    Message,
    OpenRequest,
    ProposeChange,
    Unlock,
    UploadShare,
    Veto,
)
from lifeboat.recovery.service.app import create_app
from lifeboat.recovery.service.settings import KEY_FORMAT, KEY_VERSION, Settings

ROOT: Final = Path(__file__).resolve().parents[1]
DOC: Final = ROOT / "docs" / "formats.md"
BEGIN: Final = (
    "<!-- recovery-api-example:{name}:begin (tools/make_recovery_api_examples.py writes this block) -->"
)
END: Final = "<!-- recovery-api-example:{name}:end -->"
BLOCK: Final = re.compile(
    r"<!-- recovery-api-example:(?P<name>[a-z0-9-]+):begin [^\n]*-->\n(?P<body>.*?)"
    r"<!-- recovery-api-example:(?P=name):end -->\n",
    re.S,
)

#: The frozen wall clock (2027-01-15T08:00:00Z); the simulated clock's offset moves on from it.
CLOCK: Final = 1_800_000_000
DAY: Final = 86400
CHAIN_ID: Final = 31337
CONTRACT: Final = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
SERVICE_SEED: Final = hashlib.sha256(b"example recovery service key").digest()
VAULT: Final = hashlib.sha256(b"example vault").digest()
#: Requests per second and burst of the example service (small, so the 429 example is reachable).
RATE: Final = 0.001
BURST: Final = 100

# The new owner's age identity and three SLIP-39 shares (2 of 3) of a 16-byte secret, each
# encrypted to it with pyrage once (age encryption is randomised, so they are kept as made).
IDENTITY: Final = "AGE-SECRET-KEY-1NTTK4G9FF6FUZT6FMTENHPCY0U9035RE6Z84LNFY5FPGNLFCY4PQWNHAA5"
SECRET: Final = bytes(range(32, 48))
FINGERPRINT: Final = "efd1-6032-87d8-5d67-30d4-9ae5-dda5-f771"
CIPHERTEXTS: Final = (
    """-----BEGIN AGE ENCRYPTED FILE-----
YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBZRUdzZ1kyQXM5Q1ZIRE9P
K3dUa1oyWEdjU1dxSmhQZUtjcjVGdlMyeVVFCmRZbDliZStmWFd1bllXd2RWVGJy
L2trTjR3b0xmbjl4Z0NaRGVsdjFEVDgKLT4gUy9AJy1ncmVhc2UgRyF7d3JuIGB+
RWY8VSBweTdSc3pwWCBdJzdjVW8KNkxScG9OQWZuWnNjeVk3YzhNWEwxektrcVdE
QjJpc0RiSy9odXNiY25wTUNvZ1UKLS0tIGE3d3pIYzlQMzMwKzlKYnZtUEY3UTIy
bzFvMjRYQWk5ZlFFbmJMUUJWYVkKqhHGtRDiTtSeMowgz2BcBoxtjOXZ/omrwIh1
h0LXl828kw0v7feGKP4tLIof+VKHUPouGHEluzzBebxDo379gBl+ouolTthCU2Ou
9sf8eb9szBRux4AfCq+2cjysxTtKTzXvOi8hRGedTEj+hhGMjDlWHpBIKG22ZLgq
MXGhuH8kRaneDxWLzXUCll1mzeqUTQQWgoO9Vgk7709Fw8OkjRTZUnyBReKInxFG
NJ8v8D/ekhmMls4=
-----END AGE ENCRYPTED FILE-----
""",
    """-----BEGIN AGE ENCRYPTED FILE-----
YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSB1aldZMEVVekpSUzNhcDNO
eDAvdUVJUCtsY3l6MzFJaGJrM1VTZ2ZxQUVBCjBZMDRNUnZsY2t1RUlManh5bDhX
endHTWRyd3MyeFQ4R1A4eFV3RDRrQlUKLT4gcDAtZ3JlYXNlICkpSGVlRTtnCkZj
cHRxS0t2cGpZa1ZDbTB5Y1lDZXEzeS9JWWRDUzYvM3hZS0pJK2MyMktFVlIzcmRX
cmFTS0VlZ1Z5SjkwSmoKR3NEMCtJT3lzNzZDYmhRZGhlYW92c3NhSlRhZ05PL3pR
eDdZZldGRFhUR3I3WXBlV1lGUENrK1I3L3BsMlZNCi0tLSBWUXF0M0p4b2dFTWJU
SnVXcEswaDZSSnhHa0JuendybFdIeEtobmVwVlRRCn/QTUMoMn+QmYR3+dQwz3YV
V84rUh+Y6iPbozgPHiYudpF0TVwdOKZ3hIeh8sC127OQvO0R8HF+/KougZlyzmv0
cIRH01cEaf4I8+ynuJQ0R7ClTr0CPv58jVoKZu8Ty80Xe+aqD87r74fd/dsGAacY
FUOakH0IwY6JfaGE3zAlMHFtgkIDQVk1eXMlbuOIt078f7wqHmpkpnuJDtC3yMsi
7kgkN2shlG4NVPXWzpOYqd83KMYGU4m4DA==
-----END AGE ENCRYPTED FILE-----
""",
    """-----BEGIN AGE ENCRYPTED FILE-----
YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBUeUtkWkNhaFNIWHVuMGFL
NWRUZ0cxTEFPZWxWQU9la3dPcDFqVXRValUwCldEc0JlbnZldzRkNm1qRi9tbDZM
WWw3bC9VZzdKQkRiRUtxK2o1M2ZxT2MKLT4gKHgtZ3JlYXNlIC5HQF1+cTx2Cldv
dEV0WEhLdVZsRTk2cHpNUHRVOCsySkkzRWxUNXhSYTA5NmhhekpKVkI4RVdDWTJS
bHArcWlXMW4vUUZNRQotLS0gMzZYRjhyUkdpb2ZGdUl6R3FQR1BEeXZPZndGQlQ4
U1hONzRmYkxBOGM0awrvT34hxh60fFB9QdQQSS2Jv8tjhF+eg9b0yRpj6mpz8kW0
SB0MjVYB7yt/K07H8CiFYT8Xtk4OgWmBRizxQd4WgKXqfjVF+iTN0SVV5LwGq6QQ
rUX28MPyQzwL0awJinRKPG9WDpnNpnM5zT5e1nHdRf2lvVesIc46uRI5vSHm33ES
53BYBbU2Cw6u5/0gqw3dmXHHAuZlHyUIhUQV4C1+FElH3idy+PWqcIz33aWYQmAt
-----END AGE ENCRYPTED FILE-----
""",
)


def key(kind: KeyKind, name: str) -> PrivateKey:
    return PrivateKey.from_seed(kind, hashlib.sha256(f"example {name}".encode()).digest())


OWNER: Final = key(KeyKind.ED25519, "owner")
ALICE: Final = key(KeyKind.ED25519, "alice")
BOB: Final = key(KeyKind.BIP340, "bob")
CAROL: Final = key(KeyKind.EIP712, "carol")
NEW_OWNER: Final = key(KeyKind.BIP340, "new owner")
THIEF: Final = key(KeyKind.ED25519, "thief")


def request_id(name: str) -> bytes:
    return hashlib.sha256(f"example request {name}".encode()).digest()


def config(security_period: int = 2 * DAY) -> VaultConfig:
    """Alice, Bob and Carol (one key kind each); family 2-of-3 after 3 days, one guardian may veto."""
    guardians = (ALICE, BOB, CAROL)
    return VaultConfig(
        guardians=tuple(
            Guardian(k.public_key, 1, label)
            for k, label in zip(guardians, ("Alice", "Bob", "Carol"), strict=True)
        ),
        policies=(
            Policy(
                "family",
                tuple(k.public_key for k in guardians),
                2,
                recovery_period=3 * DAY,
                expiry_window=7 * DAY,
                veto_guardians=1,
            ),
        ),
        security_period=security_period,
        lock_period=5 * DAY,
    )


@dataclass
class Exchange:
    """One request and its answer, as the client sent and received them."""

    method: str
    path: str
    status: int
    headers: dict[str, str]
    body: Any
    request_headers: dict[str, str] = field(default_factory=dict)
    request_body: Any = None

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0]


#: Response headers an example shows (the rest are transport details).
SHOWN_HEADERS: Final = ("content-type", "retry-after", "allow")


class Scenario:
    """The example service and the steps taken against it; :attr:`examples` holds what the document shows."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.examples: dict[str, Exchange] = {}
        self.nonces = itertools.count(1)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        name: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Exchange:
        sent = dict(headers or {})
        if body is not None:
            sent["Content-Type"] = "application/json"
            response = self.client.request(method, path, content=json.dumps(body).encode(), headers=sent)
        else:
            response = self.client.request(method, path, headers=sent)
        shown = {h: response.headers[h] for h in SHOWN_HEADERS if h in response.headers}
        media = shown.get("content-type", "")
        if "json" in media and "jsonl" not in media:
            answer: Any = response.json()
        else:
            answer = response.text
        exchange = Exchange(method, path, response.status_code, shown, answer, sent, body)
        if name is not None:
            self.examples[name] = exchange
        return exchange

    def now(self) -> int:
        return int(self.call("GET", "/v1/service").body["now"])

    def action(
        self,
        signer: PrivateKey,
        action: Action,
        ciphertext: bytes | None = None,
        *,
        name: str | None = None,
        status: int = 200,
    ) -> Exchange:
        now = self.now()
        message = Message(VAULT, action, next(self.nonces), now - 60, now + 3600)
        signed = messages.sign(messages.Service(CHAIN_ID, CONTRACT), message, signer)
        body: dict[str, Any] = {"signed": messages.signed_to_json(signed)}
        if ciphertext is not None:
            body["ciphertext"] = base64.b64encode(ciphertext).decode("ascii")
        exchange = self.call("POST", "/v1/actions", body, name=name)
        if exchange.status != status:
            raise AssertionError(f"{type(action).__name__}: {exchange.status} {exchange.body}")
        return exchange

    def upload(
        self, guardian: PrivateKey, request: bytes, ciphertext: str, *, name: str | None = None
    ) -> None:
        data = ciphertext.encode("ascii")
        self.action(guardian, UploadShare(request, escrow.ciphertext_digest(data)), data, name=name)

    def advance(self, seconds: int, *, name: str | None = None) -> None:
        self.call("POST", "/v1/clock/advance", {"seconds": seconds}, name=name)


def steps(s: Scenario) -> None:
    """Every endpoint, every event kind, and the problems a client meets."""
    r1, r2, r3, r4, r5 = (request_id(n) for n in ("one", "two", "three", "four", "five"))
    family = "family"
    s.call("GET", "/v1/service", name="service")
    s.action(OWNER, CreateVault(config()))
    s.action(OWNER, ProposeChange(config(DAY)))
    s.action(BOB, Lock())
    s.action(OWNER, ProposeChange(config(DAY)), status=409)  # vault_locked
    s.action(BOB, Unlock())
    s.action(OWNER, ProposeChange(config(DAY)))
    s.action(OWNER, CancelChange())
    s.action(ALICE, OpenRequest(r1, NEW_OWNER.public_key, family))
    s.action(BOB, OpenRequest(r2, THIEF.public_key, family))
    s.action(CAROL, Veto(r2))
    s.action(CAROL, Approve(r1, NEW_OWNER.public_key, family))
    s.upload(ALICE, r1, CIPHERTEXTS[0], name="upload-share")
    s.upload(CAROL, r1, CIPHERTEXTS[2])
    s.action(BOB, OpenRequest(r3, THIEF.public_key, family))
    s.upload(BOB, r3, CIPHERTEXTS[1])
    s.action(OWNER, Veto(r3), name="owner-veto")
    s.action(NEW_OWNER, Execute(r1), name="refused", status=409)  # too_early
    vault = "0x" + VAULT.hex()
    s.call("GET", f"/v1/vaults/{vault}/requests/0x{r1.hex()}/escrow", name="escrow-not-released")
    s.advance(3 * DAY, name="clock-advance")
    s.action(NEW_OWNER, Execute(r1), name="execute")
    s.call("GET", f"/v1/vaults/{vault}/requests/0x{r1.hex()}/escrow", name="escrow")
    s.call("GET", f"/v1/vaults/{vault}/requests/0x{r3.hex()}/escrow", name="escrow-destroyed")
    s.action(NEW_OWNER, ProposeChange(config(DAY)))
    s.action(ALICE, OpenRequest(r4, THIEF.public_key, family))
    s.call("GET", f"/v1/vaults/{vault}", name="vault")
    s.advance(2 * DAY)  # the change takes effect (the security period) and cancels request four
    s.action(ALICE, OpenRequest(r5, THIEF.public_key, family))
    s.advance(8 * DAY)  # request five was never approved: it expires
    s.call("GET", f"/v1/vaults/0x{bytes(32).hex()}", name="unknown-vault")
    s.call("POST", "/v1/actions", {"signed": "hello"}, name="validation")
    s.call("GET", "/v1/nothing-here", name="not-found")
    s.call("POST", "/v1/actions", {"ciphertext": "A" * (70 * 1024)}, name="too-large")
    s.call("GET", "/v1/audit/head", name="audit-head")
    s.call("GET", "/v1/audit/export", name="audit-export")
    s.call("GET", "/healthz", name="healthz")
    s.call("GET", "/metrics", name="metrics")
    for _ in range(BURST + 1):
        if s.call("GET", "/v1/service", name="rate-limited").status == 429:
            break


@contextmanager
def running(directory: Path) -> Iterator[tuple[FastAPI, TestClient]]:
    """The service on a frozen clock with the example service key, in ``directory``."""
    key_file = directory / "service-key.json"
    write_atomic(
        key_file,
        canonical_json({"format": KEY_FORMAT, "version": KEY_VERSION, "seed": SERVICE_SEED.hex()}) + b"\n",
        mode=SECRET_MODE,
    )
    settings = Settings(
        home=directory,
        service_key=key_file,
        simulated_clock=True,
        deliver_webhooks=False,
        rate_per_second=RATE,
        rate_burst=BURST,
        witness_interval=3600,
        sweep_interval=3600,
        chain_id=CHAIN_ID,
        verifying_contract=CONTRACT,
    )
    database = Database(f"sqlite:///{directory / 'recovery.db'}", clock=lambda: float(CLOCK))
    app = create_app(settings, database=database)
    try:
        with TestClient(app, raise_server_exceptions=True) as client:
            yield app, client
    finally:
        database.dispose()


def run(extra: Callable[[FastAPI, TestClient], None] | None = None) -> dict[str, Exchange]:
    """The examples of one run of the scenario; ``extra`` runs against the same service afterwards."""
    with tempfile.TemporaryDirectory() as directory, running(Path(directory)) as (app, client):
        scenario = Scenario(client)
        steps(scenario)
        if extra is not None:
            extra(app, client)
        return scenario.examples


# --- rendering ---------------------------------------------------------------------------------

#: Metric samples the metrics example keeps (the rest are timings, which change on every run).
METRIC_SAMPLES: Final = re.compile(
    r'^(lifeboat_database_up|lifeboat_audit_entries|lifeboat_outbox_rows|lifeboat_http_requests_total\{[^}]*route="/v1/service",status="200"\})'
)


#: Objects and arrays whose one-line form fits in this many columns stay on one line.
WIDTH: Final = 100


def _json(value: Any, indent: int = 0) -> str:
    """JSON for reading: one member or item per line, except what fits on one line."""
    flat = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if not isinstance(value, dict | list) or not value or indent + len(flat) <= WIDTH:
        return flat
    inner = " " * (indent + 2)
    if isinstance(value, dict):
        items = [
            f"{inner}{json.dumps(k, ensure_ascii=False)}: {_json(v, indent + 2)}" for k, v in value.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [inner + _json(v, indent + 2) for v in value]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def export_lines(text: str) -> list[str]:
    """The export lines the document shows: the header, the first entry time made (no signed
    message, so it is short), the signed head; ``…`` where lines are left out."""
    lines = text.splitlines()
    timed = next(line for line in lines[1:-1] if json.loads(line)["message"] == "")
    return [lines[0], "…", timed, "…", lines[-1]]


def metric_lines(text: str) -> list[str]:
    """The metrics example: every HELP and TYPE line but the ``_created`` series', and
    :data:`METRIC_SAMPLES` (the other samples are timings, different on each run)."""
    return [
        line
        for line in text.splitlines()
        if (line.startswith(("# HELP", "# TYPE")) and "_created " not in line) or METRIC_SAMPLES.match(line)
    ]


def render_body(exchange: Exchange) -> str:
    if exchange.media_type == "application/jsonl":
        return "\n".join(export_lines(exchange.body))
    if exchange.media_type.startswith("text/plain"):
        return "\n".join(metric_lines(exchange.body))
    if isinstance(exchange.body, str):
        return exchange.body
    return _json(exchange.body)


#: A request body longer than this is shown by its size only.
LONG_BODY: Final = 8192


def summary(body: Any) -> str:
    """A request body as the document shows it: whole, or its size when it is long."""
    text = json.dumps(body)
    return _json(body) if len(text) <= LONG_BODY else f"({len(text)} bytes of JSON)"


def render(name: str, exchange: Exchange) -> str:
    request = [f"{exchange.method} {exchange.path} HTTP/1.1"]
    request += [f"{k}: {v}" for k, v in exchange.request_headers.items()]
    if exchange.request_body is not None:
        body = exchange.request_body
        request += ["", summary(body)]

    response = [f"HTTP/1.1 {exchange.status} {HTTPStatus(exchange.status).phrase}"]
    response += [f"{k}: {v}" for k, v in exchange.headers.items()]
    response += ["", render_body(exchange)]
    return (
        BEGIN.format(name=name)
        + "\n\n```http\n"
        + "\n".join(request)
        + "\n```\n\n```http\n"
        + "\n".join(response)
        + "\n```\n\n"
        + END.format(name=name)
        + "\n"
    )


def generate() -> dict[str, str]:
    return {name: render(name, exchange) for name, exchange in run().items()}


def write(doc: Path = DOC) -> None:
    """Replace every example block of ``doc`` with this run's."""
    blocks = generate()
    text = doc.read_text(encoding="utf-8")
    found = set()

    def replace(match: re.Match[str]) -> str:
        found.add(match["name"])
        return blocks[match["name"]]

    text = BLOCK.sub(replace, text)
    missing = sorted(set(blocks) - found)
    if missing:
        raise SystemExit(
            f"{doc} has no block for {missing}; add the begin and end markers where each belongs"
        )
    doc.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        for block in generate().values():
            print(block)
