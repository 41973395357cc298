"""docs/formats.md, "Recovery HTTP API, version 1": the document and the service agree.

tools/make_recovery_api_examples.py drives the real app through a fixed scenario on a frozen
clock. Every documented example must be that run's exchange: the same request, status and shown
headers, and a body with the same members in the same order, of the same JSON types, with the
same values (except the few that change between runs or releases, compared by type). Beyond the
examples: every route of the OpenAPI document has a heading, every refusal code its status in the
problems table, every event kind a row, and every member the service sends a row in its table.
"""

from __future__ import annotations

import base64
import importlib.util
import inspect
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pyrage
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lifeboat.recovery import escrow, policy, refusals
from lifeboat.recovery.keys import PublicKey
from lifeboat.recovery.service import app as service_app
from lifeboat.recovery.service import problems

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Recovery HTTP API, version 1"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_recovery_api_examples", ROOT / "tools" / "make_recovery_api_examples.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


SCRIPT = _script()


def _section() -> str:
    text = (ROOT / "docs" / "formats.md").read_text(encoding="utf-8")
    start = text.index(HEADING)
    end = text.find("\n## ", start + len(HEADING))
    return text[start : end if end >= 0 else len(text)]


SECTION = _section()
STALE = "docs/formats.md is stale: run tools/make_recovery_api_examples.py --write"


@dataclass
class Live:
    examples: dict[str, Any]
    openapi: dict[str, Any]


@pytest.fixture(scope="module")
def live() -> Live:
    found: dict[str, Any] = {}

    def openapi(app: FastAPI, client: TestClient) -> None:
        found["openapi"] = app.openapi()  # not over HTTP: the scenario used up its rate limit

    examples = SCRIPT.run(openapi)
    return Live(examples, found["openapi"])


# --- reading the document ------------------------------------------------------------------------


@dataclass
class DocExample:
    request_line: str
    request_headers: dict[str, str]
    request_body: str | None
    status_line: str
    headers: dict[str, str]
    body: str


def _message(block: str) -> tuple[str, dict[str, str], str | None]:
    head, _, body = block.partition("\n\n")
    first, *rest = head.split("\n")
    headers = dict(line.split(": ", 1) for line in rest)
    return first, headers, body if body else None


def doc_examples() -> dict[str, DocExample]:
    found = {}
    for match in SCRIPT.BLOCK.finditer(SECTION):
        fences = re.findall(r"```http\n(.*?)\n```", match["body"], re.S)
        assert len(fences) == 2, f"example {match['name']}: a request and a response"
        request_line, request_headers, request_body = _message(fences[0])
        status_line, headers, body = _message(fences[1])
        assert body is not None, f"example {match['name']} has no response body"
        found[match["name"]] = DocExample(
            request_line, request_headers, request_body, status_line, headers, body
        )
    return found


DOC = doc_examples()


def subsection(title: str) -> str:
    """The text under ``### title`` up to the next ``###`` heading."""
    start = SECTION.index(f"\n### {title}\n")
    end = SECTION.find("\n### ", start + 1)
    return SECTION[start : end if end >= 0 else len(SECTION)]


def tables(text: str) -> list[list[list[str]]]:
    """The Markdown tables of ``text``: rows of cells, header row first, separator dropped."""
    found: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*text.split("\n"), ""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= {"-", " "} for c in cells):
                current.append(cells)
        elif current:
            found.append(current)
            current = []
    return found


def member_table(text: str, index: int = 0) -> dict[str, str]:
    """Member name -> documented type, from the ``index``-th ``| member | type | meaning |`` table."""
    chosen = [t for t in tables(text) if t[0][:2] == ["member", "type"]][index]
    return {row[0].strip("`"): row[1] for row in chosen[1:]}


def python_types(documented: str) -> tuple[type, ...]:
    words = {"integer": int, "string": str, "object": dict, "array": list, "null": type(None)}
    kinds = tuple(kind for word, kind in words.items() if word in documented)
    assert kinds, f"type {documented!r} names no JSON type"
    return kinds


