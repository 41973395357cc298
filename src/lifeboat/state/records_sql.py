"""The SQL side of :mod:`lifeboat.state.records`: SQLite and PostgreSQL sources and sinks.

Kept apart so that SQLAlchemy is imported only by commands that name a database URL.
"""

from __future__ import annotations

import datetime
import decimal
import itertools
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from lifeboat.documents import json_kind
from lifeboat.errors import RecordError, StorageError, UsageError
from lifeboat.state.record import (
    COLUMN_TYPES,
    CREDENTIAL_HINTS,
    INT64_MIN,
    LOCATION_FORMS,
    UINT64_LIMIT,
    Location,
    RecordSpec,
    Sink,
    Source,
    SourceRecord,
    check_order,
    ordered,
    parse_document,
    show_key,
    source_record,
)

#: Rows fetched from a SQL cursor at a time, and inserted per statement by a SQL sink.
SQL_BATCH: Final = 5000

_PG_TYPES: Final = {
    16: "boolean",
    17: "bytes",
    20: "integer",
    21: "integer",
    23: "integer",
    26: "integer",
    114: "json",
    3802: "json",
    700: "float",
    701: "float",
    1700: "numeric",
    1082: "timestamp",
    1083: "timestamp",
    1114: "timestamp",
    1184: "timestamp",
    1266: "timestamp",
}


def _type_name(column_type: Any) -> str:
    """One of :data:`COLUMN_TYPES` for a SQLAlchemy column type (text when unsure)."""
    checks: tuple[tuple[type[Any], str], ...] = (
        (sa.Boolean, "boolean"),
        (sa.Integer, "integer"),
        (sa.Float, "float"),
        (sa.Numeric, "numeric"),
        (sa.LargeBinary, "bytes"),
        (sa.DateTime, "timestamp"),
        (sa.Date, "timestamp"),
        (sa.Time, "timestamp"),
        (sa.JSON, "json"),
    )
    for cls, name in checks:
        if isinstance(column_type, cls):
            return name
    type_name = type(column_type).__name__.upper()
    if type_name in ("JSONB", "JSON"):
        return "json"
    if type_name in ("BYTEA", "BLOB"):
        return "bytes"
    return "text"


