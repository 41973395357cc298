"""Record changes after a state snapshot, for point-in-time recovery (pure).

A journal is a stream of changes, one JSON object per line, numbered by ``seq``::

    {"seq": 17, "op": "upsert", "key": "acct:0x..", "value": {...}}
    {"seq": 18, "op": "delete", "key": "acct:0x.."}

``seq`` is a positive integer, strictly increasing within one input. An upsert's ``value`` is the
whole new record (a JSON object); if it holds the snapshot's key field, that field must be the
change's key (a string as is, an integer as its decimal digits). :func:`parse_changes` reads such
a stream strictly; the record value kept is the value's bytes exactly as they appear in the line,
from its ``{`` to its ``}`` (spaces and ``\\u`` escapes included), as a JSON Lines snapshot keeps
a line. A value's integers must fit in 64 bits (write larger ones as decimal strings), and it
must be a JSON object that every reader accepts (no repeated field, no number beyond a double).

A *segment* stores a run of changes that follow one signed statement (its digest, ``base``)::

    {"base":hex,"count":n,"first":seq,"format":"lifeboat-state-journal","last":seq,"name":str,"version":1}
    {"key":"acct:0x..","op":"upsert","seq":17,"value":{...}}
    {"key":"acct:0x..","op":"delete","seq":18}

The header and the change lines are canonical JSON (sorted keys, no spaces, ASCII), except that
an upsert's value, which comes last, is its record value byte for byte. Every line ends with
``\\n``. :func:`decode_segment` accepts only what :func:`encode_segment` writes.

Replaying is idempotent: :func:`merge` takes the changes of any segments in a ``seq`` window,
keeps a change seen twice once, and refuses two different changes with one ``seq``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple, NoReturn

import orjson

from lifeboat.documents import canonical_json, check_fields, parse_strict_versioned
from lifeboat.errors import LifeboatError, RecordError, StateError, UsageError, exact_bytes
from lifeboat.state import prolly
from lifeboat.state.statement import check_name

__all__ = [
    "MAX_SEGMENT_BYTES",
    "MAX_SEQ",
    "SEGMENT_FORMAT",
    "SEGMENT_VERSION",
    "Change",
    "Segment",
    "decode_segment",
    "encode_segment",
    "merge",
    "parse_changes",
]

SEGMENT_FORMAT: Final = "lifeboat-state-journal"
SEGMENT_VERSION: Final = 1
#: The largest ``seq``.
MAX_SEQ: Final = (1 << 63) - 1
#: The largest segment :func:`encode_segment` writes and :func:`decode_segment` reads.
MAX_SEGMENT_BYTES: Final = 1 << 30

_HEADER_FIELDS: Final = frozenset({"format", "version", "name", "base", "first", "last", "count"})
_UPSERT_FIELDS: Final = frozenset({"seq", "op", "key", "value"})
_DELETE_FIELDS: Final = frozenset({"seq", "op", "key"})
_HEADER_LIMIT: Final = 4096
_BASE: Final = re.compile(f"[0-9a-f]{{{2 * prolly.ID_BYTES}}}")


class Change(NamedTuple):
    """One journal change: ``value`` is the record value for an upsert, None for a delete."""

    seq: int
    op: Literal["upsert", "delete"]
    key: str
    value: bytes | None


@dataclass(frozen=True)
class Segment:
    """A decoded segment: the dataset, the statement digest the changes follow, the changes."""

    name: str
    base: bytes
    changes: tuple[Change, ...]

    @property
    def first(self) -> int:
        return self.changes[0].seq

    @property
    def last(self) -> int:
        return self.changes[-1].seq


# --- reading one change -----------------------------------------------------------------------


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


class _Repeated(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise _Repeated(name)
        result[name] = value
    return result


# The stdlib parser keeps integers exact (orjson reads those above 64 bits as floats), refuses
# NaN and Infinity here, and lets us refuse a repeated field (it could hide a value from a check).
_DECODER: Final = json.JSONDecoder(object_pairs_hook=_no_repeats, parse_constant=_reject_constant)


def _load(line: bytes, where: str, error: type[LifeboatError]) -> dict[str, Any]:
    try:
        text = line.decode("utf-8")
        body = _DECODER.decode(text)
    except _Repeated as exc:
        raise error(f"{where} repeats the field {exc.name!r}") from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise error(f"{where} is not valid JSON") from None
    if not isinstance(body, dict):
        raise error(f"{where} is not a JSON object")
    return body


_SPACE: Final = re.compile(r"[ \t\n\r]*")


def _load_change(line: bytes, where: str, error: type[LifeboatError]) -> tuple[dict[str, Any], bytes | None]:
    """A change line parsed, with the exact bytes of its ``value`` member (None when it has none).

    The top-level object is walked here, each member's value read by the strict decoder, so the
    line is parsed once and the value's span in the line is known.
    """
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{where} is not valid JSON") from None
    body: dict[str, Any] = {}
    raw: str | None = None
    try:
        at = _SPACE.match(text).end()  # type: ignore[union-attr]
        if text[at : at + 1] != "{":
            _load(line, where, error)  # says which: not JSON, or JSON but not an object
            raise error(f"{where} is not a JSON object")
        at = _SPACE.match(text, at + 1).end()  # type: ignore[union-attr]
        if text[at : at + 1] == "}":
            at += 1
        else:
            while True:
                if text[at : at + 1] != '"':
                    raise ValueError("a member name must be a string")
                name, at = _DECODER.raw_decode(text, at)
                at = _SPACE.match(text, at).end()  # type: ignore[union-attr]
                if text[at : at + 1] != ":":
                    raise ValueError("':' expected")
                at = _SPACE.match(text, at + 1).end()  # type: ignore[union-attr]
                value, end = _DECODER.raw_decode(text, at)
                if name in body:
                    raise _Repeated(name)
                body[name] = value
                if name == "value":
                    raw = text[at:end]
                at = _SPACE.match(text, end).end()  # type: ignore[union-attr]
                if text[at : at + 1] == "}":
                    at += 1
                    break
                if text[at : at + 1] != ",":
                    raise ValueError("',' or '}' expected")
                at = _SPACE.match(text, at + 1).end()  # type: ignore[union-attr]
        if _SPACE.match(text, at).end() != len(text):  # type: ignore[union-attr]
            raise ValueError("extra data after the object")
    except _Repeated as exc:
        raise error(f"{where} repeats the field {exc.name!r}") from None
    except (ValueError, RecursionError):
        raise error(f"{where} is not valid JSON") from None
    # The decoded text is valid UTF-8, so a slice of it encodes back to the bytes it came from.
    return body, None if raw is None else raw.encode("utf-8")


def _key_text(key: object, where: str, error: type[LifeboatError]) -> str:
    if type(key) is int:
        key = str(key)
    if type(key) is not str:
        raise error(f"{where}: 'key' must be a string or an integer")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise error(f"{where}: 'key' is not valid Unicode") from None
    if size > prolly.MAX_KEY_BYTES:
        raise error(f"{where}: 'key' is {size} bytes, over the {prolly.MAX_KEY_BYTES}-byte limit")
    return key


def _change(
    loaded: tuple[dict[str, Any], bytes | None],
    where: str,
    error: type[LifeboatError],
    key_field: str | None,
    before: int,
) -> Change:
    """The change in a parsed line (:func:`_load_change`), checked; ``before`` is the previous
    line's seq (0 at first)."""
    body, raw = loaded
    op = body.get("op")
    if "op" in body and op not in ("upsert", "delete"):
        raise error(f"{where} has unknown op {op!r}; expected 'upsert' or 'delete'")
    check_fields(body, _DELETE_FIELDS if op == "delete" else _UPSERT_FIELDS, where, error)
    seq = body["seq"]
    if type(seq) is not int or not 0 < seq <= MAX_SEQ:
        raise error(f"{where}: 'seq' must be a positive integer below 2**63, not {seq!r}")
    if seq <= before:
        raise error(f"{where}: seq {seq} does not follow seq {before} of the line before (seq must increase)")
    key = _key_text(body["key"], where, error)
    if op == "delete":
        return Change(seq, "delete", key, None)
    value = body["value"]
    if not isinstance(value, dict):
        raise error(f"{where}: 'value' must be a JSON object (the whole record)")
    if key_field is not None and key_field in value:
        found = value[key_field]
        if type(found) is int:
            found = str(found)
        if found != key:
            raise error(
                f"{where}: the value's key field {key_field!r} is {value[key_field]!r}, not the key {key!r}"
            )
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        raise error(
            f"{where}: 'value' holds an integer beyond 64 bits or invalid Unicode "
            "(write large integers as decimal strings)"
        ) from None
    assert raw is not None  # the line has a "value" member
    data = raw
    try:  # what a JSON Lines snapshot and every later reader parse the stored value with
        orjson.loads(data)
    except orjson.JSONDecodeError:
        raise error(
            f"{where}: 'value' holds a number beyond the range of a double or nests too deep"
        ) from None
    if len(data) > prolly.MAX_VALUE_BYTES:
        raise error(f"{where}: 'value' is {len(data)} bytes, over the {prolly.MAX_VALUE_BYTES}-byte limit")
    return Change(seq, "upsert", key, data)


