"""The result of checking invariants: violations, per-invariant results and the report a statement embeds.

:meth:`InvariantReport.from_json` reads a report back strictly and raises :class:`StateError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, NoReturn

from lifeboat.documents import json_kind
from lifeboat.errors import StateError
from lifeboat.state.invariants.rules import HEX_DIGEST, KINDS, MAX_LIMIT, Kind

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
        if not isinstance(digest, str) or not HEX_DIGEST.fullmatch(digest):
            fail("'digest' is not 64 lowercase hex digits")
        if type(body["passed"]) is not bool or not isinstance(body["results"], list):
            fail("'passed' must be a boolean and 'results' a list")
        results: list[InvariantResult] = []
        for number, item in enumerate(body["results"], 1):
            where = f"result {number}"
            entry = exact(item, _RESULT_FIELDS, where)
            name, kind, passed, count = entry["name"], entry["kind"], entry["passed"], entry["violations"]
            if not isinstance(name, str) or not name or kind not in KINDS:
                fail(f"{where} needs a non-empty 'name' and a 'kind' of {', '.join(KINDS)}")
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


class Examples:
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
