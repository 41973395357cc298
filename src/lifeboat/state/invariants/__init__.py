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

Rules are bounded (:mod:`~lifeboat.state.invariants.sandbox` has the numbers): an expression
is at most 4096 characters, 1000 syntax nodes and 100 levels deep; while it runs, integers built
by ``**``, ``*`` and ``<<`` stay within 65536 bits, strings and lists built by ``*``, ``+``,
slices and ``str()`` within 2**20 items, and one evaluation within 2**20 iteration steps, 2**23
items built in all and 5 seconds; ``%`` string formatting is refused. A rule that goes over a
bound (``x ** x ** x ** 99``, ``'a' * 10**10``) stops the check with a :class:`RecordError`
naming the rule and the record: it is the rule's fault, not a violation of the record. The file
is still trusted configuration, as it runs on the operator's machine: load invariant files from
where you load the rest of your configuration.

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

Modules
-------
:mod:`~lifeboat.state.invariants.rules` (the definitions and field paths),
:mod:`~lifeboat.state.invariants.parse` (TOML to rules), :mod:`~lifeboat.state.invariants.sandbox`
(the restricted rule language), :mod:`~lifeboat.state.invariants.report` (results and reports) and
:mod:`~lifeboat.state.invariants.check` (evaluation: :class:`InvariantChecker`). Layers: ``rules``
<- ``sandbox``, ``report``; ``parse`` and ``check`` on top. The names callers use are re-exported here.
"""

from __future__ import annotations

from lifeboat.state.invariants.check import (
    InvariantChecker,
)
from lifeboat.state.invariants.parse import (
    load_invariants,
    parse_invariants,
)
from lifeboat.state.invariants.report import (
    InvariantReport,
    InvariantResult,
    Violation,
)
from lifeboat.state.invariants.rules import (
    DEFAULT_LIMIT,
    FORMAT_VERSION,
    MAX_AMOUNT_DIGITS,
    MAX_FILE_BYTES,
    MAX_LIMIT,
    BoundInvariant,
    FieldPath,
    Invariant,
    Invariants,
    RuleInvariant,
    SumInvariant,
)
from lifeboat.state.invariants.sandbox import (
    RULE_FUNCTIONS,
)

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