def parse_changes(lines: Iterable[bytes], *, key_field: str, what: str) -> Iterator[Change]:
    """The changes in a JSON Lines journal, checked one line at a time.

    ``lines`` may keep their line ends (a file opened in binary). Anything but a well-formed
    change (bad JSON, a blank line, an unknown op, a missing or an extra field, a ``seq`` that is
    not a positive integer above the previous one, a value whose key field is not the key) is a
    :class:`RecordError` naming ``what`` and the line number.
    """
    before = 0
    for number, line in enumerate(lines, 1):
        where = f"{what} line {number}"
        if line.endswith(b"\n"):
            line = line[:-1]
        if not line.strip():
            raise RecordError(f"{where} is blank; every line must be one change")
        change = _change(_load_change(line, where, RecordError), where, RecordError, key_field, before)
        before = change.seq
        yield change


# --- segments ---------------------------------------------------------------------------------


def _change_line(change: Change) -> bytes:
    head = canonical_json({"key": change.key, "op": change.op, "seq": change.seq})
    if change.value is None:
        return head
    # "value" sorts last, so the line stays sorted with the record value spliced in verbatim.
    return head[:-1] + b',"value":' + change.value + b"}"


def _check_change(change: object, before: int) -> Change:
    """A change as given to :func:`encode_segment`, checked (UsageError when it is not one)."""
    if not isinstance(change, Change):
        raise UsageError(f"a journal segment holds Change tuples, not {type(change).__name__}")
    seq, op, key, value = change
    if type(seq) is not int or not before < seq <= MAX_SEQ:
        raise UsageError(f"journal seq {seq!r} must be a positive integer above {before}")
    if type(key) is not str:
        raise UsageError(f"journal change {seq}: the key must be a string")
    if op == "delete":
        if value is not None:
            raise UsageError(f"journal change {seq}: a delete has no value")
    elif op == "upsert":
        if type(value) is not bytes:
            raise UsageError(f"journal change {seq}: an upsert's value must be bytes")
        # Stored as is: a JSON object from its "{" to its "}", on one line, that the strict
        # reader of decode_segment and orjson (every later reader) both accept.
        try:
            body = _DECODER.decode(value.decode("utf-8"))
            orjson.loads(value)
            usable = type(body) is dict and value[:1] == b"{" and value[-1:] == b"}" and b"\n" not in value
        except (UnicodeDecodeError, ValueError, RecursionError):
            usable = False
        if not usable:
            raise UsageError(f"journal change {seq}: an upsert's value must be a JSON object on one line")
    else:
        raise UsageError(f"journal change {seq}: unknown op {op!r}")
    return change


