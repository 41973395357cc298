"""An independent verifier of Lifeboat record-snapshot proof bundles (`lifeboat state prove`).

Written from docs/formats.md ("Record snapshots, version 1") alone, without importing Lifeboat:
only the standard library, ``blake3`` and ``cryptography`` (Ed25519).

    python verify_state_proof.py BUNDLE.json [--root HEX] [--trust PUBKEYHEX] [--summary]

prints ``valid`` (exit 0) or ``invalid: REASON`` (exit 1); 2 for a usage error.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

MAX_BUNDLE_BYTES = 66 * 1024 * 1024
MAX_KEY = 4096
MAX_VALUE = 16 * 1024 * 1024
MAX_STEPS = 256
MAX_K = 64

TAG_KEY, TAG_LEAF, TAG_INTERNAL, TAG_INNER, TAG_NODE = b"\x00", b"\x01", b"\x02", b"\x03", b"\x04"

HEX64 = re.compile(r"[0-9a-f]{64}")
HEX128 = re.compile(r"[0-9a-f]{128}")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
DECIMAL = re.compile(r"0|[1-9][0-9]*")
DIGITS = re.compile(r"[0-9]+")
TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,6})?Z")
B64URL = re.compile(r"[A-Za-z0-9_-]*")

STATEMENT_MEMBERS = frozenset(
    {
        "format",
        "version",
        "name",
        "root",
        "count",
        "sum_fields",
        "totals",
        "fanout",
        "leaf_fanout",
        "key_field",
        "source",
        "time",
        "sequence",
        "invariants",
        "previous",
        "signer",
        "parent",
    }
)
BUNDLE_MEMBERS = frozenset({"format", "version", "statement", "signature", "proof"})
PROOF_MEMBERS = frozenset(
    {"format", "version", "kind", "key", "fanout", "leaf_fanout", "sum_fields", "records"}
)
RECORD_MEMBERS = frozenset({"key", "value", "sums", "path"})


class Invalid(Exception):
    """The bundle is refused; the message names the check."""


# ----------------------------------------------------------------------------------------- JSON


class IntLiteral(str):
    """A JSON integer as written (kept as text: numbers are read exactly)."""


class FracLiteral(str):
    """A JSON number with a fraction or an exponent, as written."""


def _refuse_constant(name: str) -> Any:
    raise Invalid(f"{name} is not JSON")


def _strict_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise Invalid(f"repeated member {name!r}")
        out[name] = value
    return out


def _float_exact(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise Invalid(f"number {text} is out of range")
    return value


def parse_document(data: bytes, what: str) -> Any:
    """Strict JSON for bundles: UTF-8, no repeated member, no NaN/Infinity."""
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark is skipped, as Lifeboat does
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid(f"{what} is not UTF-8") from exc
    try:
        return json.loads(
            text,
            object_pairs_hook=_strict_pairs,
            parse_constant=_refuse_constant,
            parse_float=_float_exact,
        )
    except ValueError as exc:  # JSONDecodeError included
        raise Invalid(f"{what} is not JSON: {exc}") from exc


def _finite(text: str) -> None:
    # Lifeboat refuses a number whose magnitude is beyond the IEEE double range (1e309, 2e308).
    if float(text) in (float("inf"), float("-inf")):
        raise Invalid(f"record value: number {text[:20]}... is out of range")


def _value_int(text: str) -> IntLiteral:
    _finite(text)
    return IntLiteral(text)


def _value_frac(text: str) -> FracLiteral:
    _finite(text)
    return FracLiteral(text)


def parse_value(value: bytes) -> dict[str, Any]:
    """A record's value: RFC 8259 text, top level an object; repeated names: the last counts."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid("record value is not UTF-8") from exc
    try:
        parsed = json.loads(
            text, parse_int=_value_int, parse_float=_value_frac, parse_constant=_refuse_constant
        )
    except ValueError as exc:
        raise Invalid(f"record value is not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise Invalid("record value is not a JSON object")
    _no_lone_surrogates(parsed)
    return parsed


def _no_lone_surrogates(node: Any) -> None:
    """A string escape that is half a surrogate pair (``\\ud800``) makes the value not JSON."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and not isinstance(item, IntLiteral | FracLiteral):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise Invalid("record value holds a lone surrogate escape") from exc


def _canonical_string(text: str) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\r":
            out.append("\\r")
        elif 0x20 <= code <= 0x7E:
            out.append(ch)
        elif code > 0xFFFF:
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            out.append(f"\\u{code:04x}")
    out.append('"')
    return "".join(out)


def canonical_json(value: Any) -> str:
    """The canonical JSON of a parsed document (docs/formats.md, "Canonical JSON")."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # "the shortest form that reads back exactly": Python's repr (0.1, 1e-07, 1e+16, 2.0).
        return repr(value)
    if isinstance(value, str):
        return _canonical_string(value)
    if isinstance(value, list):
        return "[" + ",".join(canonical_json(item) for item in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda item: item[0])  # str order = code point order
        return "{" + ",".join(_canonical_string(k) + ":" + canonical_json(v) for k, v in items) + "}"
    raise Invalid(f"cannot write {type(value).__name__} as JSON")


# ------------------------------------------------------------------------------------ helpers


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_in(value: Any, low: int, high: int, what: str) -> int:
    if not _is_int(value) or not low <= value <= high:
        raise Invalid(f"{what} must be an integer from {low} to {high}")
    return int(value)


def _decimal(value: Any, limit: int, what: str) -> int:
    if not isinstance(value, str) or not DECIMAL.fullmatch(value):
        raise Invalid(f"{what} must be a decimal string without leading zeros")
    number = int(value)
    if number >= limit:
        raise Invalid(f"{what} is out of range")
    return number


def _hex64(value: Any, what: str) -> str:
    if not isinstance(value, str) or not HEX64.fullmatch(value):
        raise Invalid(f"{what} must be 64 lowercase hex digits")
    return value


def _members(obj: Any, expected: frozenset[str], what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise Invalid(f"{what} must be a JSON object")
    if set(obj) != expected:
        missing = sorted(expected - set(obj))
        extra = sorted(set(obj) - expected)
        raise Invalid(f"{what} members: missing {missing}, unexpected {extra}")
    checked: dict[str, Any] = obj
    return checked


def decode_bytes(value: Any, what: str) -> bytes:
    """``B``: a JSON string (UTF-8), or ``{"hex": ...}`` for bytes that are not UTF-8."""
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise Invalid(f"{what} holds a lone surrogate") from exc
    if isinstance(value, dict) and set(value) == {"hex"}:
        text = value["hex"]
        if not isinstance(text, str) or not re.fullmatch(r"(?:[0-9a-f]{2})*", text):
            raise Invalid(f"{what}: hex must be lowercase hex digits in pairs")
        raw = bytes.fromhex(text)
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw
        raise Invalid(f"{what}: UTF-8 bytes must be a JSON string, not hex")
    raise Invalid(f"{what} must be a string or {{'hex': ...}}")


def b64url_decode(text: str, what: str) -> bytes:
    if not B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise Invalid(f"{what}: not unpadded base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != text:
        raise Invalid(f"{what}: non-zero unused bits in base64url")
    return raw


# ----------------------------------------------------------------------------------- the tree


def s_bytes(count: int, sums: Sequence[int]) -> bytes:
    return count.to_bytes(8, "big") + b"".join(s.to_bytes(24, "big") for s in sums)


def s_add(a: tuple[int, tuple[int, ...]], b: tuple[int, tuple[int, ...]]) -> tuple[int, tuple[int, ...]]:
    count = a[0] + b[0]
    if count >= 2**64:
        raise Invalid("a count reaches 2**64")
    sums = tuple(x + y for x, y in zip(a[1], b[1], strict=True))
    if any(s >= 2**192 for s in sums):
        raise Invalid("a sum reaches 2**192")
    return count, sums


def header(level: int, fanout: int, leaf_fanout: int, k: int, n: int) -> bytes:
    return (
        bytes([1, level])
        + fanout.to_bytes(2, "big")
        + leaf_fanout.to_bytes(2, "big")
        + bytes([k])
        + n.to_bytes(2, "big")
    )


def leaf_entry(key: bytes, value: bytes, sums: Sequence[int]) -> bytes:
    return (
        TAG_LEAF
        + len(key).to_bytes(2, "big")
        + key
        + len(value).to_bytes(4, "big")
        + value
        + b"".join(s.to_bytes(16, "big") for s in sums)
    )


def internal_entry(first_key: bytes, child: bytes, s: bytes) -> bytes:
    return TAG_INTERNAL + len(first_key).to_bytes(2, "big") + first_key + child + s


def h(data: bytes) -> bytes:
    return blake3.blake3(data).digest()


def empty_root(fanout: int, leaf_fanout: int, k: int) -> bytes:
    return h(TAG_NODE + header(0, fanout, leaf_fanout, k, 0) + bytes(8 + 24 * k) + bytes(32))


def statement_digest(message: bytes) -> bytes:
    return h(b"lifeboat-state-statement" + b"\x00" + message)


def parse_siblings(raw: bytes, k: int, what: str) -> list[tuple[bytes, int, tuple[int, ...]]]:
    out: list[tuple[bytes, int, tuple[int, ...]]] = []
    pos = 0

    def number(limit_bytes: int) -> int:
        nonlocal pos
        if pos >= len(raw):
            raise Invalid(f"{what}: a short sibling")
        length = raw[pos]
        pos += 1
        if length > limit_bytes:
            raise Invalid(f"{what}: a number of {length} bytes")
        if pos + length > len(raw):
            raise Invalid(f"{what}: a short sibling")
        body = raw[pos : pos + length]
        pos += length
        if length and body[0] == 0:  # 0 is the length byte 00 alone
            raise Invalid(f"{what}: a number with a leading zero byte")
        return int.from_bytes(body, "big")

    while pos < len(raw):
        if pos + 32 > len(raw):
            raise Invalid(f"{what}: a short sibling")
        digest = raw[pos : pos + 32]
        pos += 32
        count = number(8)
        sums = tuple(number(24) for _ in range(k))
        out.append((digest, count, sums))
    return out


# ------------------------------------------------------------------------------ value → key, sums


def value_key(obj: dict[str, Any], key_field: str) -> bytes:
    if key_field not in obj:
        raise Invalid(f"the value has no key member {key_field!r}")
    key = obj[key_field]
    if isinstance(key, IntLiteral):
        digits = str(key)
        if digits == "-0":
            digits = "0"
        out = digits.encode("ascii")
    elif isinstance(key, str) and not isinstance(key, FracLiteral):
        try:
            out = key.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise Invalid("the value's key holds a lone surrogate") from exc
    else:
        raise Invalid("the value's key is neither a string nor an integer")
    if len(out) > MAX_KEY:
        raise Invalid("the value's key is longer than 4,096 bytes")
    return out


def value_sum(obj: dict[str, Any], path: str) -> int:
    steps = path.split(".")
    current: Any = obj
    for i, step in enumerate(steps):
        if not isinstance(current, dict):
            raise Invalid(f"sum field {path!r}: not an object before its last step")
        if step not in current:
            if i == 0 and len(steps) > 1 and path in obj:
                current = obj[path]
                break
            return 0
        current = current[step]
    if isinstance(current, IntLiteral):
        number = int(current) if len(current) <= 40 else 2**128
        if number < 0 or number >= 2**128:  # -0 is 0
            raise Invalid(f"sum field {path!r}: out of range")
        return number
    if isinstance(current, str) and not isinstance(current, FracLiteral):
        if not DIGITS.fullmatch(current) or not current.isascii():
            raise Invalid(f"sum field {path!r}: not a number")
        significant = current.lstrip("0") or "0"
        # Lifeboat refuses a digit string of more than 4,300 characters, leading zeros included.
        if len(current) > 4300 or len(significant) > 39:  # 2**128 has 39 digits
            raise Invalid(f"sum field {path!r}: out of range")
        number = int(significant)
        if number >= 2**128:
            raise Invalid(f"sum field {path!r}: out of range")
        return number
    raise Invalid(f"sum field {path!r}: not an integer or a string of digits")


# --------------------------------------------------------------------------------- verification


@dataclass
class Result:
    present: bool
    record: bytes | None
    before: bytes | None
    after: bytes | None
    position: int
    count: int
    totals: list[int]
    digest: bytes

    def summary(self) -> dict[str, Any]:
        def show(key: bytes | None) -> str | None:
            return None if key is None else key.decode("utf-8", "backslashreplace")

        return {
            "present": self.present,
            "record": show(self.record),
            "before": show(self.before),
            "after": show(self.after),
            "position": self.position,
            "count": self.count,
            "totals": [str(t) for t in self.totals],
        }


def _valid_time(text: str) -> bool:
    match = TIME.fullmatch(text)
    if not match:
        return False
    try:
        year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
        datetime.datetime(year, month, day, hour, minute, second)
    except ValueError:
        return False
    return True


def check_statement(raw: Any) -> dict[str, Any]:
    st = _members(raw, STATEMENT_MEMBERS, "statement")
    if st["format"] != "lifeboat-state":
        raise Invalid("statement format must be lifeboat-state")
    if not _is_int(st["version"]) or st["version"] != 1:
        raise Invalid("statement version must be 1")
    if not isinstance(st["name"], str) or not NAME.fullmatch(st["name"]):
        raise Invalid("statement name is not a valid name")
    _hex64(st["root"], "statement root")
    _int_in(st["count"], 0, 2**64 - 1, "statement count")
    fields = st["sum_fields"]
    if not isinstance(fields, list) or len(fields) > MAX_K:
        raise Invalid("statement sum_fields must be a list of at most 64 paths")
    for f in fields:
        if not isinstance(f, str) or not f or any(not part for part in f.split(".")):
            raise Invalid("statement sum_fields must be non-empty dotted paths")
    if len(set(fields)) != len(fields):
        raise Invalid("statement sum_fields must be distinct")
    totals = st["totals"]
    if not isinstance(totals, list) or len(totals) != len(fields):
        raise Invalid("statement totals must be one per sum field")
    for t in totals:
        _decimal(t, 2**192, "statement total")
    _int_in(st["fanout"], 2, 4096, "statement fanout")
    _int_in(st["leaf_fanout"], 2, 4096, "statement leaf_fanout")
    if not isinstance(st["key_field"], str) or not st["key_field"]:
        raise Invalid("statement key_field must be a non-empty string")
    if not isinstance(st["source"], dict):
        raise Invalid("statement source must be an object")
    if not isinstance(st["time"], str) or not _valid_time(st["time"]):
        raise Invalid("statement time must be YYYY-MM-DDTHH:MM:SS[.f to .ffffff]Z, a real UTC time")
    _int_in(st["sequence"], 0, 2**63 - 1, "statement sequence")
    invariants = st["invariants"]
    if invariants is not None and not (
        isinstance(invariants, dict) and isinstance(invariants.get("passed"), bool)
    ):
        raise Invalid("statement invariants must be null or a report with a boolean 'passed'")
    for name in ("previous", "parent"):
        if st[name] is not None:
            _hex64(st[name], f"statement {name}")
    signer = _members(st["signer"], frozenset({"scheme", "public_key"}), "statement signer")
    if signer["scheme"] not in ("ed25519", "frost-ed25519"):
        raise Invalid("statement signer scheme must be ed25519 or frost-ed25519")
    _hex64(signer["public_key"], "statement signer public_key")
    return st


def check_proof_shape(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict) and _is_int(raw.get("version")) and raw["version"] == 1:
        raise Invalid("proof version 1 is no longer read: make the proof again (lifeboat state prove)")
    proof = _members(raw, PROOF_MEMBERS, "proof")
    if proof["format"] != "lifeboat-prolly-proof":
        raise Invalid("proof format must be lifeboat-prolly-proof")
    if not _is_int(proof["version"]) or proof["version"] != 2:
        raise Invalid("proof version must be 2")
    if proof["kind"] not in ("inclusion", "absence"):
        raise Invalid("proof kind must be inclusion or absence")
    _int_in(proof["fanout"], 2, 4096, "proof fanout")
    _int_in(proof["leaf_fanout"], 2, 4096, "proof leaf_fanout")
    _int_in(proof["sum_fields"], 0, MAX_K, "proof sum_fields")
    if not isinstance(proof["records"], list) or len(proof["records"]) > 2:
        raise Invalid("proof records must be a list of at most two")
    return proof


def walk(
    record: dict[str, Any], fanout: int, leaf_fanout: int, k: int, n: int
) -> tuple[bytes, bytes, tuple[int, tuple[int, ...]], int, bytes]:
    """Step 5: returns (key, root hash, S, position, value)."""
    what = f"record {n}"
    record = _members(record, RECORD_MEMBERS, what)
    key = decode_bytes(record["key"], f"{what} key")
    if len(key) > MAX_KEY:
        raise Invalid(f"{what}: key longer than 4,096 bytes")
    value = decode_bytes(record["value"], f"{what} value")
    if len(value) > MAX_VALUE:
        raise Invalid(f"{what}: value longer than 16 MiB")
    sums_in = record["sums"]
    if not isinstance(sums_in, list) or len(sums_in) != k:
        raise Invalid(f"{what}: sums must hold {k} decimal strings")
    sums = tuple(_decimal(s, 2**128, f"{what} sum") for s in sums_in)
    path = record["path"]
    if not isinstance(path, list) or not 1 <= len(path) <= MAX_STEPS:
        raise Invalid(f"{what}: path must hold 1 to 256 steps")

    digest = h(leaf_entry(key, value, sums))
    s: tuple[int, tuple[int, ...]] = (1, sums)
    p = 0
    for level, step in enumerate(path):
        where = f"{what} level {level}"
        if not isinstance(step, list) or len(step) != (3 if level == 0 else 4):
            raise Invalid(
                f"{where}: a step must be [entries, index, {'' if level == 0 else 'first_key, '}siblings]"
            )
        limit = 4 * (leaf_fanout if level == 0 else fanout)
        entries = _int_in(step[0], 1, limit, f"{where} entries")
        index = _int_in(step[1], 0, entries - 1, f"{where} index")
        if not isinstance(step[-1], str):
            raise Invalid(f"{where}: siblings must be a base64url string")
        siblings = parse_siblings(b64url_decode(step[-1], where), k, where)
        if level >= 1:
            first_key = decode_bytes(step[2], f"{where} first_key")
            if len(first_key) > MAX_KEY:
                raise Invalid(f"{where}: first_key longer than 4,096 bytes")
            if p == 0 and first_key != key:
                raise Invalid(f"{where}: first_key must be the record's key")
            if p > 0 and not first_key < key:
                raise Invalid(f"{where}: first_key must sort before the record's key")
            digest = h(internal_entry(first_key, digest, s_bytes(s[0], s[1])))
        i, m, used = index, entries, 0
        while m > 1:
            if i % 2 == 1 or i + 1 < m:
                if used >= len(siblings):
                    raise Invalid(f"{where}: a sibling is missing")
                sib_hash, sib_count, sib_sums = siblings[used]
                used += 1
                sib_s = (sib_count, sib_sums)
                if i % 2 == 1:
                    p += sib_count
                    digest = h(TAG_INNER + sib_hash + s_bytes(*sib_s) + digest + s_bytes(*s))
                else:
                    digest = h(TAG_INNER + digest + s_bytes(*s) + sib_hash + s_bytes(*sib_s))
                s = s_add(s, sib_s)
            i >>= 1
            m = (m + 1) >> 1
        if used != len(siblings):
            raise Invalid(f"{where}: a sibling too many")
        digest = h(TAG_NODE + header(level, fanout, leaf_fanout, k, entries) + s_bytes(*s) + digest)
    if len(path) > 1 and path[-1][0] < 2:
        raise Invalid(f"{what}: a root above level 0 has at least 2 entries")
    return key, digest, s, p, value


def verify_bundle(data: bytes, root: str | None = None, trust: str | None = None) -> Result:
    if len(data) > MAX_BUNDLE_BYTES:
        raise Invalid("bundle is larger than 66 MiB")
    bundle = _members(parse_document(data, "bundle"), BUNDLE_MEMBERS, "bundle")
    if bundle["format"] != "lifeboat-state-proof":
        raise Invalid("bundle format must be lifeboat-state-proof")
    if not _is_int(bundle["version"]) or bundle["version"] != 1:
        raise Invalid("bundle version must be 1")
    st = check_statement(bundle["statement"])
    signature = bundle["signature"]
    if not isinstance(signature, str) or not HEX128.fullmatch(signature):
        raise Invalid("signature must be 128 lowercase hex digits")
    proof = check_proof_shape(bundle["proof"])

    # 2. signature, trusted key, expected root
    message = canonical_json(st).encode("ascii")
    public_key = st["signer"]["public_key"]
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(
            bytes.fromhex(signature), message
        )
    except (InvalidSignature, ValueError) as exc:
        raise Invalid("the statement's signature does not verify") from exc
    if trust is not None and public_key != trust.lower():
        raise Invalid("the statement is signed by another key than the trusted one")
    if root is not None and st["root"] != root.lower():
        raise Invalid("the statement's root is not the expected root")

    # 3. shape
    fanout, leaf_fanout, k = st["fanout"], st["leaf_fanout"], len(st["sum_fields"])
    if (proof["fanout"], proof["leaf_fanout"], proof["sum_fields"]) != (fanout, leaf_fanout, k):
        raise Invalid("the proof's shape (fanout, leaf_fanout, sum_fields) is not the statement's")

    proof_key = decode_bytes(proof["key"], "proof key")  # any length: a longer key is simply absent
    count = st["count"]
    totals = [int(t) for t in st["totals"]]
    root_bytes = bytes.fromhex(st["root"])
    records = proof["records"]
    digest = statement_digest(message)

    # 4. empty tree
    if not records:
        if proof["kind"] != "absence":
            raise Invalid("an inclusion proof needs exactly one record")
        if root_bytes != empty_root(fanout, leaf_fanout, k):
            raise Invalid("no records, but the root is not the empty tree's")
        if count != 0 or any(totals):
            raise Invalid("no records, but the statement's count or totals are not zero")
        return Result(False, None, None, None, 0, 0, totals, digest)

    # 5. walk each path; 6. same S; 7. S is the statement's
    walked = [walk(r, fanout, leaf_fanout, k, n) for n, r in enumerate(records)]
    for key, top, _s, _p, _v in walked:
        if top != root_bytes:
            raise Invalid(f"the path of {key!r} does not lead to the statement's root")
    first_s = walked[0][2]
    if any(w[2] != first_s for w in walked):
        raise Invalid("the paths end with different S")
    if first_s != (count, tuple(totals)):
        raise Invalid("the root's count and sums are not the statement's count and totals")

    # 8. key and sums from the value
    for (key, _top, _s, _p, value), record in zip(walked, records, strict=True):
        s_committed = [int(t) for t in record["sums"]]
        obj = parse_value(value)
        if value_key(obj, st["key_field"]) != key:
            raise Invalid(f"the value of {key!r} does not hold its key")
        for field, committed in zip(st["sum_fields"], s_committed, strict=True):
            if value_sum(obj, field) != committed:
                raise Invalid(f"the value of {key!r} does not hold its committed sum {field!r}")

    # 9. inclusion / absence
    if proof["kind"] == "inclusion":
        if len(walked) != 1 or walked[0][0] != proof_key:
            raise Invalid("an inclusion proof holds exactly the record of its key")
        return Result(True, proof_key, None, None, walked[0][3], count, totals, digest)
    if len(walked) == 2:
        (kb, _, _, pb, _), (ka, _, _, pa, _) = walked
        if not kb < proof_key < ka:
            raise Invalid("the key is not between the two neighbours")
        if pa != pb + 1:
            raise Invalid("the two neighbours are not adjacent")
        return Result(False, None, kb, ka, pa, count, totals, digest)
    key, _, _, p, _ = walked[0]
    if proof_key < key and p == 0:
        return Result(False, None, None, key, 0, count, totals, digest)
    if key < proof_key and p == count - 1:
        return Result(False, None, key, None, count, count, totals, digest)
    raise Invalid("the one neighbour is not the first or last record on the key's side")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a Lifeboat record-snapshot proof bundle.")
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--root", help="the root it must be against (64 hex digits)")
    parser.add_argument("--trust", help="accept only signatures by this Ed25519 key (64 hex digits)")
    parser.add_argument("--summary", action="store_true", help="print what the proof shows as JSON")
    args = parser.parse_args(argv)
    for name in ("root", "trust"):
        given = getattr(args, name)
        if given is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", given):
            parser.error(f"--{name} must be 64 hex digits")
    try:
        data = args.bundle.read_bytes()
    except OSError as exc:
        print(f"invalid: cannot read {args.bundle}: {exc.strerror}")
        return 1
    try:
        result = verify_bundle(data, root=args.root, trust=args.trust)
    except Invalid as exc:
        print(f"invalid: {exc}")
        return 1
    print("valid")
    if args.summary:
        print(json.dumps(result.summary()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
