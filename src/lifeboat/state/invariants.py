"""Declarative invariants over a record set: conservation, solvency, bounds and rules.

A state snapshot can assert more than "these are the records": that the records are *sane*, the
way a ledger's operator means it (every asset's balances add up to its supply, every market's
collateral is covered by its vault, no balance is negative). Those checks are declared in a TOML
file, checked while the records stream past (:class:`InvariantChecker`, memory O(groups), never
O(records)), and summarised in an :class:`InvariantReport` that the signed statement embeds.

The file (version 1)
--------------------
::

    version = 1
    limit = 10                    # optional: offending keys kept per invariant (0..10000)

    [[sum]]                       # per group, the sum of amounts against one record's field
    name = "conservation"
    where = { kind = "account" }  # optional: field == value filters, all must hold
    amount = "balances.*"         # every amount at this path is summed into its group
    group = "..."                 # optional: the group of each amount (see below)
    equals = { key = "supply:{group}", field = "amount" }   # or at_most = {...} or at_least = {...}

    [[bound]]                     # every amount at the path lies within [min, max]
    name = "no-negative-balance"
    where = { kind = "account" }
    field = "balances.*"
    min = 0                       # min and/or max, integers

    [[rule]]                      # a Python expression over one record must be true
    name = "nonce-sane"
    where = { kind = "account" }
    expr = "nonce >= 0 and len(positions) <= 3"

Unknown tables or fields, a missing or second relation, a bad path or expression, and a newer
``version`` are refused (:class:`RecordError` naming the file and the invariant).

Paths are dotted field names into a record: ``balances.USDC``. A segment ``*`` takes every entry
of an object (its key is the amount's group); a segment ending in ``[]`` takes every element of a
list (``positions[].collateral``). An absent field yields nothing (so a record without balances
has no amounts); a present value of the wrong shape (a list where an object is needed) is a
violation of that record. ``where`` paths and target fields take plain dotted paths only; ``where``
values are strings, integers or booleans, compared with the record's value of the same type.

Amounts are integers: JSON integers or strings of ASCII decimal digits with an optional ``-``
(negative amounts are allowed so that a bound can catch them), at most :data:`MAX_AMOUNT_DIGITS`
digits. Anything else found at an amount path (``"1.5"``, ``" 1"``, ``"+1"``, ``true``, ``null``) is
a violation of that record ("not an integer"), and that amount is left out of any sum.

``sum``: the target key is a template whose only placeholder is ``{group}``. Every record whose key
matches the template is a target (its group is the part that ``{group}`` matched, and a target
with no amounts sums to 0); the target's ``field`` holds the amount to compare with. The group of
an amount is, in this order: the value at ``group`` (a string or an integer; ``group`` must share
the amount's path up to its last ``[]`` and is read in the same list element, e.g. amount
``positions[].collateral`` with group ``positions[].market``), else the key of the amount's last
``*``. A template without ``{group}`` names one fixed record and one group ``""``. A group with
amounts but no target record, and a target record without the field, are violations, reported
under the target's key with both sides and their difference.

``rule``: the expression sees the record's top-level fields as names, plus ``record`` (the whole
record) and ``key`` (its key), which win over fields of the same names. It may use literals,
names, subscripts and slices, comparisons, boolean, arithmetic and unary operators, ``x if c else
y``, list and tuple literals, comprehensions and generator expressions, and calls of ``len int abs
min max sum any all str float round``: no attribute access, no lambda, no name starting with
``__``. The record passes when the value is true. An expression that raises, or that names a field
the record lacks, is a violation of that record (the detail says why), not an error.

The file is trusted configuration: the expression language is restricted to the forms above, but
it still runs on the operator's machine, with the operator's CPU and memory (``10 ** 10 ** 9``
is a valid expression). Load invariant files from where you load the rest of your configuration.

Reports
-------
Each invariant counts its violations (one per offending record for ``bound`` and ``rule``; for
``sum`` one per offending group, under its target's key, plus one per record whose amounts cannot
be read) and keeps the ``limit`` smallest ``(key, detail)`` pairs as examples, so the report does
not depend on the order records are fed in. :meth:`InvariantReport.from_json` reads a report back
strictly and raises :class:`StateError` (a report arrives inside a statement, which must verify). :meth:`InvariantReport.to_json` gives::

    {"digest": "<hex BLAKE3 of the TOML text>", "passed": bool,
     "results": [{"name": str, "kind": "sum" | "bound" | "rule", "passed": bool,
                  "violations": int, "examples": [{"key": str, "detail": str}, ...]}, ...]}
"""

from __future__ import annotations

import ast
import builtins
import re
import tomllib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import CodeType
from typing import Any, Final, Literal, NoReturn

from blake3 import blake3

from lifeboat.documents import json_kind
from lifeboat.errors import RecordError, StateError, StorageError
from lifeboat.fs import open_for_reading

__all__ = [
    "DEFAULT_LIMIT",
    "FORMAT_VERSION",
    "MAX_AMOUNT_DIGITS",
    "MAX_FILE_BYTES",
    "MAX_LIMIT",
    "RULE_FUNCTIONS",
    "BoundInvariant",
    "FieldPath",
    "Invariant",
    "InvariantChecker",
    "InvariantReport",
    "InvariantResult",
    "Invariants",
    "RuleInvariant",
    "SumInvariant",
    "Violation",
    "load_invariants",
    "parse_invariants",
]

