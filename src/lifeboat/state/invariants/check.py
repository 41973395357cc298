"""Checking records against invariants as they stream past: :class:`InvariantChecker`.

Memory is O(groups + limit) per invariant, never O(records); the report does not depend on the
order records arrive in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from lifeboat.documents import json_kind
from lifeboat.errors import RecordError
from lifeboat.state.invariants.report import Examples, InvariantReport, InvariantResult
from lifeboat.state.invariants.rules import (
    EACH,
    FIELD,
    MAX_AMOUNT_DIGITS,
    MISSING,
    PLACEHOLDER,
    SHOWN,
    STAR,
    BoundInvariant,
    Invariants,
    Relation,
    RuleInvariant,
    Step,
    SumInvariant,
    WhereClause,
    WrongShape,
    get_path,
    integer_amount,
    join_location,
    list_prefix,
    locate,
    show_value,
    walk_path,
)
from lifeboat.state.invariants.sandbox import RuleLimit, evaluate_rule

# --- checking ---------------------------------------------------------------------------------
#
# The checker evaluates each distinct ``where`` clause once per record, then hands the record to
# the checks it selects. Each check reads its amounts through a fast path for the common shapes
# (``head.*``, ``head[].field``, a plain path) and the general walk otherwise; when anything is off
# it stops being fast and re-reads the record with :func:`locate` to say exactly what and where.

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
    """The value at plain field ``names``: ``MISSING`` when absent, ``_WRONG`` past a non-object."""
    for name in names:
        if type(value) is not dict:
            return _WRONG
        value = value.get(name, MISSING)
        if value is MISSING:
            return MISSING
    return value


def _names(steps: tuple[Step, ...]) -> tuple[str, ...] | None:
    """The field names of an all-field run of steps, or None."""
    return tuple(name for _, name in steps) if all(op == FIELD for op, _ in steps) else None


def _shape(steps: tuple[Step, ...]) -> tuple[int, tuple[str, ...], tuple[str, ...]]:
    """``(mode, head names, tail names)`` of a path (see :data:`_PLAIN` and friends)."""
    plain = _names(steps)
    if plain is not None:
        return _PLAIN, plain, ()
    for index, (op, _) in enumerate(steps):
        if op != FIELD:
            head = _names(steps[:index])
            tail = _names(steps[index + 1 :])
            if head is not None and tail is not None and head:
                if op == STAR and not tail:
                    return _MAP, head, ()
                if op == EACH and tail:
                    return _LIST, head, tail
            break
    return _WALK, (), ()


def _matcher(where: WhereClause) -> _Matcher:
    """The test of a ``where`` clause: every path holds a value of the same type, equal."""
    tests = [(path.steps, type(wanted), wanted) for path, wanted in where]

    def every(document: Mapping[str, Any]) -> bool:
        for steps, wanted_type, wanted in tests:
            value = get_path(steps, document)
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
        self.examples = Examples(limit)
        self.sums: defaultdict[str, int] = defaultdict(int)
        self.targets: dict[str, tuple[str, Any]] = {}  # group -> (key, amount or detail or MISSING)
        self.templated = PLACEHOLDER in definition.target_key
        self.prefix, _, self.suffix = definition.target_key.partition(PLACEHOLDER)
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
            self.outer = list_prefix(definition.amount.steps)
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
        entries = document.get(head[0], MISSING) if len(head) == 1 else _descend(head, document)
        if entries is MISSING:
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
                amount = integer_amount(value)
                if amount is None:
                    bad = True
                else:
                    sums[group] += amount
        if bad:
            self.explain(key, document)

    def feed_list(self, key: str, document: dict[str, Any]) -> None:
        """``head[].tail`` grouped by ``head[].group``: one amount and one group per element."""
        head, tail, group_names = self.head, self.tail, self.group_names
        elements = document.get(head[0], MISSING) if len(head) == 1 else _descend(head, document)
        if elements is MISSING:
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
            value = element.get(tail[0], MISSING) if len(tail) == 1 else _descend(tail, element)
            if value is MISSING:
                continue
            if len(group_names) == 1:
                group = element.get(group_names[0], MISSING)
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
                amount = integer_amount(value)
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
            found = walk_path(self.inner, document)
            if found is None:
                self.explain(key, document)
                return
            for group, value in found:
                amount = integer_amount(value)
                if amount is None:
                    bad = True
                else:
                    sums[group if self.templated else ""] += amount
        else:
            elements = walk_path(self.outer, document)
            if elements is None:
                self.explain(key, document)
                return
            for _, element in elements:
                found = walk_path(self.inner, element)
                if found is None:
                    bad = True
                    continue
                if not found:
                    continue
                group_value = get_path(self.group_steps, element)
                if type(group_value) is not str and type(group_value) is not int:
                    bad = True
                    continue
                for _, value in found:
                    amount = integer_amount(value)
                    if amount is None:
                        bad = True
                    else:
                        sums[str(group_value)] += amount
        if bad:
            self.explain(key, document)

    def target(self, group: str, key: str, document: dict[str, Any]) -> None:
        """Note the target record of ``group`` (``key``) and its amount."""
        value = get_path(self.definition.target_field.steps, document)
        if value is MISSING:
            self.targets[group] = (key, MISSING)
            return
        amount = integer_amount(value)
        field = self.definition.target_field.text
        shown = f"{key}.{field} is {show_value(value)}, not an integer"
        self.targets[group] = (key, shown if amount is None else amount)

    def explain(self, key: str, document: dict[str, Any]) -> None:
        """Record the violation of a record whose amounts (or groups) are not what they must be."""
        problems: list[str] = []
        try:
            if self.group_steps is None:
                places = [(location, value) for location, _, value in locate(self.inner, document)]
            else:
                places = []
                for base, _, element in locate(self.outer, document):
                    found = locate(self.inner, element, base)
                    if not found:
                        continue
                    group_value = get_path(self.group_steps, element)
                    if type(group_value) is not str and type(group_value) is not int:
                        where = join_location(base, ".".join(name for _, name in self.group_steps))
                        shown = "missing" if group_value is MISSING else json_kind(group_value)
                        problems.append(f"group {where} is {shown}, not a string or integer")
                    places.extend((location, value) for location, _, value in found)
            problems.extend(
                f"{location} is {show_value(value)}, not an integer"
                for location, value in places
                if integer_amount(value) is None
            )
        except WrongShape as exc:
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
            if value is MISSING:
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
        self.examples = Examples(limit)
        self.steps = definition.field.steps
        self.mode, self.head, self.tail = _shape(self.steps)
        self.map_name = self.head[0] if self.mode == _MAP and len(self.head) == 1 else None
        self.low = definition.minimum
        self.high = definition.maximum
        # a string of digits is never negative: with no max and min <= 0 it needs no conversion
        self.digits_pass = self.high is None and (self.low is None or self.low <= 0)

    def values(self, document: dict[str, Any]) -> Iterable[Any] | None:
        """The values at the path (``MISSING`` among them is skipped), None for a wrong shape."""
        mode, head = self.mode, self.head
        if mode == _WALK:
            found = walk_path(self.steps, document)
            return None if found is None else [value for _, value in found]
        value = document.get(head[0], MISSING) if len(head) == 1 else _descend(head, document)
        if mode == _PLAIN or value is MISSING:
            return (value,)
        if mode == _MAP:
            return value.values() if type(value) is dict else None
        if type(value) is not list:
            return None
        tail = self.tail
        if len(tail) == 1:
            name = tail[0]
            return [element.get(name, MISSING) if type(element) is dict else _WRONG for element in value]
        return [_descend(tail, element) for element in value]

    def feed(self, key: str, document: dict[str, Any]) -> None:
        if self.map_name is not None:  # the most common shape, read here rather than in a call
            entries = document.get(self.map_name, MISSING)
            values: Iterable[Any] | None = (
                entries.values() if type(entries) is dict else None if entries is not MISSING else ()
            )
        else:
            values = self.values(document)
        if values is None:
            self.explain(key, document)
            return
        low, high, digits_pass = self.low, self.high, self.digits_pass
        for value in values:
            if value is MISSING or (
                digits_pass
                and type(value) is str
                and value.isascii()
                and value.isdigit()
                and len(value) <= MAX_AMOUNT_DIGITS
            ):
                continue
            amount = integer_amount(value)
            if amount is None or (low is not None and amount < low) or (high is not None and amount > high):
                self.explain(key, document)
                return

    def problem(self, value: Any) -> str | None:
        amount = integer_amount(value)
        if amount is None:
            return f"is {show_value(value)}, not an integer"
        if self.low is not None and amount < self.low:
            return f"is {amount}, below the minimum {self.low}"
        if self.high is not None and amount > self.high:
            return f"is {amount}, above the maximum {self.high}"
        return None

    def explain(self, key: str, document: dict[str, Any]) -> None:
        try:
            places = locate(self.steps, document)
        except WrongShape as exc:
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
        self.examples = Examples(limit)
        self.expr = definition.expr if len(definition.expr) <= SHOWN else definition.expr[: SHOWN - 3] + "..."

    def feed(self, key: str, document: dict[str, Any]) -> None:
        expr = self.expr
        try:
            outcome = evaluate_rule(self.definition.code, key, document)
            if outcome:
                return
            detail = f"{expr} is false"
        except NameError as exc:
            missing = exc.name if exc.name is not None else str(exc)
            detail = f"{expr}: the record has no field {missing!r}"
        except RuleLimit as exc:  # the rule, not the record, is at fault: stop the check
            raise RecordError(
                f"rule invariant {self.definition.name!r} went over a limit of the rule sandbox on the "
                f"record {show_value(key)}: {exc}; make the rule cheaper"
            ) from None
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
                value = record.get(name, MISSING)
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