def check_members(value: Any, documented: dict[str, str], what: str) -> None:
    """``value`` has exactly the documented members, each of a documented type (bools are not integers)."""
    assert isinstance(value, dict), what
    assert set(value) == set(documented), f"{what}: sends {sorted(value)}, documented {sorted(documented)}"
    for name, item in value.items():
        kinds = python_types(documented[name])
        assert isinstance(item, kinds) and not isinstance(item, bool), (
            f"{what}.{name}: {item!r} is not {kinds}"
        )


# --- the examples -------------------------------------------------------------------------------

#: Values that change between runs or releases: (example, path); compared by JSON type only.
#: A path is member names and list indexes, ``*`` for any index.
VOLATILE: dict[str, set[tuple[str, ...]]] = {
    "healthz": {("version",)},  # the Lifeboat release
    "validation": {("errors", "*", "message")},  # pydantic's English
}
VOLATILE_HEADERS = {"retry-after"}


def _volatile(name: str, path: tuple[str, ...]) -> bool:
    return any(
        len(p) == len(path) and all(a in ("*", b) for a, b in zip(p, path, strict=True))
        for p in VOLATILE.get(name, set())
    )


def same(name: str, documented: Any, sent: Any, path: tuple[str, ...] = ()) -> None:
    where = f"example {name}, {'.'.join(path) or 'body'}"
    assert type(documented) is type(sent), f"{where}: documented {documented!r}, sent {sent!r}. {STALE}"
    if isinstance(sent, dict):
        assert list(documented) == list(sent), f"{where}: members {list(documented)} vs {list(sent)}. {STALE}"
        for key in sent:
            same(name, documented[key], sent[key], (*path, key))
    elif isinstance(sent, list):
        assert len(documented) == len(sent), f"{where}: {len(documented)} items documented, {len(sent)} sent"
        for index, (a, b) in enumerate(zip(documented, sent, strict=True)):
            same(name, a, b, (*path, str(index)))
    elif not _volatile(name, path):
        assert documented == sent, f"{where}: documented {documented!r}, sent {sent!r}. {STALE}"


def test_every_example_is_documented_and_every_documented_one_is_live(live: Live) -> None:
    assert sorted(DOC) == sorted(live.examples), STALE


@pytest.mark.parametrize("name", sorted(DOC))
def test_the_example_is_what_the_service_answers(live: Live, name: str) -> None:
    doc, sent = DOC[name], live.examples[name]
    assert doc.request_line == f"{sent.method} {sent.path} HTTP/1.1", STALE
    assert doc.request_headers == sent.request_headers, STALE
    if sent.request_body is None:
        assert doc.request_body is None
    else:
        assert doc.request_body is not None
        size = re.fullmatch(r"\((\d+) bytes of JSON\)", doc.request_body)
        if size:
            assert int(size[1]) == len(json.dumps(sent.request_body)) > SCRIPT.LONG_BODY, STALE
        else:
            same(name, json.loads(doc.request_body), sent.request_body, ("request",))
    code, _, _ = doc.status_line.removeprefix("HTTP/1.1 ").partition(" ")
    assert int(code) == sent.status, STALE
    assert list(doc.headers) == list(sent.headers), STALE
    for header, value in sent.headers.items():
        if header in VOLATILE_HEADERS:
            assert doc.headers[header].isdigit() and value.isdigit()
        else:
            assert doc.headers[header] == value, STALE
    if sent.media_type == "application/jsonl":
        check_export(doc.body, sent.body)
    elif sent.media_type == "text/plain":
        check_metrics(doc.body, sent.body)
    else:
        same(name, json.loads(doc.body), sent.body)