FORMAT_VERSION: Final = 1
DEFAULT_LIMIT: Final = 10
MAX_LIMIT: Final = 10_000
MAX_FILE_BYTES: Final = 1 << 20
#: The functions a ``rule`` expression may call.
RULE_FUNCTIONS: Final = ("len", "int", "abs", "min", "max", "sum", "any", "all", "str", "float", "round")

Kind = Literal["sum", "bound", "rule"]
Relation = Literal["equals", "at_most", "at_least"]

_KINDS: Final[tuple[Kind, ...]] = ("sum", "bound", "rule")
_RELATIONS: Final[tuple[Relation, ...]] = ("equals", "at_most", "at_least")
_TOP_FIELDS: Final = frozenset({"version", "limit", *_KINDS})
_FIELDS: Final[dict[Kind, frozenset[str]]] = {
    "sum": frozenset({"name", "where", "amount", "group", *_RELATIONS}),
    "bound": frozenset({"name", "where", "field", "min", "max"}),
    "rule": frozenset({"name", "where", "expr"}),
}
_TARGET_FIELDS: Final = frozenset({"key", "field"})
_MISSING: Final[Any] = object()
_PLACEHOLDER: Final = "{group}"
_SHOWN: Final = 60
_HEX_DIGEST: Final = re.compile(r"[0-9a-f]{64}")
#: The most digits an amount written as a string may have (a longer one is "not an integer").
MAX_AMOUNT_DIGITS: Final = 1000


# --- paths ------------------------------------------------------------------------------------

#: Path step operations: a named field, every entry of an object, every element of a list.
_FIELD: Final = 0
_STAR: Final = 1
_EACH: Final = 2
Step = tuple[int, str]

_SEGMENT: Final = re.compile(r"(\*|[^.\[\]*{}\s]+)((?:\[\])*)")