def encode_segment(name: str, base: bytes, changes: Sequence[Change]) -> bytes:
    """The stored bytes of a segment: a header line, then one line per change (in seq order)."""
    check_name(name)
    base = exact_bytes(base, prolly.ID_BYTES, "a journal segment's base statement digest")
    if not changes:
        raise UsageError("a journal segment needs at least one change")
    before = 0
    for change in changes:
        before = _check_change(change, before).seq
    header = {
        "format": SEGMENT_FORMAT,
        "version": SEGMENT_VERSION,
        "name": name,
        "base": base.hex(),
        "first": changes[0].seq,
        "last": changes[-1].seq,
        "count": len(changes),
    }
    lines = [canonical_json(header), *map(_change_line, changes)]
    data = b"\n".join(lines) + b"\n"
    if len(data) > MAX_SEGMENT_BYTES:
        raise UsageError(
            f"a journal segment of {len(data)} bytes is over the {MAX_SEGMENT_BYTES}-byte limit; "
            "split the changes into several segments"
        )
    return data


def decode_segment(data: bytes, what: str) -> Segment:
    """Read :func:`encode_segment` output strictly; :class:`StateError` naming ``what`` otherwise."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise UsageError(f"a journal segment must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_SEGMENT_BYTES:
        raise StateError(f"{what} is {len(data)} bytes, over the {MAX_SEGMENT_BYTES}-byte limit")
    if not data.endswith(b"\n"):
        raise StateError(f"{what} does not end with a line end; it is truncated")
    lines = data[:-1].split(b"\n")
    header = parse_strict_versioned(
        lines[0],
        fmt=SEGMENT_FORMAT,
        version=SEGMENT_VERSION,
        limit=_HEADER_LIMIT,
        what=f"{what} header",
        kind="a Lifeboat state journal segment",
        error=StateError,
    )
    check_fields(header, _HEADER_FIELDS, f"{what} header", StateError)
    if canonical_json(header) != lines[0]:
        raise StateError(f"{what} header is not canonical JSON")
    try:
        name = check_name(header["name"])
    except UsageError as exc:
        raise StateError(f"{what} header: {exc}") from None
    base = header["base"]
    if type(base) is not str or _BASE.fullmatch(base) is None:
        raise StateError(f"{what} header field 'base' must be {2 * prolly.ID_BYTES} lowercase hex digits")
    for label in ("first", "last"):
        if type(header[label]) is not int:
            raise StateError(f"{what} header field {label!r} must be an integer")
    count = header["count"]
    if type(count) is not int or count != len(lines) - 1 or count < 1:
        raise StateError(f"{what} header says {count!r} changes, but {len(lines) - 1} lines follow it")
    changes: list[Change] = []
    before = 0
    for number, line in enumerate(lines[1:], 2):
        where = f"{what} line {number}"
        change = _change(_load_change(line, where, StateError), where, StateError, None, before)
        if _change_line(change) != line:
            raise StateError(f"{where} is not canonical JSON")
        changes.append(change)
        before = change.seq
    if header["first"] != changes[0].seq or header["last"] != changes[-1].seq:
        raise StateError(
            f"{what} header says seq {header['first']!r} to {header['last']!r}, but its changes run "
            f"from {changes[0].seq} to {changes[-1].seq}"
        )
    return Segment(name, bytes.fromhex(base), tuple(changes))


# --- replay -----------------------------------------------------------------------------------


def merge(segments: Iterable[Sequence[Change]], *, after: int, through: int | None) -> list[Change]:
    """Every change with ``after < seq <= through`` (no upper bound when None), in seq order.

    A change that appears more than once (a journal replayed twice, overlapping segments) is
    kept once; two different changes with one ``seq`` are a :class:`StateError` naming it.
    """
    if type(after) is not int or after < 0:
        raise UsageError(f"'after' must be a non-negative integer, not {after!r}")
    if through is not None and (type(through) is not int or through < after):
        raise UsageError(
            f"'through' must be an integer of at least {after} (the 'after' seq), not {through!r}"
        )
    chosen: dict[int, Change] = {}
    for segment in segments:
        for change in segment:
            seq = change.seq
            if seq <= after or (through is not None and seq > through):
                continue
            seen = chosen.setdefault(seq, change)
            if seen is not change and seen != change:
                raise StateError(
                    f"journal seq {seq} appears twice with different changes ({seen.op} {seen.key!r} "
                    f"and {change.op} {change.key!r}); the journals disagree, so replay cannot choose"
                )
    return [chosen[seq] for seq in sorted(chosen)]
