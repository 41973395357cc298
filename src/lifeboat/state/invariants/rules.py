"""What an invariant is: the definitions a file declares and the field paths they read.

:class:`FieldPath` is a parsed dotted path (``balances.*``, ``positions[].collateral``) with the
walks that read amounts through it; :class:`SumInvariant`, :class:`BoundInvariant` and
:class:`RuleInvariant` are the three kinds, gathered in :class:`Invariants`. The file format is
described in :mod:`lifeboat.state.invariants`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import CodeType
from typing import Any, Final, Literal

from lifeboat.documents import json_kind

FORMAT_VERSION: Final = 1
DEFAULT_LIMIT: Final = 10
MAX_LIMIT: Final = 10_000
MAX_FILE_BYTES: Final = 1 << 20

Kind = Literal["sum", "bound", "rule"]
Relation = Literal["equals", "at_most", "at_least"]

KINDS: Final[tuple[Kind, ...]] = ("sum", "bound", "rule")
RELATIONS: Final[tuple[Relation, ...]] = ("equals", "at_most", "at_least")
TOP_FIELDS: Final = frozenset({"version", "limit", *KINDS})
FIELDS: Final[dict[Kind, frozenset[str]]] = {
    "sum": frozenset({"name", "where", "amount", "group", *RELATIONS}),
    "bound": frozenset({"name", "where", "field", "min", "max"}),
    "rule": frozenset({"name", "where", "expr"}),
}
TARGET_FIELDS: Final = frozenset({"key", "field"})
MISSING: Final[Any] = object()
PLACEHOLDER: Final = "{group}"
SHOWN: Final = 60
HEX_DIGEST: Final = re.compile(r"[0-9a-f]{64}")
#: The most digits an amount written as a string may have (a longer one is "not an integer").
MAX_AMOUNT_DIGITS: Final = 1000


# --- paths ------------------------------------------------------------------------------------

#: Path step operations: a named field, every entry of an object, every element of a list.
FIELD: Final = 0
STAR: Final = 1
EACH: Final = 2
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
        return all(op == FIELD for op, _ in self.steps)

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
            steps.append((STAR, "") if name == "*" else (FIELD, name))
            steps.extend((EACH, "") for _ in range(len(lists) // 2))
        return cls(text, tuple(steps))


def show_value(value: object) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."


def walk_path(steps: tuple[Step, ...], root: Any) -> list[tuple[str, Any]] | None:
    """Every ``(group, value)`` the path reaches (group: the key of the last ``*``, else "").

    ``None`` when a value on the way has the wrong shape (:func:`locate` says which).
    """
    items: list[tuple[str, Any]] = [("", root)]
    for op, name in steps:
        found: list[tuple[str, Any]] = []
        for group, value in items:
            if op == FIELD:
                if type(value) is not dict:
                    return None
                child = value.get(name, MISSING)
                if child is not MISSING:
                    found.append((group, child))
            elif op == STAR:
                if type(value) is not dict:
                    return None
                found.extend(value.items())
            else:
                if type(value) is not list:
                    return None
                found.extend([(group, element) for element in value])
        items = found
    return items


class WrongShape(Exception):
    """A value on a path that is not the object or list the next step needs."""

    def __init__(self, location: str, value: object, needed: str) -> None:
        shown = location or "the record"
        super().__init__(f"{shown} is {json_kind(value)}, not {needed}")


def join_location(location: str, name: str) -> str:
    return f"{location}.{name}" if location else name


def locate(steps: tuple[Step, ...], root: Any, base: str = "") -> list[tuple[str, str, Any]]:
    """:func:`walk_path` with each value's concrete location (``positions[1].collateral``): slow, exact.

    Raises :class:`WrongShape` for a value of the wrong shape.
    """
    items: list[tuple[str, str, Any]] = [(base, "", root)]
    for op, name in steps:
        found: list[tuple[str, str, Any]] = []
        for location, group, value in items:
            if op == EACH:
                if type(value) is not list:
                    raise WrongShape(location, value, "a list")
                found.extend((f"{location}[{i}]", group, element) for i, element in enumerate(value))
                continue
            if type(value) is not dict:
                raise WrongShape(location, value, "an object")
            if op == STAR:
                found.extend((join_location(location, k), k, v) for k, v in value.items())
            elif name in value:
                found.append((join_location(location, name), group, value[name]))
        items = found
    return items


def get_path(steps: tuple[Step, ...], root: Any) -> Any:
    """The value at a plain path, or ``MISSING`` (also when a step meets a non-object)."""
    value = root
    for _, name in steps:
        if type(value) is not dict:
            return MISSING
        value = value.get(name, MISSING)
        if value is MISSING:
            return MISSING
    return value


def integer_amount(value: Any) -> int | None:
    """An amount as an int: a JSON integer or a string of decimal digits (``-`` allowed), else None."""
    kind = type(value)
    if kind is int:
        return int(value)
    if kind is str:
        digits = value[1:] if value[:1] == "-" else value
        if digits.isascii() and digits.isdigit() and len(digits) <= MAX_AMOUNT_DIGITS:
            return int(value)
    return None


def list_prefix(steps: tuple[Step, ...]) -> tuple[Step, ...]:
    """The steps up to and including the last ``[]`` (empty when there is none)."""
    for index in range(len(steps) - 1, -1, -1):
        if steps[index][0] == EACH:
            return steps[: index + 1]
    return ()


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