def check_export(documented: str, sent: str) -> None:
    """Each documented line is the live line at its place: the header first, entry ``seq`` n at
    line n, the signed head last; ``…`` stands for lines left out."""
    lines = sent.splitlines()
    shown = documented.splitlines()
    assert shown[0] == lines[0] and shown[-1] == lines[-1], STALE
    for line in shown[1:-1]:
        if line != "…":
            entry = json.loads(line)
            assert line == lines[entry["seq"]], f"export entry {entry['seq']}: {STALE}"


def check_metrics(documented: str, sent: str) -> None:
    """The HELP and TYPE lines (but ``_created``) are exactly the live ones; each documented sample
    exists live (its value is a count of this run)."""

    def described(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.startswith("# ") and "_created " not in line]

    assert described(documented) == described(sent), STALE
    names = {line.rsplit(" ", 1)[0] for line in sent.splitlines() if not line.startswith("#")}
    for line in documented.splitlines():
        if not line.startswith("#"):
            assert line.rsplit(" ", 1)[0] in names, f"metric sample {line!r} is not sent"
    types = re.findall(r"^# TYPE (\S+) \S+$", sent, re.M)
    prose = subsection("`GET /metrics`")
    for metric in types:
        if not metric.endswith("_created"):
            assert f"`{metric}`" in prose, f"metric {metric} is not described"


def test_the_escrow_example_opens_to_the_secret(live: Live) -> None:
    """The released ciphertexts are real: the new owner's identity opens them to the secret."""
    shares = json.loads(DOC["escrow"].body)["shares"]
    ciphertexts = [base64.b64decode(s["ciphertext"], validate=True) for s in shares]
    identity = pyrage.x25519.Identity.from_str(SCRIPT.IDENTITY)
    assert escrow.open_bundle(identity, ciphertexts, SCRIPT.FINGERPRINT) == SCRIPT.SECRET


# --- completeness --------------------------------------------------------------------------------


def documented_routes() -> set[tuple[str, str]]:
    return set(re.findall(r"^### `(GET|POST|PUT|PATCH|DELETE) (/\S*)`$", SECTION, re.M))


def test_every_route_of_the_openapi_document_has_a_heading(live: Live) -> None:
    routes = {(method.upper(), path) for path, item in live.openapi["paths"].items() for method in item}
    assert routes == documented_routes(), "each route needs a '### `METHOD /path`' heading in the section"
    (summary,) = [t for t in tables(SECTION) if t[0][0] == "endpoint"]
    assert {tuple(row[0].strip("`").split(" ", 1)) for row in summary[1:]} == routes


def problem_table() -> dict[str, int]:
    (table,) = [t for t in tables(subsection("Problems (RFC 9457)")) if t[0][:2] == ["code", "status"]]
    return {row[0].strip("`"): int(row[1]) for row in table[1:]}


def _refusal_classes() -> Iterator[type[refusals.Refusal]]:
    for value in vars(refusals).values():
        if isinstance(value, type) and issubclass(value, refusals.Refusal):
            yield value


def test_every_refusal_code_has_its_status() -> None:
    table = problem_table()
    for cls in _refusal_classes():
        status, code = problems._status_of(cls("example"))
        assert code == cls.code
        assert table.get(code) == status, (
            f"{code}: the service answers {status}, the table says {table.get(code)}"
        )


def test_every_other_problem_type_has_its_status() -> None:
    table = problem_table()
    for status, slug in problems.STATUS.values():
        assert table.get(slug) == status, f"{slug}: {status}"
    # slugs written in the service's own code (validation, internal, unavailable, ...)
    sources = "".join(inspect.getsource(m) for m in (problems, service_app))
    for slug in re.findall(r'slug="([a-z_-]+)"', sources):
        assert slug in table, f"problem type {slug} is not in the table"
    codes = {cls.code for cls in _refusal_classes()}
    slugs = {slug for _, slug in problems.STATUS.values()} | set(re.findall(r'slug="([a-z_-]+)"', sources))
    assert set(table) == codes | slugs, (
        f"the table names codes the service never sends: {set(table) - codes - slugs}"
    )


