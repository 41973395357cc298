"""What a record is, and the interfaces every kind of source and sink implements.

:class:`RecordSpec` turns a document into a record (its key and its sums), :class:`SourceRecord`
is what a :class:`Source` yields and a :class:`Sink` writes back; :func:`document_of` reads a
stored value back into its document. The file kinds live in :mod:`lifeboat.state.records`, the
SQL kinds in :mod:`lifeboat.state.records_sql`; both import this module and not each other (the
file module imports the SQL one lazily, only for a database URL). The formats are described in
:mod:`lifeboat.state.records`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import orjson

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

from lifeboat.documents import json_kind
from lifeboat.errors import RecordError, UsageError
from lifeboat.state.prolly import MAX_KEY_BYTES, MAX_SUM_FIELDS

#: The kinds of source and sink, as :attr:`Source.kind` and ``describe()["kind"]`` name them.
KINDS: Final = ("jsonl", "csv", "sqlite", "postgresql")
#: The column types a SQL source reports and a SQL sink creates.
COLUMN_TYPES: Final = ("integer", "numeric", "text", "boolean", "float", "bytes", "timestamp", "json")
#: The accepted locations, for messages.
LOCATION_FORMS: Final = (
    "a path ending in .jsonl, .ndjson or .csv, jsonl:PATH, csv:PATH, sqlite:///PATH or postgresql://..."
)


_SUM_LIMIT: Final = 1 << 128
#: A string of at most this many decimal digits is always below 2**128 (which has 39).
_SAFE_DIGITS: Final = 38
INT64_MIN: Final = -(1 << 63)
UINT64_LIMIT: Final = 1 << 64
CREDENTIAL_HINTS: Final = ("pass", "secret", "token", "key", "cert")


class _Missing:
    """The marker of a path that is absent (distinct from a JSON ``null``)."""


MISSING: Final = _Missing()


def show_key(key: bytes) -> str:
    text = repr(key.decode("utf-8", "backslashreplace"))
    return text if len(text) <= 80 else text[:77] + "..."


def _show_value(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --- the record spec ------------------------------------------------------------------------


class _SumPlan:
    """The sum paths compiled for a fast reading of ordinary records.

    Paths are grouped by their parent (``balances.USDC`` and ``balances.DAI`` share
    ``balances``), so one record costs one walk per parent and one look at each entry of the
    smaller of the parent object and the group. :attr:`fast` returns None for anything out of
    the ordinary (a value of another type, an over-long string, an absent parent that a
    dotted top-level name might stand for); the caller then takes the precise path, which
    either finds the sums or raises the error that names the problem.
    """

    def __init__(self, paths: tuple[str, ...]) -> None:
        self.count = len(paths)
        groups: dict[tuple[str, ...], dict[str, int]] = {}
        for index, path in enumerate(paths):
            parts = tuple(path.split("."))
            groups.setdefault(parts[:-1], {})[parts[-1]] = index
        self.groups = [
            (parent, leaves, tuple(".".join((*parent, leaf)) for leaf in leaves))
            for parent, leaves in groups.items()
        ]
        self.fast: Callable[[dict[str, Any]], tuple[int, ...] | None] = self._general
        if len(self.groups) == 1 and len(self.groups[0][0]) == 1:
            self.fast = self._one_parent()

    def _general(self, document: dict[str, Any]) -> tuple[int, ...] | None:
        out = [0] * self.count
        for parent, leaves, full_names in self.groups:
            node: Any = document
            for part in parent:
                node = node.get(part, MISSING)
                if type(node) is not dict:
                    if node is MISSING and not any(name in document for name in full_names):
                        break  # the whole group is absent: zeros
                    return None
            else:
                if not _take(node, leaves, out):
                    return None
        return tuple(out)

    def _one_parent(self) -> Callable[[dict[str, Any]], tuple[int, ...] | None]:
        """:attr:`fast` for the common shape: every path is ``parent.<name>`` for one parent."""
        (parent,), leaves, full_names = self.groups[0]
        size = len(leaves)
        zeros = (0,) * self.count

        def fast(document: dict[str, Any]) -> tuple[int, ...] | None:
            node = document.get(parent, MISSING)
            if type(node) is not dict:
                if node is MISSING and not any(name in document for name in full_names):
                    return zeros
                return None
            out = list(zeros)
            if len(node) <= size:  # look at what the record has (usually a few of the fields)
                for name, value in node.items():
                    index = leaves.get(name)
                    if index is None:
                        continue
                    if (
                        type(value) is str
                        and len(value) <= _SAFE_DIGITS
                        and value.isdigit()
                        and value.isascii()
                    ):
                        out[index] = int(value)
                    elif type(value) is int and 0 <= value < _SUM_LIMIT:
                        out[index] = value
                    else:
                        return None
            elif not _take(node, leaves, out):
                return None
            return tuple(out)

        return fast


def _take(node: dict[str, Any], leaves: dict[str, int], out: list[int]) -> bool:
    """Put the amounts of ``node``'s fields named in ``leaves`` into ``out``; False if one is unusual."""
    for name, index in leaves.items():
        value = node.get(name, MISSING)
        if value is MISSING:
            continue
        if type(value) is str and len(value) <= _SAFE_DIGITS and value.isdigit() and value.isascii():
            out[index] = int(value)
        elif type(value) is int and 0 <= value < _SUM_LIMIT:
            out[index] = value
        else:
            return False
    return True


