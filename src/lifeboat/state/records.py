"""Record sources and sinks for state snapshots: JSON Lines, CSV, SQLite and PostgreSQL.

A record set is a sorted map ``key -> value``. A :class:`Source` reads one from a location and
yields :class:`SourceRecord` objects in key order; a :class:`Sink` writes one back, replacing
what the location held. :class:`RecordSpec` says which field is the key and which fields are
summed (the ``sums`` a prolly tree commits to).

Keys
    The key field is a top-level field (a column). Its value must be a string (the key is its
    UTF-8) or an integer (its decimal digits); anything else, or no key field, is a
    :class:`RecordError`. Keys are compared as bytes and must strictly increase: a repeat is a
    "duplicate key", a step back "keys out of order"; both messages name the line or row and the
    keys. A key is at most :data:`~lifeboat.state.prolly.MAX_KEY_BYTES` bytes.

Sums
    Each sum field is a dotted path into the record (``balances.USDC``, ``amount``). The value
    there must be a non-negative integer below ``2**128``: a JSON integer, or a string of ASCII
    decimal digits (``"123"``). A path that is absent counts 0; ``null``, a boolean, a fraction,
    a negative number, other text, an object or a list is a :class:`RecordError` naming the
    line or row, the key and the field, as is a path that runs through something that is not an
    object. When a record has no field at the path's first step, a top-level field named by the
    whole dotted path is used instead, so a CSV column called ``balances.USDC`` works too.

Values
    JSON Lines: the line's bytes exactly as read, without its ``\\n`` (a ``\\r`` before it
    stays). CSV and SQL: ``orjson.dumps`` of the row as an object, columns in source order. So
    a sorted JSON Lines file restores bit-exact; CSV and SQL restore the same rows.

JSON Lines (``*.jsonl``, ``*.ndjson`` or ``jsonl:PATH``)
    The file is read in large chunks and split on ``\\n``; every line must be a JSON object
    (blank lines are errors). The document handed to callers is orjson's reading of the line,
    in which integer literals outside the 64-bit range are floats; the sums are always exact
    (a line with such a number at a sum path is read again with the standard library, whose
    reading then becomes the document). The stored value is the raw line either way.

CSV (``*.csv`` or ``csv:PATH``)
    UTF-8 (a byte-order mark is skipped), a header row of unique column names that includes
    the key column, then rows with exactly as many fields. Every value is a string. The sink
    writes the header and the rows with ``\\n`` line ends.

SQL (``sqlite:///PATH``, ``postgresql://...``)
    Through SQLAlchemy Core; ``postgresql://`` URLs use the psycopg 3 driver. A source reads
    a ``table`` or the rows of a ``query`` ordered by ``CAST(key AS TEXT)`` (``COLLATE "C"`` on
    PostgreSQL), which is bytewise UTF-8 order, through a streaming cursor. Row values become
    JSON: integers, text, booleans and nulls as they are; integers outside the 64-bit range as
    decimal strings; exact numerics as integers when integral, else as their decimal string;
    floats as they are (not NaN or infinities); bytes as ``{"$hex": "..."}``; dates, times and
    timestamps as ISO 8601 text; UUIDs as text; JSON column values as they are. A table name
    is one identifier, always quoted, never pasted into SQL; a ``query`` is the operator's own
    SQL and runs as given. The sink writes in one transaction: create the table if it is
    missing, delete every row, insert the records in batches, commit; on any failure the
    transaction rolls back and the table keeps its old rows.

Atomicity
    File sinks write a temporary file in the destination directory, fsync it and rename it
    over the destination (:func:`lifeboat.fs.atomic_writer`). A new file is created 0600 (the
    records may be private); an existing file keeps its permissions.

Nothing here puts a password into a message or a description: URLs are shown with the password
masked and without query parameters that look like credentials.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, Final, NoReturn

import orjson

from lifeboat.documents import json_kind
from lifeboat.errors import RecordError, StorageError, UsageError
from lifeboat.fs import SECRET_MODE, atomic_writer, open_for_reading
from lifeboat.state.prolly import MAX_KEY_BYTES, MAX_VALUE_BYTES
from lifeboat.state.record import (
    COLUMN_TYPES,
    KINDS,
    LOCATION_FORMS,
    MISSING,
    Location,
    RecordSpec,
    Sink,
    Source,
    SourceRecord,
    check_order,
    document_of,
    ordered,
    parse_document,
    show_key,
    source_record,
)

__all__ = [
    "COLUMN_TYPES",
    "KINDS",
    "LOCATION_FORMS",
    "JsonLinesSource",
    "RecordSpec",
    "Sink",
    "Source",
    "SourceRecord",
    "document_of",
    "open_sink",
    "open_source",
]


#: Bytes read from a JSON Lines or CSV file at a time.
READ_CHUNK: Final = 8 << 20
#: Bytes of records a JSON Lines or CSV sink collects before one write.
WRITE_CHUNK: Final = 4 << 20


class _JsonLinesSource(Source):
    def __init__(self, path: Path, spec: RecordSpec) -> None:
        self._path = path
        self._handle: BinaryIO = open_for_reading(path, "record file")
        try:
            size: int | None = os.fstat(self._handle.fileno()).st_size
        except OSError:
            size = None
        super().__init__("jsonl", spec, size)
        self._final_newline = True

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "jsonl",
            "path": str(self._path),
            "final_newline": self._final_newline,
            "records": self.records,
            "bytes": self.bytes_read,
        }

    def close(self) -> None:
        self._handle.close()

    def _batches(self) -> Iterator[list[bytes]]:
        """The file's lines, a chunk's worth at a time; progress advances as each batch is done."""
        for block in self._blocks():
            yield block.split(b"\n")

    def blocks(self) -> Iterator[bytes]:
        """The file's lines a chunk's worth at a time, each batch as one block of bytes (the lines
        joined by ``\n``, without the last one's); for readers that parse elsewhere, which set
        :attr:`records` themselves. Progress advances as each block is done."""
        self._start()
        return self._blocks()

    def _blocks(self) -> Iterator[bytes]:
        rest = b""
        consumed = 0
        while True:
            try:
                chunk = self._handle.read(READ_CHUNK)
            except OSError as exc:
                raise StorageError(f"cannot read record file {self._path}: {exc.strerror or exc}") from exc
            if not chunk:
                break
            cut = chunk.rfind(b"\n")
            if cut < 0:
                rest += chunk
                if len(rest) > MAX_VALUE_BYTES:
                    self._too_long_at(consumed - len(rest) + len(chunk))
                consumed += len(chunk)
                continue
            block = b"".join((rest, memoryview(chunk)[:cut]))
            if rest:
                end = block.find(b"\n", len(rest))
                if (len(block) if end < 0 else end) > MAX_VALUE_BYTES:
                    self._too_long_at(consumed - len(rest))
            rest = chunk[cut + 1 :]
            consumed += len(chunk)
            if len(rest) > MAX_VALUE_BYTES:
                self._too_long_at(consumed - len(rest))
            yield block
            self.bytes_read = consumed - len(rest)
            if self.progress is not None:
                self.progress(self.bytes_read)
        if rest:
            self._final_newline = False
            yield rest
            self.bytes_read = consumed

    def rewind(self) -> None:
        """Read the file again from its start (iteration or :meth:`blocks` may follow once more)."""
        try:
            self._handle.seek(0)
        except OSError as exc:
            raise StorageError(f"cannot read record file {self._path} again: {exc.strerror or exc}") from exc
        self._started = False
        self._final_newline = True
        self.bytes_read = 0
        self.records = 0

    def _records(self) -> Iterator[SourceRecord]:
        spec = self.spec
        key_field = spec.key_field
        fast_sums = spec._plan.fast
        no_sums = spec._plan.count == 0
        loads = orjson.loads
        decode_error = orjson.JSONDecodeError
        make = tuple.__new__
        previous = b""
        line_number = 0
        for lines in self._batches():
            for line in lines:
                line_number += 1
                try:
                    document = loads(line)
                except decode_error:
                    self._bad_line(line_number, line)
                if type(document) is not dict:
                    self._bad_line(line_number, line, document)
                raw_key = document.get(key_field)
                if type(raw_key) is str and len(raw_key) <= MAX_KEY_BYTES // 4:
                    key = raw_key.encode()
                else:
                    key = spec.key_of(document, self._where(line_number))
                if key <= previous and line_number > 1:
                    check_order(key, previous, self._where(line_number))
                if no_sums:
                    sums: tuple[int, ...] | None = ()
                else:
                    sums = fast_sums(document)
                    if sums is None:
                        document, sums = self._exact(line, line_number, key)
                previous = key
                yield make(SourceRecord, (key, line, sums, document))
            self.records = line_number

    def differences(self, old: Iterable[tuple[bytes, bytes]]) -> Iterator[SourceRecord | bytes]:
        """As :meth:`Source.differences`; a line equal to the old record's value is that record
        (the value is the line itself), so unchanged lines are compared, never parsed."""
        self._start()
        earlier = iter(old)
        before = next(earlier, None)
        previous = b""
        line_number = 0
        for lines in self._batches():
            for line in lines:
                line_number += 1
                if before is not None and line == before[1]:
                    key = before[0]
                    if key <= previous and line_number > 1:
                        check_order(key, previous, self._where(line_number))
                    previous = key
                    before = next(earlier, None)
                    continue
                record = self._parse_line(line, line_number, previous)
                previous = record.key
                while before is not None and before[0] < record.key:
                    yield before[0]
                    before = next(earlier, None)
                if before is not None and before[0] == record.key:
                    before = next(earlier, None)
                yield record
            self.records = line_number
        while before is not None:
            yield before[0]
            before = next(earlier, None)

    def _parse_line(self, line: bytes, line_number: int, previous: bytes) -> SourceRecord:
        """One line read as :meth:`_records` reads it (the slow path of :meth:`differences`)."""
        try:
            document = orjson.loads(line)
        except orjson.JSONDecodeError:
            self._bad_line(line_number, line)
        if type(document) is not dict:
            self._bad_line(line_number, line, document)
        key = self.spec.key_of(document, self._where(line_number))
        if key <= previous and line_number > 1:
            check_order(key, previous, self._where(line_number))
        sums = self.spec._plan.fast(document) if self.spec._plan.count else ()
        if sums is None:
            document, sums = self._exact(line, line_number, key)
        return SourceRecord(key, line, sums, document)

    def _where(self, line_number: int) -> str:
        return f"{self._path} line {line_number}"

    def _exact(self, line: bytes, line_number: int, key: bytes) -> tuple[dict[str, Any], tuple[int, ...]]:
        """The precise reading of a line whose sums the fast path did not take."""
        try:
            document: dict[str, Any] = json.loads(line)  # exact integers beyond 64 bits
        except (ValueError, RecursionError):
            self._bad_line(line_number, line)
        return document, self.spec.sums_of(document, self._where(line_number), key)

    def _too_long_at(self, offset: int) -> NoReturn:
        """Refuse the over-long line that starts at byte ``offset`` (its number counted only now)."""
        line_number = 1
        try:
            self._handle.seek(0)
            while offset > 0:
                chunk = self._handle.read(min(READ_CHUNK, offset))
                if not chunk:
                    break
                line_number += chunk.count(b"\n")
                offset -= len(chunk)
        except OSError as exc:
            raise StorageError(f"cannot read record file {self._path}: {exc.strerror or exc}") from exc
        self._too_long(line_number)

    def _too_long(self, line_number: int) -> NoReturn:
        raise RecordError(
            f"{self._where(line_number)} is longer than {MAX_VALUE_BYTES} bytes, the largest record value"
        )

    def _bad_line(self, line_number: int, line: bytes, document: object = MISSING) -> NoReturn:
        where = self._where(line_number)
        if not line.strip():
            raise RecordError(f"{where} is blank; every line must be one JSON object")
        if document is MISSING:
            raise RecordError(f"{where} is not valid JSON; every line must be one JSON object")
        raise RecordError(
            f"{where} is {json_kind(document)}, not a JSON object; every line must be one object"
        )


#: The JSON Lines source (:meth:`~_JsonLinesSource.blocks` and :meth:`~_JsonLinesSource.rewind`
#: serve the parallel reading, :mod:`lifeboat.state.parallel`).
JsonLinesSource = _JsonLinesSource


class _CsvSource(Source):
    def __init__(self, path: Path, spec: RecordSpec) -> None:
        self._path = path
        self._handle: BinaryIO = open_for_reading(path, "record file")
        try:
            size: int | None = os.fstat(self._handle.fileno()).st_size
        except OSError:
            size = None
        super().__init__("csv", spec, size)
        self._columns: list[str] = []

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "csv",
            "path": str(self._path),
            "columns": list(self._columns),
            "records": self.records,
            "bytes": self.bytes_read,
        }

    def close(self) -> None:
        self._handle.close()

    def _records(self) -> Iterator[SourceRecord]:
        text = io.TextIOWrapper(self._handle, encoding="utf-8-sig", newline="")
        reader = csv.reader(text, strict=True)
        spec = self.spec
        try:
            yield from self._rows(reader, spec)
        except UnicodeDecodeError:
            raise RecordError(f"{self._path} line {reader.line_num + 1} is not UTF-8 text") from None
        except csv.Error as exc:
            raise RecordError(f"{self._path} line {reader.line_num}: {exc}") from None
        except OSError as exc:
            raise StorageError(f"cannot read record file {self._path}: {exc.strerror or exc}") from exc
        finally:
            text.detach()
        self.bytes_read = self.total if self.total is not None else self.bytes_read

    def _rows(self, reader: Any, spec: RecordSpec) -> Iterator[SourceRecord]:
        header = next(reader, None)
        if not header:
            raise RecordError(f"{self._path} has no header row; the first line must name the columns")
        seen: set[str] = set()
        for name in header:
            if name in seen:
                raise RecordError(f"{self._path} line 1: the column {name!r} appears twice")
            seen.add(name)
        if spec.key_field not in seen:
            raise RecordError(
                f"{self._path} line 1: there is no key column {spec.key_field!r} "
                f"(columns: {', '.join(map(repr, header))})"
            )
        self._columns = list(header)
        width = len(header)
        previous: bytes | None = None
        dumps = orjson.dumps
        tell = self._handle.tell
        for row in reader:
            where = f"{self._path} line {reader.line_num}"
            if len(row) != width:
                if not row:
                    raise RecordError(f"{where} is blank; every row must have {width} fields")
                raise RecordError(f"{where} has {len(row)} fields; the header has {width}")
            document = dict(zip(header, row, strict=True))
            key = spec.key_of(document, where)
            check_order(key, previous, where)
            sums = spec.sums_of(document, where, key)
            previous = key
            self.records += 1
            if self.records % 4096 == 0:
                self.bytes_read = tell()
            yield source_record(key, dumps(document), sums, document)


# --- SQL --------------------------------------------------------------------------------------

#: PostgreSQL type OIDs (a query's cursor description) and the column type each stands for.


def _parse_location(location: str, kind: str | None = None) -> Location:
    if not isinstance(location, str | os.PathLike):
        raise UsageError(f"a record location is a path or a URL, not {type(location).__name__}")
    text = os.fspath(location)
    if "://" in text:
        from lifeboat.state.records_sql import parse_url

        return parse_url(text, kind)
    for prefix in ("jsonl", "csv"):
        if text.startswith(prefix + ":") and len(text) > len(prefix) + 1:
            found = prefix
            text = text[len(prefix) + 1 :]
            break
    else:
        lowered = text.lower()
        if lowered.endswith((".jsonl", ".ndjson")):
            found = "jsonl"
        elif lowered.endswith(".csv"):
            found = "csv"
        elif kind in ("jsonl", "csv"):
            found = kind
        else:
            raise UsageError(f"unknown record location {text!r}; give {LOCATION_FORMS}")
    if kind is not None and kind != found:
        raise UsageError(f"the location {text!r} is a {found} file, not {kind}")
    return Location(found, Path(text), None, text)


def open_source(
    location: str, spec: RecordSpec, *, table: str | None = None, query: str | None = None
) -> Source:
    """Open the record set at ``location`` for one pass in key order (see the module docstring).

    SQL locations need exactly one of ``table`` and ``query``; files take neither. A file that
    is missing is a StorageError; bad records surface as RecordError while iterating.
    """
    if not isinstance(spec, RecordSpec):
        raise UsageError("open_source needs a RecordSpec")
    where = _parse_location(location)
    if where.url is None:
        if table is not None or query is not None:
            raise UsageError(f"{where.shown} is a {where.kind} file; --table and --query are for databases")
        assert where.path is not None
        if where.kind == "jsonl":
            return _JsonLinesSource(where.path, spec)
        return _CsvSource(where.path, spec)
    if (table is None) == (query is None):
        raise UsageError(f"reading {where.shown} needs exactly one of a table and a query")
    if table is not None:
        _check_table_name(table)
    elif not isinstance(query, str) or not query.strip():
        raise UsageError("the query is empty")
    from lifeboat.state.records_sql import SqlSource

    return SqlSource(where.url, where.shown, where.kind, spec, table, query)


def _check_table_name(table: object) -> None:
    if not isinstance(table, str) or not table or "\x00" in table:
        raise UsageError(f"{table!r} is not a table name")


def _file_mode(path: Path) -> int:
    with contextlib.suppress(OSError):
        return stat.S_IMODE(os.stat(path).st_mode)
    return SECRET_MODE


class _JsonLinesSink(Sink):
    def __init__(self, path: Path) -> None:
        super().__init__("jsonl")
        self._path = path

    def write(
        self,
        records: Iterable[tuple[bytes, bytes]],
        description: Mapping[str, Any],
        *,
        key_field: str | None = None,
    ) -> int:
        final_newline = description.get("final_newline", True) is not False
        count = 0
        with atomic_writer(self._path, mode=_file_mode(self._path), overwrite=True) as handle:
            pending: list[bytes] = []
            size = 0
            for key, value in ordered(records, str(self._path)):
                if b"\n" in value:
                    raise RecordError(
                        f"the value of key {show_key(key)} holds a line break; it cannot be a JSON Lines record"
                    )
                if count:
                    pending.append(b"\n")
                pending.append(value)
                count += 1
                size += len(value) + 1
                if size >= WRITE_CHUNK:
                    handle.write(b"".join(pending))
                    pending.clear()
                    size = 0
            if count and final_newline:
                pending.append(b"\n")
            handle.write(b"".join(pending))
        return count


def _column_names(description: Mapping[str, Any]) -> list[str] | None:
    """The column names a description lists (CSV: names; SQL: {"name", "type"} objects)."""
    columns = description.get("columns")
    if columns is None:
        return None
    if not isinstance(columns, list):
        raise UsageError("the description's 'columns' is not a list")
    return [column["name"] if isinstance(column, Mapping) else column for column in columns]


def _csv_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return orjson.dumps(value).decode()


class _CsvSink(Sink):
    def __init__(self, path: Path) -> None:
        super().__init__("csv")
        self._path = path

    def write(
        self,
        records: Iterable[tuple[bytes, bytes]],
        description: Mapping[str, Any],
        *,
        key_field: str | None = None,
    ) -> int:
        source_kind = str(description.get("kind", "csv"))
        columns = _column_names(description)
        count = 0
        with atomic_writer(self._path, mode=_file_mode(self._path), overwrite=True) as handle:
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            for key, value in ordered(records, str(self._path)):
                document = parse_document(source_kind, value, key)
                if columns is None:
                    columns = list(document)
                if count == 0:
                    writer.writerow(columns)
                extra = document.keys() - set(columns)
                if extra:
                    raise RecordError(
                        f"the record {show_key(key)} has the field {sorted(extra)[0]!r}, which is not a column "
                        f"({', '.join(map(repr, columns))})"
                    )
                writer.writerow([_csv_text(document.get(name)) for name in columns])
                count += 1
                if buffer.tell() >= WRITE_CHUNK:
                    handle.write(buffer.getvalue().encode("utf-8"))
                    buffer.seek(0)
                    buffer.truncate()
            if count == 0 and columns is not None:
                writer.writerow(columns)
            handle.write(buffer.getvalue().encode("utf-8"))
        return count


def open_sink(location: str, *, table: str | None = None, kind: str | None = None) -> Sink:
    """Where to write a record set: a file (``kind`` forces jsonl or csv) or a database ``table``."""
    if kind is not None and kind not in KINDS:
        raise UsageError(f"unknown record kind {kind!r}; choose one of {', '.join(KINDS)}")
    where = _parse_location(location, kind)
    if where.url is None:
        if table is not None:
            raise UsageError(f"{where.shown} is a {where.kind} file; a table is for databases")
        assert where.path is not None
        return _JsonLinesSink(where.path) if where.kind == "jsonl" else _CsvSink(where.path)
    if table is None:
        raise UsageError(f"writing to {where.shown} needs a table name")
    _check_table_name(table)
    from lifeboat.state.records_sql import SqlSink

    return SqlSink(where.url, where.shown, where.kind, table)