@dataclass(frozen=True)
class FieldPath:
    """A compiled dotted path (``balances.*``, ``positions[].collateral``) and its text."""

    text: str
    steps: tuple[Step, ...]

    @property
    def plain(self) -> bool:
        """True when the path names one field (no ``*``, no ``[]``)."""
        return all(op == _FIELD for op, _ in self.steps)

    @classmethod
    def parse(cls, text: str) -> FieldPath:
        """Compile ``text``; :class:`ValueError` with the reason when it is not a path."""
        if not text:
            raise ValueError("it is empty")
        steps: list[Step] = []
        for segment in text.split("."):
            match = _SEGMENT.fullmatch(segment)
            if match is None:
                raise ValueError(
                    f"segment {segment!r} is not a field name, '*' or a name followed by '[]' "
                    "(names cannot be empty or hold spaces, '[', ']', '*', '{' or '}')"
                )
            name, lists = match.groups()
            steps.append((_STAR, "") if name == "*" else (_FIELD, name))
            steps.extend((_EACH, "") for _ in range(len(lists) // 2))
        return cls(text, tuple(steps))


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _walk(steps: tuple[Step, ...], root: Any) -> list[tuple[str, Any]] | None:
    """Every ``(group, value)`` the path reaches (group: the key of the last ``*``, else "").

    ``None`` when a value on the way has the wrong shape (:func:`_locate` says which).
    """
    items: list[tuple[str, Any]] = [("", root)]
    for op, name in steps:
        found: list[tuple[str, Any]] = []
        for group, value in items:
            if op == _FIELD:
                if type(value) is not dict:
                    return None
                child = value.get(name, _MISSING)
                if child is not _MISSING:
                    found.append((group, child))
            elif op == _STAR:
                if type(value) is not dict:
                    return None
                found.extend(value.items())
            else:
                if type(value) is not list:
                    return None
                found.extend([(group, element) for element in value])
        items = found
    return items


class _Shape(Exception):
    """A value on a path that is not the object or list the next step needs."""

    def __init__(self, location: str, value: object, needed: str) -> None:
        shown = location or "the record"
        super().__init__(f"{shown} is {json_kind(value)}, not {needed}")


def _join(location: str, name: str) -> str:
    return f"{location}.{name}" if location else name


def _locate(steps: tuple[Step, ...], root: Any, base: str = "") -> list[tuple[str, str, Any]]:
    """:func:`_walk` with each value's concrete location (``positions[1].collateral``): slow, exact.

    Raises :class:`_Shape` for a value of the wrong shape.
    """
    items: list[tuple[str, str, Any]] = [(base, "", root)]
    for op, name in steps:
        found: list[tuple[str, str, Any]] = []
        for location, group, value in items:
            if op == _EACH:
                if type(value) is not list:
                    raise _Shape(location, value, "a list")
                found.extend((f"{location}[{i}]", group, element) for i, element in enumerate(value))
                continue
            if type(value) is not dict:
                raise _Shape(location, value, "an object")
            if op == _STAR:
                found.extend((_join(location, k), k, v) for k, v in value.items())
            elif name in value:
                found.append((_join(location, name), group, value[name]))
        items = found
    return items


def _get(steps: tuple[Step, ...], root: Any) -> Any:
    """The value at a plain path, or ``_MISSING`` (also when a step meets a non-object)."""
    value = root
    for _, name in steps:
        if type(value) is not dict:
            return _MISSING
        value = value.get(name, _MISSING)
        if value is _MISSING:
            return _MISSING
    return value


def _integer(value: Any) -> int | None:
    """An amount as an int: a JSON integer or a string of decimal digits (``-`` allowed), else None."""
    kind = type(value)
    if kind is int:
        return int(value)
    if kind is str:
        digits = value[1:] if value[:1] == "-" else value
        if digits.isascii() and digits.isdigit() and len(digits) <= MAX_AMOUNT_DIGITS:
            return int(value)
    return None


# --- definitions ------------------------------------------------------------------------------

WhereClause = tuple[tuple[FieldPath, str | int | bool], ...]


@dataclass(frozen=True)
class SumInvariant:
    """Per group, the sum of the amounts at ``amount`` against the field of the group's target."""

    name: str
    where: WhereClause
    amount: FieldPath
    group: FieldPath | None
    relation: Relation
    target_key: str
    target_field: FieldPath

    kind: Literal["sum"] = "sum"


@dataclass(frozen=True)
class BoundInvariant:
    """Every amount at ``field`` lies within ``[minimum, maximum]`` (either may be None)."""

    name: str
    where: WhereClause
    field: FieldPath
    minimum: int | None
    maximum: int | None

    kind: Literal["bound"] = "bound"


@dataclass(frozen=True)
class RuleInvariant:
    """A restricted Python expression (``expr``) that must be true for every record."""

    name: str
    where: WhereClause
    expr: str
    code: CodeType

    kind: Literal["rule"] = "rule"


Invariant = SumInvariant | BoundInvariant | RuleInvariant


@dataclass(frozen=True)
class Invariants:
    """A parsed invariants file: its definitions grouped by kind, kinds in the order they first appear."""

    where: str
    digest: str
    limit: int
    definitions: tuple[Invariant, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(definition.name for definition in self.definitions)


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
        value = table.get(field, _MISSING)
        if value is _MISSING:
            self.fail(f"{what} lacks the field {field!r}")
        if not isinstance(value, str) or not value:
            self.fail(f"{what} field {field!r} must be a non-empty string, not {_show(value)}")
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
            self.fail(f"{what} field {field!r} must be an integer, not {_show(value)}")
        return value

    def where_clause(self, table: Mapping[str, Any], what: str) -> WhereClause:
        given = table.get("where", {})
        if not isinstance(given, dict):
            self.fail(f"{what} field 'where' must be a table of field = value, not {_show(given)}")
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
        self.fields(body, _TOP_FIELDS, "the file")
        version = body.get("version", _MISSING)
        if version is _MISSING:
            self.fail(f"lacks 'version = {FORMAT_VERSION}'")
        if type(version) is not int or version < 1:
            self.fail(f"'version' is {_show(version)}, not a format version")
        if version > FORMAT_VERSION:
            self.fail(
                f"version {version} is newer than this Lifeboat reads (version {FORMAT_VERSION}); "
                "upgrade Lifeboat to read it"
            )
        limit = body.get("limit", DEFAULT_LIMIT)
        if type(limit) is not int or not 0 <= limit <= MAX_LIMIT:
            self.fail(f"'limit' is {_show(limit)}, not an integer from 0 to {MAX_LIMIT}")
        definitions: list[Invariant] = []
        names: set[str] = set()
        for kind in body:
            if kind not in _KINDS:
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
                self.fields(table, _FIELDS[kind], what)
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
        return RuleInvariant(name, where, expr, _compile_rule(expr, lambda m: self.fail(f"{what}: {m}")))

    def sum(self, name: str, where: WhereClause, table: Mapping[str, Any], what: str) -> SumInvariant:
        amount = self.path(table, "amount", what)
        given = [relation for relation in _RELATIONS if relation in table]
        if len(given) != 1:
            shown = " and ".join(given) if given else "none"
            self.fail(f"{what} needs exactly one of equals, at_most, at_least (it has {shown})")
        relation = given[0]
        target = table[relation]
        target_what = f"{what} field {relation!r}"
        if not isinstance(target, dict):
            self.fail(f"{target_what} must be a table {{ key = ..., field = ... }}")
        self.fields(target, _TARGET_FIELDS, target_what)
        key = self.string(target, "key", target_what)
        field = self.path(target, "field", target_what, plain=True)
        templated = _PLACEHOLDER in key
        rest = key.replace(_PLACEHOLDER, "", 1)
        if "{" in rest or "}" in rest:
            self.fail(f"{target_what} key {key!r}: the only placeholder is {_PLACEHOLDER}, once")
        group: FieldPath | None = None
        if "group" in table:
            group = self.path(table, "group", what)
            if not templated:
                self.fail(f"{what} has 'group' but its key {key!r} has no {_PLACEHOLDER}")
            prefix = _list_prefix(amount.steps)
            if group.steps[: len(prefix)] != prefix or any(
                op != _FIELD for op, _ in group.steps[len(prefix) :]
            ):
                shared = _list_prefix_text(amount.text) or "the record"
                self.fail(
                    f"{what} group {group.text!r} must be a plain path inside {shared!r}, "
                    f"the list prefix of amount {amount.text!r}"
                )
            if len(group.steps) == len(prefix):
                self.fail(f"{what} group {group.text!r} must name a field of the list element")
        elif templated and all(op != _STAR for op, _ in amount.steps):
            self.fail(
                f"{what}: key {key!r} has {_PLACEHOLDER}, but amount {amount.text!r} has no '*' "
                "and there is no 'group' to say what the group is"
            )
        return SumInvariant(name, where, amount, group, relation, key, field)


def _list_prefix(steps: tuple[Step, ...]) -> tuple[Step, ...]:
    """The steps up to and including the last ``[]`` (empty when there is none)."""
    for index in range(len(steps) - 1, -1, -1):
        if steps[index][0] == _EACH:
            return steps[: index + 1]
    return ()


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


# --- rule expressions -------------------------------------------------------------------------

_RULE_NODES: Final = (
    ast.Expression,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.Store,
    ast.Subscript,
    ast.Slice,
    ast.Compare,
    ast.BoolOp,
    ast.BinOp,
    ast.UnaryOp,
    ast.IfExp,
    ast.Call,
    ast.keyword,
    ast.List,
    ast.Tuple,
    ast.ListComp,
    ast.SetComp,
    ast.GeneratorExp,
    ast.comprehension,
    ast.boolop,
    ast.operator,
    ast.unaryop,
    ast.cmpop,
)
_RULE_BUILTINS: Final[dict[str, Any]] = {name: getattr(builtins, name) for name in RULE_FUNCTIONS}


def _compile_rule(expr: str, fail: Callable[[str], NoReturn]) -> CodeType:
    """Check ``expr`` against the rule language and compile it; ``fail(reason)`` when it is not."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        fail(f"expr {expr!r} is not a Python expression ({exc.msg})")
    nodes = list(ast.walk(tree))
    for node in nodes:  # the forbidden forms first, so the message names them
        if isinstance(node, ast.Attribute):
            fail(f"expr {expr!r} uses attribute access (.{node.attr}), which rules do not allow")
        if isinstance(node, ast.Lambda):
            fail(f"expr {expr!r} uses lambda, which rules do not allow")
        name = node.id if isinstance(node, ast.Name) else node.arg if isinstance(node, ast.keyword) else None
        if name is not None and name.startswith("__"):
            fail(f"expr {expr!r} uses the name {name!r}; names starting with '__' are not allowed")
    for node in nodes:
        if not isinstance(node, _RULE_NODES):
            fail(f"expr {expr!r} uses {type(node).__name__}, which rules do not allow")
        if isinstance(node, ast.keyword) and node.arg is None:
            fail(f"expr {expr!r} passes **arguments, which rules do not allow")
        if isinstance(node, ast.Call) and (
            not isinstance(node.func, ast.Name) or node.func.id not in _RULE_BUILTINS
        ):
            allowed = " ".join(RULE_FUNCTIONS)
            fail(f"expr {expr!r} calls something other than the functions {allowed}")
        if isinstance(node, ast.comprehension) and node.is_async:
            fail(f"expr {expr!r} uses an async comprehension, which rules do not allow")
    return compile(tree, "<invariant rule>", "eval")


# --- reports ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    """One offending key and what is wrong with it, in words."""

    key: str
    detail: str


@dataclass(frozen=True)
class InvariantResult:
    """The outcome of one invariant: its violation count and up to ``limit`` examples (smallest keys)."""

    name: str
    kind: Kind
    passed: bool
    violations: int
    examples: tuple[Violation, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "passed": self.passed,
            "violations": self.violations,
            "examples": [{"key": v.key, "detail": v.detail} for v in self.examples],
        }


_REPORT_FIELDS: Final = frozenset({"digest", "passed", "results"})
_RESULT_FIELDS: Final = frozenset({"name", "kind", "passed", "violations", "examples"})
_EXAMPLE_FIELDS: Final = frozenset({"key", "detail"})


@dataclass(frozen=True)
class InvariantReport:
    """Every invariant's result, whether all passed, and the digest of the file that declared them."""

    passed: bool
    results: tuple[InvariantResult, ...]
    digest: str

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "passed": self.passed,
            "results": [result.to_json() for result in self.results],
        }

    @classmethod
    def from_json(cls, obj: object, *, what: str = "invariant report") -> InvariantReport:
        """Read :meth:`to_json`'s output back, strictly: :class:`StateError` naming ``what`` if bad."""

        def fail(message: str) -> NoReturn:
            raise StateError(f"{what}: {message}")

        def exact(body: object, expected: frozenset[str], where: str) -> dict[str, Any]:
            if not isinstance(body, dict):
                fail(f"{where} is {json_kind(body)}, not an object")
            if body.keys() != expected:
                missing = sorted(expected - body.keys())
                unknown = sorted(body.keys() - expected)
                fail(f"{where} lacks {missing} / has unknown fields {unknown}")
            return body

        body = exact(obj, _REPORT_FIELDS, "the report")
        digest = body["digest"]
        if not isinstance(digest, str) or not _HEX_DIGEST.fullmatch(digest):
            fail("'digest' is not 64 lowercase hex digits")
        if type(body["passed"]) is not bool or not isinstance(body["results"], list):
            fail("'passed' must be a boolean and 'results' a list")
        results: list[InvariantResult] = []
        for number, item in enumerate(body["results"], 1):
            where = f"result {number}"
            entry = exact(item, _RESULT_FIELDS, where)
            name, kind, passed, count = entry["name"], entry["kind"], entry["passed"], entry["violations"]
            if not isinstance(name, str) or not name or kind not in _KINDS:
                fail(f"{where} needs a non-empty 'name' and a 'kind' of {', '.join(_KINDS)}")
            if type(count) is not int or count < 0 or type(passed) is not bool or passed != (count == 0):
                fail(f"{where} ({name!r}) has inconsistent 'passed' and 'violations'")
            examples = entry["examples"]
            if not isinstance(examples, list) or len(examples) > min(count, MAX_LIMIT):
                fail(f"{where} ({name!r}) has more examples than violations")
            found: list[Violation] = []
            for index, example in enumerate(examples, 1):
                fields = exact(example, _EXAMPLE_FIELDS, f"{where} example {index}")
                if not isinstance(fields["key"], str) or not isinstance(fields["detail"], str):
                    fail(f"{where} example {index} needs string 'key' and 'detail'")
                found.append(Violation(fields["key"], fields["detail"]))
            if found != sorted(found, key=_example_order):
                fail(f"{where} ({name!r}) examples are not in key order")
            results.append(InvariantResult(name, kind, passed, count, tuple(found)))
        if len({result.name for result in results}) != len(results):
            fail("two results have the same name")
        if body["passed"] != all(result.passed for result in results):
            fail("'passed' does not agree with the results")
        return cls(body["passed"], tuple(results), digest)


def _example_order(violation: Violation) -> tuple[str, str]:
    return (violation.key, violation.detail)


class _Examples:
    """A violation count and the ``limit`` smallest (key, detail) pairs seen, in O(limit) memory."""

    __slots__ = ("count", "kept", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self.kept: list[Violation] = []

    def add(self, key: str, detail: str) -> None:
        self.count += 1
        if self.limit == 0:
            return
        self.kept.append(Violation(key, detail))
        if len(self.kept) >= 2 * self.limit + 16:
            self.kept.sort(key=_example_order)
            del self.kept[self.limit :]

    def result(self, name: str, kind: Kind) -> InvariantResult:
        self.kept.sort(key=_example_order)
        return InvariantResult(name, kind, self.count == 0, self.count, tuple(self.kept[: self.limit]))


# --- checking ---------------------------------------------------------------------------------
#
# The checker evaluates each distinct ``where`` clause once per record, then hands the record to
# the checks it selects. Each check reads its amounts through a fast path for the common shapes
# (``head.*``, ``head[].field``, a plain path) and the general walk otherwise; when anything is off
# it stops being fast and re-reads the record with :func:`_locate` to say exactly what and where.

_Matcher = Callable[[Mapping[str, Any]], bool]
_Feed = Callable[[str, dict[str, Any]], None]

#: How a check reads its amounts: a plain path, ``head.*``, ``head[].tail`` (all names plain),
#: or the general walk.
_PLAIN: Final = 0
_MAP: Final = 1
_LIST: Final = 2
_WALK: Final = 3
_WRONG: Final[Any] = object()


def _descend(names: tuple[str, ...], value: Any) -> Any:
    """The value at plain field ``names``: ``_MISSING`` when absent, ``_WRONG`` past a non-object."""
    for name in names:
        if type(value) is not dict:
            return _WRONG
        value = value.get(name, _MISSING)
        if value is _MISSING:
            return _MISSING
    return value


def _names(steps: tuple[Step, ...]) -> tuple[str, ...] | None:
    """The field names of an all-field run of steps, or None."""
    return tuple(name for _, name in steps) if all(op == _FIELD for op, _ in steps) else None


def _shape(steps: tuple[Step, ...]) -> tuple[int, tuple[str, ...], tuple[str, ...]]:
    """``(mode, head names, tail names)`` of a path (see :data:`_PLAIN` and friends)."""
    plain = _names(steps)
    if plain is not None:
        return _PLAIN, plain, ()
    for index, (op, _) in enumerate(steps):
        if op != _FIELD:
            head = _names(steps[:index])
            tail = _names(steps[index + 1 :])
            if head is not None and tail is not None and head:
                if op == _STAR and not tail:
                    return _MAP, head, ()
                if op == _EACH and tail:
                    return _LIST, head, tail
            break
    return _WALK, (), ()


def _matcher(where: WhereClause) -> _Matcher:
    """The test of a ``where`` clause: every path holds a value of the same type, equal."""
    tests = [(path.steps, type(wanted), wanted) for path, wanted in where]

    def every(document: Mapping[str, Any]) -> bool:
        for steps, wanted_type, wanted in tests:
            value = _get(steps, document)
            if type(value) is not wanted_type or value != wanted:
                return False
        return True

    return every


class _Selection:
    """The checks that share one ``where`` clause; one plain field is tested inline."""

    __slots__ = ("feeds", "matches", "name", "wanted", "wanted_type")

    def __init__(self, where: WhereClause) -> None:
        self.feeds: tuple[_Feed, ...] = ()
        self.name: str | None = None
        self.wanted_type: type[Any] = type(None)
        self.wanted: Any = None
        self.matches: _Matcher | None = None
        if len(where) == 1 and len(where[0][0].steps) == 1:
            self.name = where[0][0].steps[0][1]
            self.wanted_type = type(where[0][1])
            self.wanted = where[0][1]
        elif where:
            self.matches = _matcher(where)


def _where_id(where: WhereClause) -> tuple[tuple[str, str, str | int | bool], ...]:
    """A clause's identity (with each value's type, so ``true`` and ``1`` stay apart)."""
    return tuple(sorted((path.text, type(wanted).__name__, wanted) for path, wanted in where))


class _SumCheck:
    """One ``sum`` invariant being checked: running sums per group and each group's target."""

    def __init__(self, definition: SumInvariant, limit: int) -> None:
        self.definition = definition
        self.examples = _Examples(limit)
        self.sums: defaultdict[str, int] = defaultdict(int)
        self.targets: dict[str, tuple[str, Any]] = {}  # group -> (key, amount or detail or _MISSING)
        self.templated = _PLACEHOLDER in definition.target_key
        self.prefix, _, self.suffix = definition.target_key.partition(_PLACEHOLDER)
        self.head: tuple[str, ...] = ()
        self.tail: tuple[str, ...] = ()
        self.group_names: tuple[str, ...] = ()
        self.feed: _Feed = self.feed_walk
        group = definition.group
        if group is None:
            self.outer: tuple[Step, ...] = ()
            self.inner = definition.amount.steps
            self.group_steps: tuple[Step, ...] | None = None
            mode, head, _ = _shape(self.inner)
            if self.templated and mode == _MAP:
                self.head, self.feed = head, self.feed_map
        else:
            self.outer = _list_prefix(definition.amount.steps)
            self.inner = definition.amount.steps[len(self.outer) :]
            self.group_steps = group.steps[len(self.outer) :]
            mode, head, tail = _shape(definition.amount.steps)
            if mode == _LIST:
                self.head, self.tail, self.feed = head, tail, self.feed_list
                self.group_names = tuple(name for _, name in self.group_steps)

    def target_of(self, group: str) -> str:
        return self.prefix + group + self.suffix if self.templated else self.definition.target_key

    def feed_map(self, key: str, document: dict[str, Any]) -> None:
        """``head.*``: every entry of one object, its key the group."""
        head = self.head
        entries = document.get(head[0], _MISSING) if len(head) == 1 else _descend(head, document)
        if entries is _MISSING:
            return
        if type(entries) is not dict:
            self.explain(key, document)
            return
        sums = self.sums
        bad = False
        for group, value in entries.items():
            if type(value) is str and value.isascii() and value.isdigit() and len(value) <= MAX_AMOUNT_DIGITS:
                sums[group] += int(value)
            else:
                amount = _integer(value)
                if amount is None:
                    bad = True
                else:
                    sums[group] += amount
        if bad:
            self.explain(key, document)

    def feed_list(self, key: str, document: dict[str, Any]) -> None:
        """``head[].tail`` grouped by ``head[].group``: one amount and one group per element."""
        head, tail, group_names = self.head, self.tail, self.group_names
        elements = document.get(head[0], _MISSING) if len(head) == 1 else _descend(head, document)
        if elements is _MISSING:
            return
        if type(elements) is not list:
            self.explain(key, document)
            return
        sums = self.sums
        bad = False
        for element in elements:
            if type(element) is not dict:
                bad = True
                continue
            value = element.get(tail[0], _MISSING) if len(tail) == 1 else _descend(tail, element)
            if value is _MISSING:
                continue
            if len(group_names) == 1:
                group = element.get(group_names[0], _MISSING)
            else:
                group = _descend(group_names, element)
            if type(group) is not str:
                if type(group) is not int:
                    bad = True
                    continue
                group = str(group)
            if type(value) is str and value.isascii() and value.isdigit() and len(value) <= MAX_AMOUNT_DIGITS:
                sums[group] += int(value)
            else:
                amount = _integer(value)
                if amount is None:
                    bad = True
                else:
                    sums[group] += amount
        if bad:
            self.explain(key, document)

    def feed_walk(self, key: str, document: dict[str, Any]) -> None:
        """Any other path, through the general walk."""
        sums = self.sums
        bad = False
        if self.group_steps is None:
            found = _walk(self.inner, document)
            if found is None:
                self.explain(key, document)
                return
            for group, value in found:
                amount = _integer(value)
                if amount is None:
                    bad = True
                else:
                    sums[group if self.templated else ""] += amount
        else:
            elements = _walk(self.outer, document)
            if elements is None:
                self.explain(key, document)
                return
            for _, element in elements:
                found = _walk(self.inner, element)
                if found is None:
                    bad = True
                    continue
                if not found:
                    continue
                group_value = _get(self.group_steps, element)
                if type(group_value) is not str and type(group_value) is not int:
                    bad = True
                    continue
                for _, value in found:
                    amount = _integer(value)
                    if amount is None:
                        bad = True
                    else:
                        sums[str(group_value)] += amount
        if bad:
            self.explain(key, document)

    def target(self, group: str, key: str, document: dict[str, Any]) -> None:
        """Note the target record of ``group`` (``key``) and its amount."""
        value = _get(self.definition.target_field.steps, document)
        if value is _MISSING:
            self.targets[group] = (key, _MISSING)
            return
        amount = _integer(value)
        field = self.definition.target_field.text
        shown = f"{key}.{field} is {_show(value)}, not an integer"
        self.targets[group] = (key, shown if amount is None else amount)

    def explain(self, key: str, document: dict[str, Any]) -> None:
        """Record the violation of a record whose amounts (or groups) are not what they must be."""
        problems: list[str] = []
        try:
            if self.group_steps is None:
                places = [(location, value) for location, _, value in _locate(self.inner, document)]
            else:
                places = []
                for base, _, element in _locate(self.outer, document):
                    found = _locate(self.inner, element, base)
                    if not found:
                        continue
                    group_value = _get(self.group_steps, element)
                    if type(group_value) is not str and type(group_value) is not int:
                        where = _join(base, ".".join(name for _, name in self.group_steps))
                        shown = "missing" if group_value is _MISSING else json_kind(group_value)
                        problems.append(f"group {where} is {shown}, not a string or integer")
                    places.extend((location, value) for location, _, value in found)
            problems.extend(
                f"{location} is {_show(value)}, not an integer"
                for location, value in places
                if _integer(value) is None
            )
        except _Shape as exc:
            problems.append(str(exc))
        if not problems:  # not reached: the fast path found something wrong
            problems.append("its amounts could not be read")
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        self.examples.add(key, f"{self.definition.amount.text}: {problems[0]}{more}")

    def result(self) -> InvariantResult:
        definition = self.definition
        amount = definition.amount.text
        field = definition.target_field.text
        for group in sorted(self.sums.keys() | self.targets.keys()):
            total = self.sums.get(group, 0)
            about = f"sum of {amount} for group {group}" if self.templated else f"sum of {amount}"
            target = self.targets.get(group)
            if target is None:
                key = self.target_of(group)
                self.examples.add(key, f"{about} is {total}, but there is no record {key}")
                continue
            key, value = target
            if value is _MISSING:
                self.examples.add(key, f"{about} is {total}, but {key} has no field {field}")
            elif isinstance(value, str):
                self.examples.add(key, f"{value} ({about} is {total})")
            elif not _holds(definition.relation, total, value):
                compared = {"equals": "", "at_most": "more than ", "at_least": "less than "}
                verb = "is" if definition.relation == "equals" else "="
                self.examples.add(
                    key,
                    f"{about} is {total}, {compared[definition.relation]}{key}.{field} {verb} {value} "
                    f"({total - value:+d})",
                )
        return self.examples.result(definition.name, "sum")


def _holds(relation: Relation, total: int, value: int) -> bool:
    if relation == "equals":
        return total == value
    if relation == "at_most":
        return total <= value
    return total >= value


class _BoundCheck:
    """One ``bound`` invariant being checked."""

    def __init__(self, definition: BoundInvariant, limit: int) -> None:
        self.definition = definition
        self.examples = _Examples(limit)
        self.steps = definition.field.steps
        self.mode, self.head, self.tail = _shape(self.steps)
        self.map_name = self.head[0] if self.mode == _MAP and len(self.head) == 1 else None
        self.low = definition.minimum
        self.high = definition.maximum
        # a string of digits is never negative: with no max and min <= 0 it needs no conversion
        self.digits_pass = self.high is None and (self.low is None or self.low <= 0)

    def values(self, document: dict[str, Any]) -> Iterable[Any] | None:
        """The values at the path (``_MISSING`` among them is skipped), None for a wrong shape."""
        mode, head = self.mode, self.head
        if mode == _WALK:
            found = _walk(self.steps, document)
            return None if found is None else [value for _, value in found]
        value = document.get(head[0], _MISSING) if len(head) == 1 else _descend(head, document)
        if mode == _PLAIN or value is _MISSING:
            return (value,)
        if mode == _MAP:
            return value.values() if type(value) is dict else None
        if type(value) is not list:
            return None
        tail = self.tail
        if len(tail) == 1:
            name = tail[0]
            return [element.get(name, _MISSING) if type(element) is dict else _WRONG for element in value]
        return [_descend(tail, element) for element in value]

    def feed(self, key: str, document: dict[str, Any]) -> None:
        if self.map_name is not None:  # the most common shape, read here rather than in a call
            entries = document.get(self.map_name, _MISSING)
            values: Iterable[Any] | None = (
                entries.values() if type(entries) is dict else None if entries is not _MISSING else ()
            )
        else:
            values = self.values(document)
        if values is None:
            self.explain(key, document)
            return
        low, high, digits_pass = self.low, self.high, self.digits_pass
        for value in values:
            if value is _MISSING or (
                digits_pass
                and type(value) is str
                and value.isascii()
                and value.isdigit()
                and len(value) <= MAX_AMOUNT_DIGITS
            ):
                continue
            amount = _integer(value)
            if amount is None or (low is not None and amount < low) or (high is not None and amount > high):
                self.explain(key, document)
                return

    def problem(self, value: Any) -> str | None:
        amount = _integer(value)
        if amount is None:
            return f"is {_show(value)}, not an integer"
        if self.low is not None and amount < self.low:
            return f"is {amount}, below the minimum {self.low}"
        if self.high is not None and amount > self.high:
            return f"is {amount}, above the maximum {self.high}"
        return None

    def explain(self, key: str, document: dict[str, Any]) -> None:
        try:
            places = _locate(self.steps, document)
        except _Shape as exc:
            self.examples.add(key, f"{self.definition.field.text}: {exc}")
            return
        problems = [
            f"{location} {problem}"
            for location, _, value in places
            if (problem := self.problem(value)) is not None
        ]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        self.examples.add(key, (problems[0] if problems else "out of bounds") + more)

    def result(self) -> InvariantResult:
        return self.examples.result(self.definition.name, "bound")


class _RuleCheck:
    """One ``rule`` invariant being checked."""

    def __init__(self, definition: RuleInvariant, limit: int) -> None:
        self.definition = definition
        self.examples = _Examples(limit)
        self.expr = (
            definition.expr if len(definition.expr) <= _SHOWN else definition.expr[: _SHOWN - 3] + "..."
        )

    def feed(self, key: str, document: dict[str, Any]) -> None:
        names: dict[str, Any] = dict(document)
        names["record"] = document
        names["key"] = key
        names["__builtins__"] = _RULE_BUILTINS
        expr = self.expr
        try:
            outcome = eval(self.definition.code, names)  # noqa: S307 -- checked by _compile_rule
            if outcome:
                return
            detail = f"{expr} is false"
        except NameError as exc:
            missing = exc.name if exc.name is not None else str(exc)
            detail = f"{expr}: the record has no field {missing!r}"
        except Exception as exc:
            message = str(exc)
            message = message if len(message) <= 200 else message[:197] + "..."
            detail = f"{expr} raised {type(exc).__name__}: {message}"
        self.examples.add(key, detail)

    def result(self) -> InvariantResult:
        return self.examples.result(self.definition.name, "rule")


class InvariantChecker:
    """Checks a stream of records (in any order) against :class:`Invariants`.

    Memory is O(groups + limit) per invariant, never O(records).
    """

    def __init__(self, invariants: Invariants) -> None:
        self.invariants = invariants
        checks: list[_SumCheck | _BoundCheck | _RuleCheck] = []
        selections: dict[tuple[tuple[str, str, str | int | bool], ...], _Selection] = {}
        patterns: list[tuple[str, str, int, _SumCheck]] = []
        fixed: dict[str, list[_SumCheck]] = {}
        for definition in invariants.definitions:
            check: _SumCheck | _BoundCheck | _RuleCheck
            if isinstance(definition, SumInvariant):
                check = _SumCheck(definition, invariants.limit)
                if check.templated:
                    length = len(check.prefix) + len(check.suffix)
                    patterns.append((check.prefix, check.suffix, length, check))
                else:
                    fixed.setdefault(definition.target_key, []).append(check)
            elif isinstance(definition, BoundInvariant):
                check = _BoundCheck(definition, invariants.limit)
            else:
                check = _RuleCheck(definition, invariants.limit)
            checks.append(check)
            selection = selections.setdefault(_where_id(definition.where), _Selection(definition.where))
            selection.feeds += (check.feed,)
        self._checks = tuple(checks)
        self._selections = tuple(selections.values())
        self._patterns = tuple(patterns)
        self._fixed = {key: tuple(found) for key, found in fixed.items()}
        self._finished = False

    def feed(self, key: str, document: Mapping[str, Any]) -> None:
        """Check one record (``key``: its key; ``document``: the parsed record)."""
        record = document if type(document) is dict else dict(document)
        for prefix, suffix, length, check in self._patterns:
            if key.startswith(prefix) and len(key) >= length and (not suffix or key.endswith(suffix)):
                check.target(key[len(prefix) : len(key) - len(suffix)], key, record)
        if self._fixed and key in self._fixed:
            for check in self._fixed[key]:
                check.target("", key, record)
        for selection in self._selections:
            name = selection.name
            if name is not None:
                value = record.get(name, _MISSING)
                if type(value) is not selection.wanted_type or value != selection.wanted:
                    continue
            elif selection.matches is not None and not selection.matches(record):
                continue
            for feed in selection.feeds:
                feed(key, record)

    def finish(self) -> InvariantReport:
        """The report (call once, after the last :meth:`feed`)."""
        if self._finished:
            raise RuntimeError("InvariantChecker.finish() was already called")
        self._finished = True
        results = tuple(check.result() for check in self._checks)
        return InvariantReport(all(r.passed for r in results), results, self.invariants.digest)