@dataclass(frozen=True)
class RecordSpec:
    """Which field of a record is its key, and which dotted paths are summed (module docstring)."""

    key_field: str
    sum_fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.key_field, str) or not self.key_field:
            raise UsageError("the key field must be a non-empty field name")
        fields = self.sum_fields
        if isinstance(fields, str) or not isinstance(fields, Iterable):
            raise UsageError("sum fields must be a sequence of dotted paths")
        fields = tuple(fields)
        object.__setattr__(self, "sum_fields", fields)
        if len(fields) > MAX_SUM_FIELDS:
            raise UsageError(f"at most {MAX_SUM_FIELDS} sum fields are allowed, not {len(fields)}")
        seen: set[str] = set()
        for path in fields:
            if not isinstance(path, str) or not path or "" in path.split("."):
                raise UsageError(f"sum field {path!r} is not a dotted path like balances.USDC")
            if path in seen:
                raise UsageError(f"sum field {path!r} is given twice")
            seen.add(path)

    @cached_property
    def _plan(self) -> _SumPlan:
        return _SumPlan(self.sum_fields)

    @cached_property
    def _parts(self) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(path.split(".")) for path in self.sum_fields)

    def key_of(self, document: Mapping[str, Any], where: str) -> bytes:
        """The key of ``document`` as bytes; ``where`` ("ledger.jsonl line 5") prefixes errors."""
        value = document.get(self.key_field, MISSING)
        if type(value) is str:
            try:
                key = value.encode("utf-8")
            except UnicodeEncodeError:
                raise RecordError(f"{where}: the key field {self.key_field!r} is not valid text") from None
        elif type(value) is int:
            key = str(value).encode("ascii")
        elif value is MISSING:
            raise RecordError(f"{where}: the record has no key field {self.key_field!r}")
        else:
            shown = "" if value is None else f" ({_show_value(value)})"
            raise RecordError(
                f"{where}: the key field {self.key_field!r} is {json_kind(value)}{shown}; "
                "a key must be a string or an integer"
            )
        if len(key) > MAX_KEY_BYTES:
            raise RecordError(
                f"{where}: the key {show_key(key)} is {len(key)} bytes, over the {MAX_KEY_BYTES}-byte limit"
            )
        return key

    def sums_of(self, document: Mapping[str, Any], where: str, key: bytes) -> tuple[int, ...]:
        """The sum fields of ``document`` (absent paths count 0); RecordError for a bad amount."""
        if type(document) is dict:
            sums = self._plan.fast(document)
            if sums is not None:
                return sums
        return tuple(
            _amount(_lookup(document, parts, path, where, key), where, key, path)
            for parts, path in zip(self._parts, self.sum_fields, strict=True)
        )


def _lookup(document: Mapping[str, Any], parts: tuple[str, ...], path: str, where: str, key: bytes) -> Any:
    """The value at a dotted path, or ``MISSING``; RecordError if the path runs into a non-object."""
    node: Any = document
    for depth, part in enumerate(parts):
        if not isinstance(node, Mapping):
            prefix = ".".join(parts[:depth])
            raise RecordError(
                f"{where}, key {show_key(key)}: sum field {path!r} runs through {prefix!r}, which is "
                f"{json_kind(node)}, not an object"
            )
        if part not in node:
            if depth == 0 and len(parts) > 1 and path in document:
                return document[path]
            return MISSING
        node = node[part]
    return node


def _amount(value: Any, where: str, key: bytes, path: str) -> int:
    """A sum field's value as an int, or RecordError saying why it is not an amount."""
    if value is MISSING:
        return 0
    problem: str
    if isinstance(value, bool):
        problem = f"is a boolean ({_show_value(value)})"
    elif isinstance(value, int):
        if 0 <= value < _SUM_LIMIT:
            return value
        problem = f"is negative ({value})" if value < 0 else "is 2**128 or more"
    elif isinstance(value, str):
        digits = value[1:] if value.startswith("-") else value
        if digits and digits.isascii() and digits.isdigit():
            if value.startswith("-"):
                problem = f"is negative ({_show_value(value)})"
            else:
                try:
                    number = int(value)
                except ValueError:  # more digits than Python converts
                    number = _SUM_LIMIT
                if number < _SUM_LIMIT:
                    return number
                problem = "is 2**128 or more"
        else:
            problem = f"is not a decimal integer ({_show_value(value)})"
    elif value is None:
        problem = "is null"
    else:
        problem = f"is {json_kind(value)} ({_show_value(value)})"
    raise RecordError(
        f"{where}, key {show_key(key)}: sum field {path!r} {problem}; sum fields must be "
        "non-negative integers below 2**128 (JSON integers or strings of digits)"
    )


