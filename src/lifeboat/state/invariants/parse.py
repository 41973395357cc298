"""Parsing an invariants file: TOML text to :class:`~lifeboat.state.invariants.rules.Invariants`.

Every unknown table or field, missing or second relation, bad path or expression and newer
version is refused with a :class:`RecordError` naming the file and the invariant.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from blake3 import blake3

from lifeboat.errors import RecordError, StorageError
from lifeboat.fs import open_for_reading
from lifeboat.state.invariants.rules import (
    DEFAULT_LIMIT,
    FIELD,
    FIELDS,
    FORMAT_VERSION,
    KINDS,
    MAX_FILE_BYTES,
    MAX_LIMIT,
    MISSING,
    PLACEHOLDER,
    RELATIONS,
    STAR,
    TARGET_FIELDS,
    TOP_FIELDS,
    BoundInvariant,
    FieldPath,
    Invariant,
    Invariants,
    Kind,
    RuleInvariant,
    SumInvariant,
    WhereClause,
    list_prefix,
    show_value,
)
from lifeboat.state.invariants.sandbox import compile_rule

# --- parsing ----------------------------------------------------------------------------------


class _Parser:
    """Turns the TOML document into definitions, raising :class:`RecordError` naming the culprit."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, message: str) -> NoReturn:
        raise RecordError(f"invariants file {self.where}: {message}")

    def fields(self, table: Mapping[str, Any], expected: frozenset[str], what: str) -> None:
        unknown = sorted(set(table) - expected)
        if unknown:
            listed = ", ".join(repr(name) for name in unknown)
            allowed = ", ".join(sorted(expected))
            self.fail(f"{what} has unknown field {listed} (allowed: {allowed})")

    def string(self, table: Mapping[str, Any], field: str, what: str) -> str:
        value = table.get(field, MISSING)
        if value is MISSING:
            self.fail(f"{what} lacks the field {field!r}")
        if not isinstance(value, str) or not value:
            self.fail(f"{what} field {field!r} must be a non-empty string, not {show_value(value)}")
        return value

    def path(self, table: Mapping[str, Any], field: str, what: str, *, plain: bool = False) -> FieldPath:
        text = self.string(table, field, what)
        try:
            path = FieldPath.parse(text)
        except ValueError as exc:
            self.fail(f"{what} field {field!r}: {text!r} is not a valid path: {exc}")
        if plain and not path.plain:
            self.fail(f"{what} field {field!r}: {text!r} must be a plain dotted path, without '*' or '[]'")
        return path

    def integer(self, table: Mapping[str, Any], field: str, what: str) -> int | None:
        value = table.get(field)
        if value is not None and (type(value) is not int):
            self.fail(f"{what} field {field!r} must be an integer, not {show_value(value)}")
        return value

    def where_clause(self, table: Mapping[str, Any], what: str) -> WhereClause:
        given = table.get("where", {})
        if not isinstance(given, dict):
            self.fail(f"{what} field 'where' must be a table of field = value, not {show_value(given)}")
        flat: list[tuple[str, Any]] = []

        def flatten(prefix: str, value: Mapping[str, Any]) -> None:
            for name, item in value.items():
                full = f"{prefix}.{name}" if prefix else name
                if isinstance(item, dict):
                    flatten(full, item)
                else:
                    flat.append((full, item))

        flatten("", given)
        clauses: list[tuple[FieldPath, str | int | bool]] = []
        for text, wanted in flat:
            try:
                path = FieldPath.parse(text)
            except ValueError as exc:
                self.fail(f"{what} 'where' field {text!r} is not a valid path: {exc}")
            if not path.plain:
                self.fail(f"{what} 'where' field {text!r} must be a plain dotted path, without '*' or '[]'")
            if not isinstance(wanted, str | int):  # bool is an int
                self.fail(f"{what} 'where' value of {text!r} must be a string, integer or boolean")
            clauses.append((path, wanted))
        return tuple(clauses)

    def document(self, text: str) -> tuple[int, tuple[Invariant, ...]]:
        try:
            body = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            self.fail(f"not valid TOML ({exc})")
        self.fields(body, TOP_FIELDS, "the file")
        version = body.get("version", MISSING)
        if version is MISSING:
            self.fail(f"lacks 'version = {FORMAT_VERSION}'")
        if type(version) is not int or version < 1:
            self.fail(f"'version' is {show_value(version)}, not a format version")
        if version > FORMAT_VERSION:
            self.fail(
                f"version {version} is newer than this Lifeboat reads (version {FORMAT_VERSION}); "
                "upgrade Lifeboat to read it"
            )
        limit = body.get("limit", DEFAULT_LIMIT)
        if type(limit) is not int or not 0 <= limit <= MAX_LIMIT:
            self.fail(f"'limit' is {show_value(limit)}, not an integer from 0 to {MAX_LIMIT}")
        definitions: list[Invariant] = []
        names: set[str] = set()
        for kind in body:
            if kind not in KINDS:
                continue
            tables = body[kind]
            if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
                self.fail(f"{kind!r} must be an array of tables, written [[{kind}]]")
            for number, table in enumerate(tables, 1):
                name = table.get("name")
                if not isinstance(name, str) or not name:
                    self.fail(f"[[{kind}]] number {number} needs a 'name' (a non-empty string)")
                what = f"{kind} invariant {name!r}"
                if name in names:
                    self.fail(f"{what}: the name is used twice; invariant names must be unique")
                names.add(name)
                self.fields(table, FIELDS[kind], what)
                definitions.append(self.definition(kind, name, table, what))
        if not definitions:
            self.fail("declares no invariant (add a [[sum]], [[bound]] or [[rule]] table)")
        return limit, tuple(definitions)

    def definition(self, kind: Kind, name: str, table: Mapping[str, Any], what: str) -> Invariant:
        where = self.where_clause(table, what)
        if kind == "sum":
            return self.sum(name, where, table, what)
        if kind == "bound":
            field = self.path(table, "field", what)
            minimum = self.integer(table, "min", what)
            maximum = self.integer(table, "max", what)
            if minimum is None and maximum is None:
                self.fail(f"{what} needs 'min', 'max' or both")
            if minimum is not None and maximum is not None and minimum > maximum:
                self.fail(f"{what} has min {minimum} above max {maximum}")
            return BoundInvariant(name, where, field, minimum, maximum)
        expr = self.string(table, "expr", what)
        return RuleInvariant(name, where, expr, compile_rule(expr, lambda m: self.fail(f"{what}: {m}")))

    def sum(self, name: str, where: WhereClause, table: Mapping[str, Any], what: str) -> SumInvariant:
        amount = self.path(table, "amount", what)
        given = [relation for relation in RELATIONS if relation in table]
        if len(given) != 1:
            shown = " and ".join(given) if given else "none"
            self.fail(f"{what} needs exactly one of equals, at_most, at_least (it has {shown})")
        relation = given[0]
        target = table[relation]
        target_what = f"{what} field {relation!r}"
        if not isinstance(target, dict):
            self.fail(f"{target_what} must be a table {{ key = ..., field = ... }}")
        self.fields(target, TARGET_FIELDS, target_what)
        key = self.string(target, "key", target_what)
        field = self.path(target, "field", target_what, plain=True)
        templated = PLACEHOLDER in key
        rest = key.replace(PLACEHOLDER, "", 1)
        if "{" in rest or "}" in rest:
            self.fail(f"{target_what} key {key!r}: the only placeholder is {PLACEHOLDER}, once")
        group: FieldPath | None = None
        if "group" in table:
            group = self.path(table, "group", what)
            if not templated:
                self.fail(f"{what} has 'group' but its key {key!r} has no {PLACEHOLDER}")
            prefix = list_prefix(amount.steps)
            if group.steps[: len(prefix)] != prefix or any(
                op != FIELD for op, _ in group.steps[len(prefix) :]
            ):
                shared = _list_prefix_text(amount.text) or "the record"
                self.fail(
                    f"{what} group {group.text!r} must be a plain path inside {shared!r}, "
                    f"the list prefix of amount {amount.text!r}"
                )
            if len(group.steps) == len(prefix):
                self.fail(f"{what} group {group.text!r} must name a field of the list element")
        elif templated and all(op != STAR for op, _ in amount.steps):
            self.fail(
                f"{what}: key {key!r} has {PLACEHOLDER}, but amount {amount.text!r} has no '*' "
                "and there is no 'group' to say what the group is"
            )
        return SumInvariant(name, where, amount, group, relation, key, field)


def _list_prefix_text(text: str) -> str:
    index = text.rfind("[]")
    return text[: index + 2] if index >= 0 else ""


def parse_invariants(text: str, *, where: str) -> Invariants:
    """Parse an invariants file's text (``where`` names it in messages); :class:`RecordError` if bad."""
    limit, definitions = _Parser(where).document(text)
    digest = blake3(text.encode("utf-8", "surrogatepass")).hexdigest()
    return Invariants(where, digest, limit, definitions)


def load_invariants(path: Path) -> Invariants:
    """Read (at most :data:`MAX_FILE_BYTES`) and parse an invariants file."""
    with open_for_reading(path, "invariants file") as handle:
        try:
            data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise StorageError(f"cannot read invariants file {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise RecordError(f"invariants file {path} is larger than {MAX_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(f"invariants file {path} is not UTF-8 text (byte {exc.start})") from None
    return parse_invariants(text, where=str(path))