def _value_type(value: Any) -> str | None:
    """The column type a JSON-converted value suggests (SQLite reports none for a query)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, dict) and value.keys() == {"$hex"}:
        return "bytes"
    if isinstance(value, dict | list):
        return "json"
    return "text"


def _parse_json_column(text: str, where: str, column: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise RecordError(
            f"{where}: column {column!r} is declared JSON but holds no JSON ({text[:40]!r})"
        ) from None


def _json_value(value: Any, where: str, column: str) -> Any:
    """A SQL value as JSON (module docstring); RecordError for a type that has no JSON form."""
    kind = type(value)
    if value is None or kind is str or kind is bool:
        return value
    if kind is int:
        return value if INT64_MIN <= value < UINT64_LIMIT else str(value)
    if kind is float:
        if value != value or value in (float("inf"), float("-inf")):
            raise RecordError(f"{where}: column {column!r} is {value}, which JSON cannot hold")
        return value
    if isinstance(value, decimal.Decimal):
        if value.is_finite() and value == value.to_integral_value():
            return _json_value(int(value), where, column)
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$hex": bytes(value).hex()}
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict | list):
        return value
    if isinstance(value, int):  # an int subclass (an enum)
        return _json_value(int(value), where, column)
    if isinstance(value, str):
        return str(value)
    raise RecordError(
        f"{where}: column {column!r} holds a {type(value).__name__}, which has no JSON form here; "
        "select it as text (CAST(... AS TEXT)) in a query"
    )


def _safe_url(url: URL) -> str:
    """The URL as text with the password masked and credential-like query parameters removed."""
    query = {name: value for name, value in url.query.items() if not _looks_secret(name)}
    return url.set(query=query).render_as_string(hide_password=True)


def _looks_secret(name: str) -> bool:
    lowered = name.lower()
    return any(hint in lowered for hint in CREDENTIAL_HINTS)


def _db_reason(exc: BaseException) -> str:
    """The first line of a database error (the driver's message when there is one)."""
    original = getattr(exc, "orig", None)
    text = str(original if original is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _engine(url: URL, *, transactional_ddl: bool = False) -> sa.Engine:
    engine = sa.create_engine(url, poolclass=NullPool)
    if transactional_ddl and url.get_backend_name() == "sqlite":
        # pysqlite opens transactions itself, and only before data changes; take control so that
        # CREATE TABLE, DELETE and the INSERTs share one transaction and roll back together.
        def no_implicit_transactions(dbapi_connection: Any, source_record: Any) -> None:
            dbapi_connection.isolation_level = None

        def begin(connection: sa.Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        sa.event.listen(engine, "connect", no_implicit_transactions)
        sa.event.listen(engine, "begin", begin)
    return engine


class SqlSource(Source):
    def __init__(
        self, url: URL, shown: str, kind: str, spec: RecordSpec, table: str | None, query: str | None
    ) -> None:
        super().__init__(kind, spec, None)
        self._url = url
        self._shown = shown
        self._table = table
        self._query = query
        self._engine = _engine(url)
        self._columns: list[dict[str, str]] = []
        self._iterator: Iterator[SourceRecord] | None = None

    def describe(self) -> dict[str, Any]:
        description: dict[str, Any] = {"kind": self.kind, "url": self._shown}
        if self._table is not None:
            description["table"] = self._table
        else:
            description["query"] = self._query
        description["columns"] = [dict(column) for column in self._columns]
        description["records"] = self.records
        return description

    def close(self) -> None:
        if self._iterator is not None:
            close = getattr(self._iterator, "close", None)
            if close is not None:
                close()
            self._iterator = None
        self._engine.dispose()

    def __iter__(self) -> Iterator[SourceRecord]:
        self._iterator = super().__iter__()
        return self._iterator

    def _records(self) -> Iterator[SourceRecord]:
        try:
            connection = self._engine.connect()
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(f"cannot connect to {self._shown}: {_db_reason(exc)}") from None
        with connection:
            yield from self._read(connection)

    def _read(self, connection: sa.Connection) -> Iterator[SourceRecord]:
        preparer = connection.dialect.identifier_preparer
        key_column = self.spec.key_field
        label = f"table {self._table!r}" if self._table is not None else "the query"
        declared: dict[str, str] = {}
        try:
            if self._table is not None:
                inspector = sa.inspect(connection)
                if not inspector.has_table(self._table):
                    raise RecordError(f"{self._shown} has no table {self._table!r}")
                for column in inspector.get_columns(self._table):
                    declared[column["name"]] = _type_name(column["type"])
                source = preparer.quote_identifier(self._table)
            else:
                assert self._query is not None
                # text() reads ":name" as a parameter; escaping every colon passes the SQL through.
                source = "(" + self._query.replace(":", "\\:") + ") AS q"
                probe = connection.execute(sa.text(f"SELECT * FROM {source} LIMIT 0"))  # noqa: S608
                description = probe.cursor.description or ()
                probe.close()
                for entry in description:
                    type_code = entry[1]
                    if isinstance(type_code, int) and type_code in _PG_TYPES:
                        declared[entry[0]] = _PG_TYPES[type_code]
                names = [entry[0] for entry in description]
                _check_unique(names, f"{label} on {self._shown}")
                if key_column not in names:
                    raise RecordError(
                        f"{label} on {self._shown} has no key column {key_column!r} "
                        f"(columns: {', '.join(map(repr, names))})"
                    )
            if self._table is not None and key_column not in declared:
                raise RecordError(
                    f"{label} on {self._shown} has no key column {key_column!r} "
                    f"(columns: {', '.join(map(repr, declared))})"
                )
            order = f"CAST({preparer.quote_identifier(key_column)} AS TEXT)"
            if connection.dialect.name == "postgresql":
                order += ' COLLATE "C"'
            else:  # SQLite: a column's own collation (NOCASE, say) would carry over through the CAST
                order += " COLLATE BINARY"
            result = connection.execute(
                sa.text(f"SELECT * FROM {source} ORDER BY {order}"),  # noqa: S608
                execution_options={"stream_results": True, "yield_per": SQL_BATCH},
            )
        except sa.exc.SQLAlchemyError as exc:
            raise RecordError(f"reading {label} on {self._shown} failed: {_db_reason(exc)}") from None
        names = list(result.keys())
        _check_unique(names, f"{label} on {self._shown}")
        json_columns = [name for name in names if declared.get(name) == "json"]
        inferred: dict[str, str] = {}
        spec = self.spec
        dumps = orjson.dumps
        previous: bytes | None = None
        try:
            for row in result:
                self.bytes_read += 1
                where = f"{label} row {self.bytes_read}"
                document = {
                    name: _json_value(value, where, name) for name, value in zip(names, row, strict=True)
                }
                for name in json_columns:  # SQLite keeps JSON as text: read it back as JSON
                    if isinstance(document[name], str):
                        document[name] = _parse_json_column(document[name], where, name)
                key = spec.key_of(document, where)
                check_order(key, previous, f"{where} (key {show_key(key)})")
                sums = spec.sums_of(document, where, key)
                try:
                    value = dumps(document)
                except TypeError as exc:
                    raise RecordError(f"{where}: the row has no JSON form ({exc})") from None
                for name in names:
                    if name not in declared and name not in inferred:
                        guess = _value_type(document[name])
                        if guess is not None:
                            inferred[name] = guess
                previous = key
                self.records += 1
                yield source_record(key, value, sums, document)
        except sa.exc.SQLAlchemyError as exc:
            raise RecordError(f"reading {label} on {self._shown} failed: {_db_reason(exc)}") from None
        finally:
            self._columns = [
                {"name": name, "type": declared.get(name) or inferred.get(name, "text")} for name in names
            ]
            result.close()


def _check_unique(names: list[str], what: str) -> None:
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise RecordError(f"{what} returns the column {twice[0]!r} twice; give the columns distinct names")


# --- locations --------------------------------------------------------------------------------


def parse_url(text: str, kind: str | None) -> Location:
    try:
        url = make_url(text)
    except (sa.exc.ArgumentError, ValueError):
        raise UsageError(f"{text.split('://', 1)[0]}://... is not a valid database URL") from None
    backend, _, driver = url.drivername.partition("+")
    shown = _safe_url(url)
    if backend == "sqlite" and driver in ("", "pysqlite"):
        found = "sqlite"
        if not url.database:
            raise UsageError(f"{shown} names no database file; write sqlite:///PATH")
    elif backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        found = "postgresql"
        url = url.set(drivername="postgresql+psycopg")
    else:
        raise UsageError(
            f"unknown record location {shown}; give {LOCATION_FORMS} (PostgreSQL through psycopg 3)"
        )
    if kind is not None and kind != found:
        raise UsageError(f"the location {shown} is a {found} database, not {kind}")
    return Location(found, None, url, shown)


def _key_text(value: Any) -> bytes | None:
    if type(value) is str:
        return value.encode("utf-8", "surrogatepass")
    if type(value) is int:
        return str(value).encode("ascii")
    return None


class SqlSink(Sink):
    def __init__(self, url: URL, shown: str, kind: str, table: str) -> None:
        super().__init__(kind)
        self._url = url
        self._shown = shown
        self._table = table

    def write(
        self,
        records: Iterable[tuple[bytes, bytes]],
        description: Mapping[str, Any],
        *,
        key_field: str | None = None,
    ) -> int:
        source_kind = str(description.get("kind", self.kind))
        what = f"table {self._table!r} on {self._shown}"
        iterator = ordered(records, what)
        first: list[tuple[bytes, dict[str, Any]]] = []
        for key, value in iterator:
            first.append((key, parse_document(source_kind, value, key)))
            if len(first) >= SQL_BATCH:
                break
        columns = self._columns(description, first)
        names = [name for name, _ in columns]
        types = dict(columns)
        if key_field is None and first:
            key, document = first[0]
            key_field = next((name for name in names if _key_text(document.get(name)) == key), None)
        engine = _engine(self._url, transactional_ddl=True)
        count = 0
        try:
            with engine.begin() as connection:
                postgres = connection.dialect.name == "postgresql"
                samples = {
                    name: next((d[name] for _, d in first if d.get(name) is not None), None) for name in names
                }
                metadata = sa.MetaData()
                ddl = sa.Table(
                    self._table,
                    metadata,
                    *(
                        sa.Column(
                            name,
                            _sql_type(types[name], samples[name]),
                            primary_key=name == key_field,
                            autoincrement=False,
                        )
                        for name in names
                    ),
                )
                ddl.create(connection, checkfirst=True)
                dml = sa.table(self._table, *(sa.column(name) for name in names))
                connection.execute(dml.delete())
                batch: list[dict[str, Any]] = []
                rest = ((key, parse_document(source_kind, value, key)) for key, value in iterator)
                for key, document in itertools.chain(first, rest):
                    extra = document.keys() - types.keys()
                    if extra:
                        raise RecordError(
                            f"the record {show_key(key)} has the field {sorted(extra)[0]!r}, which is not a "
                            f"column of {what}"
                        )
                    batch.append(
                        {
                            name: _sql_value(document.get(name), types[name], postgres, key, name)
                            for name in names
                        }
                    )
                    count += 1
                    if len(batch) >= SQL_BATCH:
                        connection.execute(dml.insert(), batch)
                        batch = []
                if batch:
                    connection.execute(dml.insert(), batch)
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(f"cannot write {what}: {_db_reason(exc)}; it keeps its old rows") from None
        finally:
            engine.dispose()
        return count

    def _columns(
        self, description: Mapping[str, Any], first: list[tuple[bytes, dict[str, Any]]]
    ) -> list[tuple[str, str]]:
        """The (name, type) of every column: from the description, else from the first records."""
        described = description.get("columns")
        columns: list[tuple[str, str]] = []
        if isinstance(described, list):
            for column in described:
                if isinstance(column, Mapping):
                    name, kind = column.get("name"), column.get("type", "text")
                else:
                    name, kind = column, "text"
                if not isinstance(name, str) or kind not in COLUMN_TYPES:
                    raise UsageError(f"the description's column {column!r} is not a name with a known type")
                columns.append((name, kind))
            return columns
        if described is not None:
            raise UsageError("the description's 'columns' is not a list")
        types: dict[str, str | None] = {}
        for _, document in first:
            for name, value in document.items():
                if types.get(name) is None:
                    types[name] = _value_type(value)
        return [(name, kind or "text") for name, kind in types.items()]


def _sql_type(kind: str, sample: Any) -> Any:
    """The SQLAlchemy type a created column gets (a timestamp's sample picks date, time or both)."""
    if kind == "timestamp":
        text = sample if isinstance(sample, str) else ""
        if len(text) == 10 and text[4:5] == "-":
            return sa.Date()
        if text[2:3] == ":":
            return sa.Time()
        has_zone = text.endswith("Z") or text[19:].count("+") + text[19:].count("-") > 0
        return sa.DateTime(timezone=has_zone)
    types: dict[str, Callable[[], Any]] = {
        "integer": sa.BigInteger,
        "numeric": sa.Numeric,
        "text": sa.Text,
        "boolean": sa.Boolean,
        "float": sa.Double,
        "bytes": sa.LargeBinary,
        "json": sa.JSON,
    }
    return types[kind]()


def _sql_value(value: Any, kind: str, postgres: bool, key: bytes, column: str) -> Any:
    """A document's value as the driver should receive it for a column of type ``kind``."""
    if value is None:
        return None
    if kind == "bytes":
        if isinstance(value, dict) and value.keys() == {"$hex"} and isinstance(value["$hex"], str):
            try:
                return bytes.fromhex(value["$hex"])
            except ValueError:
                pass
        raise RecordError(f'the record {show_key(key)}: column {column!r} is not {{"$hex": ...}} bytes')
    if kind == "json":
        if postgres or not isinstance(value, str):
            return orjson.dumps(value).decode()
        return value
    if kind == "numeric" and isinstance(value, str) and postgres:
        try:
            return decimal.Decimal(value)
        except decimal.InvalidOperation:
            raise RecordError(f"the record {show_key(key)}: column {column!r} is not a number") from None
    if kind == "integer" and isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if kind == "boolean" and type(value) is int and value in (0, 1):
        return bool(value)
    if kind == "text" and not isinstance(value, str):
        return orjson.dumps(value).decode()
    if isinstance(value, dict | list):
        raise RecordError(
            f"the record {show_key(key)}: column {column!r} ({kind}) cannot hold {json_kind(value)}"
        )
    return value