def check_order(key: bytes, previous: bytes | None, where: str) -> None:
    """RecordError unless ``key`` comes strictly after ``previous`` (bytewise)."""
    if previous is None or key > previous:
        return
    if key == previous:
        raise RecordError(
            f"{where}: duplicate key {show_key(key)} (the record before has the key {show_key(previous)} "
            "too); keys must be unique"
        )
    raise RecordError(
        f"{where}: keys out of order: {show_key(key)} comes after {show_key(previous)}; "
        "sort the records by key (bytewise UTF-8 order)"
    )


# --- sources ----------------------------------------------------------------------------------


class SourceRecord(NamedTuple):
    """One record read from a source: its key, stored value, sums and parsed document."""

    key: bytes
    value: bytes
    sums: tuple[int, ...]
    #: The parsed record (invariants read it); for SQL the row as a JSON-able dict.
    document: dict[str, Any]


class Source:
    """A record set to read once, in key order; a context manager (``close`` on exit)."""

    #: "jsonl", "csv", "sqlite" or "postgresql".
    kind: str
    #: Progress: bytes consumed for files, rows read for SQL.
    bytes_read: int
    #: The file's size, or None (SQL).
    total: int | None

    def __init__(self, kind: str, spec: RecordSpec, total: int | None) -> None:
        self.kind = kind
        self.spec = spec
        self.bytes_read = 0
        self.total = total
        self.records = 0
        #: Called with :attr:`bytes_read` as reading goes on (JSON Lines: after every chunk).
        self.progress: Callable[[int], None] | None = None
        self._started = False

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[SourceRecord]:
        self._start()
        return self._records()

    def _start(self) -> None:
        if self._started:
            raise UsageError(f"this {self.kind} source has been read already; open it again to re-read it")
        self._started = True

    def _records(self) -> Iterator[SourceRecord]:
        raise NotImplementedError

    def differences(self, old: Iterable[tuple[bytes, bytes]]) -> Iterator[SourceRecord | bytes]:
        """What differs from ``old``, the ``(key, value)`` pairs of an earlier snapshot in key
        order: a :class:`SourceRecord` for each record that is new or changed, and the key of
        each old record that is gone. Reads every record, in order, as iteration does."""
        earlier = iter(old)
        before = next(earlier, None)
        for record in self:
            while before is not None and before[0] < record.key:
                yield before[0]
                before = next(earlier, None)
            if before is not None and before[0] == record.key:
                same = before[1] == record.value
                before = next(earlier, None)
                if same:
                    continue
            yield record
        while before is not None:
            yield before[0]
            before = next(earlier, None)

    def describe(self) -> dict[str, Any]:
        """What was read, as JSON-able data without credentials (call after iterating)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the file or the database connection (also when iteration stopped early)."""


def source_record(key: bytes, value: bytes, sums: tuple[int, ...], document: dict[str, Any]) -> SourceRecord:
    return tuple.__new__(SourceRecord, (key, value, sums, document))


class Location(NamedTuple):
    kind: str
    path: Path | None
    url: URL | None  # a sqlalchemy URL; the SQL part is imported only when one is given
    shown: str


# --- sinks ------------------------------------------------------------------------------------


class Sink:
    """Where a record set is written back, replacing the whole content atomically."""

    #: "jsonl", "csv", "sqlite" or "postgresql".
    kind: str

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def write(
        self,
        records: Iterable[tuple[bytes, bytes]],
        description: Mapping[str, Any],
        *,
        key_field: str | None = None,
    ) -> int:
        """Replace the content with ``records`` (``(key, value)`` in key order); the number written.

        ``description`` is the source's :meth:`Source.describe` (its ``final_newline`` and
        ``columns`` shape the output). ``key_field`` names the key column of a table a SQL sink
        creates; without it the first column whose value is the key is taken.
        """
        raise NotImplementedError


def ordered(records: Iterable[tuple[bytes, bytes]], what: str) -> Iterator[tuple[bytes, bytes]]:
    """The records, checking that keys increase and values are bytes."""
    previous: bytes | None = None
    for number, (key, value) in enumerate(records, 1):
        if not isinstance(key, bytes) or not isinstance(value, bytes):
            raise UsageError(f"record {number} for {what} is not a pair of bytes")
        check_order(key, previous, f"record {number} for {what}")
        previous = key
        yield key, value


def parse_document(kind: str, value: bytes, key: bytes) -> dict[str, Any]:
    try:
        return document_of(kind, value)
    except RecordError as exc:
        raise RecordError(f"the record {show_key(key)}: {exc}") from None


def document_of(kind: str, value: bytes) -> dict[str, Any]:
    """A stored value parsed back into its document (every kind stores a JSON object)."""
    if kind not in KINDS:
        raise UsageError(f"unknown record kind {kind!r}; choose one of {', '.join(KINDS)}")
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise RecordError(f"a stored {kind} value is not valid JSON") from None
    if type(document) is not dict:
        raise RecordError(f"a stored {kind} value is {json_kind(document)}, not a JSON object")
    return document