def test_every_problem_example_follows_the_table(live: Live) -> None:
    table = problem_table()
    members = member_table(subsection("Problems (RFC 9457)"))
    optional = {"detail", "instance", "code", "errors"}
    for name, sent in live.examples.items():
        if sent.media_type != problems.MEDIA_TYPE:
            continue
        body = sent.body
        assert set(members) - optional <= set(body) <= set(members), name
        for key, value in body.items():
            assert isinstance(value, python_types(members[key])), f"{name}.{key}"
        if body["type"] != "about:blank":
            code = body["type"].removeprefix(problems.URN)
            assert table[code] == sent.status == body["status"], name


def event_table() -> dict[str, list[str]]:
    (table,) = [t for t in tables(subsection("`POST /v1/actions`")) if t[0][0] == "kind"]
    return {row[0].strip("`"): row[1:] for row in table[1:]}


def test_the_event_kinds_are_the_policys() -> None:
    doc = policy.Event.__doc__ or ""
    listed = doc[doc.index("one of:") + len("one of:") : doc.index("``at``")]
    kinds = {k.strip(" .\n") for k in listed.replace("\n", " ").split(",")}
    assert set(event_table()) == kinds


def _detail_members(cell: str) -> set[str] | None:
    """The members a detail cell documents; None for one member per escrowed share."""
    if cell.startswith("one member per"):
        return None
    names: set[str] = set()
    for part in cell.split(";"):
        if ":" in part:
            names |= set(re.findall(r"`([a-z_]+)`", part.split(":", 1)[0]))
    return names


def _events(live: Live) -> list[dict[str, Any]]:
    """Every event of the scenario: the audit export's details, which hold each event whole."""
    lines = live.examples["audit-export"].body.splitlines()[1:-1]
    return [json.loads(line)["details"] for line in lines]


def test_every_event_follows_its_row(live: Live) -> None:
    table = event_table()
    members = member_table(subsection("`POST /v1/actions`"), 2)
    events = _events(live)
    assert {e["kind"] for e in events} == set(table), "the scenario makes every kind of event"
    for event in events:
        check_members(event, members, f"event {event['kind']}")
        request, actor, detail = table[event["kind"]]
        assert (event["request"] is None) == (request == "null"), event
        if actor == "null":
            assert event["actor"] is None, event
        elif "else null" not in actor:
            assert event["actor"] is not None, event
        assert all(isinstance(v, str) for v in event["detail"].values()), event
        names = _detail_members(detail)
        if names is None:
            for key, digest in event["detail"].items():
                assert PublicKey.parse(key).text == key and re.fullmatch(r"0x[0-9a-f]{64}", digest), event
        else:
            assert set(event["detail"]) == names, event


def test_every_body_member_has_a_row(live: Live) -> None:
    examples = live.examples
    check_members(examples["service"].body, member_table(subsection("`GET /v1/service`")), "service")
    actions = subsection("`POST /v1/actions`")
    check_members(examples["upload-share"].request_body, member_table(actions, 0), "action request")
    check_members(examples["execute"].body, member_table(actions, 1), "action answer")
    vaults = subsection("`GET /v1/vaults/{vault}`")
    view = examples["vault"].body
    check_members(view, member_table(vaults, 0), "vault view")
    check_members(view["state"], member_table(vaults, 1), "vault state")
    assert view["state"]["requests"] and view["state"]["pendingChange"] is not None
    for request in view["state"]["requests"]:
        check_members(request, member_table(vaults, 2), "request")
        assert request["status"] in {s.value for s in policy.Status}
    escrow_section = subsection("`GET /v1/vaults/{vault}/requests/{request_id}/escrow`")
    check_members(examples["escrow"].body, member_table(escrow_section), "escrow")
    check_members(examples["healthz"].body, member_table(subsection("`GET /healthz`")), "healthz")
