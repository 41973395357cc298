"""The rule sandbox: the restricted expression language of ``rule`` invariants, with bounds.

:func:`compile_rule` checks an expression against the allowed forms (no attribute access, no
lambda, no ``__`` names, calls of :data:`RULE_FUNCTIONS` only) and against size bounds (at most
:data:`MAX_EXPR_CHARS` characters, :data:`MAX_EXPR_NODES` syntax nodes nested at most
:data:`MAX_EXPR_DEPTH` deep) before compiling it; :func:`evaluate_rule` runs a compiled rule over
one record with only those functions in scope.

Cost is bounded too, so a rule cannot hang or exhaust a check. The compiled code routes the
operations that can grow a value or loop through a per-evaluation guard that checks sizes
*before* computing: ``**``, ``*`` and ``<<`` whose integer result would pass
:data:`MAX_INT_BITS` bits; ``*`` and ``+`` of strings or lists, slices, set operations and
``str()`` whose result would pass :data:`MAX_LENGTH` items; ``round`` to more than
:data:`MAX_ROUND_DIGITS` digits; and ``%`` string formatting (refused: its widths are
unbounded). Every element a comprehension or ``sum min max any all`` takes is a step; one
evaluation may take :data:`MAX_STEPS` steps, build :data:`MAX_BUILT` items in all, and run
:data:`MAX_SECONDS` seconds. Going over any of these raises :class:`RuleLimit` (the checker
turns it into an error naming the rule and the record), never a hang.
"""

from __future__ import annotations

import ast
import builtins
import math
import time
from collections.abc import Callable, Iterable, Iterator
from types import CodeType, GeneratorType
from typing import Any, Final, NoReturn

# --- rule expressions -------------------------------------------------------------------------

#: The functions a ``rule`` expression may call.
RULE_FUNCTIONS: Final = ("len", "int", "abs", "min", "max", "sum", "any", "all", "str", "float", "round")

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

#: The longest rule expression, in characters.
MAX_EXPR_CHARS: Final = 4096
#: The most syntax nodes a rule expression may have.
MAX_EXPR_NODES: Final = 1000
#: The deepest nesting of syntax nodes in a rule expression.
MAX_EXPR_DEPTH: Final = 100
#: The most bits an integer built by ``**``, ``*`` or ``<<`` may have.
MAX_INT_BITS: Final = 1 << 16
#: The most items (characters, elements) one string or list built by a rule may have.
MAX_LENGTH: Final = 1 << 20
#: The most items one evaluation may build in all (strings, lists, comprehension elements).
MAX_BUILT: Final = 1 << 23
#: The most elements one evaluation may iterate over (comprehensions, sum, min, max, any, all).
MAX_STEPS: Final = 1 << 20
#: The longest one evaluation may run, checked every few steps.
MAX_SECONDS: Final = 5.0
#: The most digits ``round`` may be asked for (either sign).
MAX_ROUND_DIGITS: Final = 1000

#: The name the compiled code reaches its guard by (users cannot name it: ``__`` is refused).
_GUARD: Final = "__rule_guard"
_GUARDED_OPS: Final[dict[type[ast.operator], str]] = {
    ast.Add: "add",
    ast.Mult: "mul",
    ast.Pow: "pow",
    ast.LShift: "lshift",
    ast.Mod: "mod",
    ast.BitOr: "bitor",
    ast.BitAnd: "bitand",
    ast.BitXor: "bitxor",
    ast.Sub: "sub",
}
_GUARDED_CALLS: Final = frozenset({"sum", "min", "max", "any", "all", "str", "round"})
_SEQUENCES: Final = (str, bytes, list, tuple)


class RuleLimit(Exception):
    """A rule went over one of the sandbox's bounds; the message says which."""


def _depth(tree: ast.AST) -> int:
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


class _Guarding(ast.NodeTransformer):
    """Routes the costly operations of a checked rule through the guard (see the module doc)."""

    @staticmethod
    def _call(method: str, args: list[ast.expr], keywords: list[ast.keyword] | None = None) -> ast.Call:
        func = ast.Attribute(ast.Name(_GUARD, ast.Load()), method, ast.Load())
        return ast.Call(func, args, keywords or [])

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        method = _GUARDED_OPS.get(type(node.op))
        if method is None:
            return node
        if isinstance(node.left, ast.Constant) and isinstance(node.right, ast.Constant):
            # Fold constants here (Python would at compile time, but the guard call hides them),
            # through the guard; a result that is large, or over a bound, stays a guarded call.
            try:
                value = getattr(_Guard(), method)(node.left.value, node.right.value)
                folded = _small_constant(value)
            except Exception:  # raised again, with its message, when the rule is evaluated
                folded = False
            if folded:
                return ast.copy_location(ast.Constant(value), node)
        return self._call(method, [node.left, node.right])

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        self.generic_visit(node)
        value = node.operand.value if isinstance(node.operand, ast.Constant) else None
        if (
            isinstance(node.op, ast.USub | ast.UAdd)
            and isinstance(value, int | float)
            and not isinstance(value, bool)
            and _small_constant(value)
        ):
            return ast.copy_location(ast.Constant(-value if isinstance(node.op, ast.USub) else value), node)
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
        self.generic_visit(node)
        if not isinstance(node.ctx, ast.Load) or not isinstance(node.slice, ast.Slice):
            return node
        parts = [node.slice.lower, node.slice.upper, node.slice.step]
        return self._call("cut", [node.value, *(p or ast.Constant(None) for p in parts)])

    def visit_comprehension(self, node: ast.comprehension) -> ast.comprehension:
        self.generic_visit(node)
        node.iter = self._call("each", [node.iter])
        return node

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id in _GUARDED_CALLS:
            return self._call("call_" + node.func.id, node.args, node.keywords)
        return node


def _small_constant(value: object) -> bool:
    """Whether ``value`` is a number or a short string, fine to keep in compiled code."""
    if type(value) is int:
        return value.bit_length() <= 4096
    if type(value) in (float, bool):
        return True
    return type(value) in (str, bytes) and len(value) <= 4096  # type: ignore[arg-type]


class _Guard:
    """The bounds of one evaluation: steps taken, items built (besides one per step), the deadline."""

    __slots__ = ("built", "check_at", "deadline", "steps")

    def __init__(self) -> None:
        self.steps = 0
        self.built = 0
        self.check_at = 64
        self.deadline = 0.0  # set at the first check: an evaluation of few steps never reads the clock

    def _check(self) -> None:
        """Every 64 steps: the step, item and time budgets."""
        self.check_at += 64
        if self.steps > MAX_STEPS:
            raise RuleLimit(f"it takes more than {MAX_STEPS} steps (elements iterated over)")
        if self.built + self.steps > MAX_BUILT:
            raise RuleLimit(f"it builds more than {MAX_BUILT} items in all")
        now = time.monotonic()
        if not self.deadline:
            self.deadline = now + MAX_SECONDS
        elif now > self.deadline:
            raise RuleLimit(f"it runs longer than {MAX_SECONDS:g} seconds")

    def build(self, items: int, what: str) -> None:
        if items > MAX_LENGTH:
            raise RuleLimit(f"{what} would have {items} items, over the limit of {MAX_LENGTH}")
        self.built += items
        if self.built + self.steps > MAX_BUILT:
            raise RuleLimit(f"it builds more than {MAX_BUILT} items in all")

    def each(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """``iterable``, counting each element as a step (a comprehension may keep each one)."""
        for item in iterable:
            self.steps += 1
            if self.steps >= self.check_at:
                self._check()
            yield item

    # --- operators ----------------------------------------------------------------------------

    def add(self, a: Any, b: Any) -> Any:
        if isinstance(a, _SEQUENCES) and isinstance(b, _SEQUENCES):
            self.build(len(a) + len(b), "a concatenation")
        return a + b

    def mul(self, a: Any, b: Any) -> Any:
        if isinstance(a, int) and isinstance(b, int):
            if a.bit_length() + b.bit_length() > MAX_INT_BITS:
                raise RuleLimit(f"a product would pass {MAX_INT_BITS} bits")
        elif isinstance(a, _SEQUENCES) and isinstance(b, int):
            self.build(len(a) * max(b, 0), "a repetition")
        elif isinstance(b, _SEQUENCES) and isinstance(a, int):
            self.build(len(b) * max(a, 0), "a repetition")
        return a * b

    def pow(self, a: Any, b: Any) -> Any:
        # |a| ** b has about b * log2(|a|) bits (b + 1 or more for |a| >= 2).
        if (
            isinstance(a, int)
            and isinstance(b, int)
            and b > 0
            and abs(a) > 1
            and (b > MAX_INT_BITS or b * math.log2(abs(a)) > MAX_INT_BITS)
        ):
            raise RuleLimit(f"a power would pass {MAX_INT_BITS} bits")
        return a**b

    def lshift(self, a: Any, b: Any) -> Any:
        if isinstance(a, int) and isinstance(b, int) and a and b > 0 and a.bit_length() + b > MAX_INT_BITS:
            raise RuleLimit(f"a shift would pass {MAX_INT_BITS} bits")
        return a << b

    def _sets(self, a: Any, b: Any) -> None:
        if isinstance(a, set | frozenset | dict) and isinstance(b, set | frozenset | dict):
            self.build(len(a) + len(b), "a set operation")

    def bitor(self, a: Any, b: Any) -> Any:
        self._sets(a, b)
        return a | b

    def bitand(self, a: Any, b: Any) -> Any:
        self._sets(a, b)
        return a & b

    def bitxor(self, a: Any, b: Any) -> Any:
        self._sets(a, b)
        return a ^ b

    def sub(self, a: Any, b: Any) -> Any:
        self._sets(a, b)
        return a - b

    def mod(self, a: Any, b: Any) -> Any:
        if isinstance(a, str | bytes):
            raise RuleLimit("it formats a string with %, which rules do not allow (its widths are unbounded)")
        return a % b

    def cut(self, value: Any, lower: Any, upper: Any, step: Any) -> Any:
        if isinstance(value, _SEQUENCES):
            try:
                size = len(range(*builtins.slice(lower, upper, step).indices(len(value))))
            except (TypeError, ValueError):
                size = 0  # the slice itself raises the same error, with Python's message
            self.build(size, "a slice")
        return value[lower:upper:step]

    # --- functions ----------------------------------------------------------------------------

    def call_sum(self, iterable: Iterable[Any], /, start: Any = 0) -> Any:
        if isinstance(start, int | float):
            return builtins.sum(self.steps_of(iterable), start)
        total = start
        for item in self.steps_of(iterable):
            total = self.add(total, item)
        return total

    def call_min(self, *args: Any, **kwargs: Any) -> Any:
        return builtins.min(*self._counted(args), **kwargs)

    def call_max(self, *args: Any, **kwargs: Any) -> Any:
        return builtins.max(*self._counted(args), **kwargs)

    def call_any(self, iterable: Iterable[Any], /) -> bool:
        return builtins.any(self.steps_of(iterable))

    def call_all(self, iterable: Iterable[Any], /) -> bool:
        return builtins.all(self.steps_of(iterable))

    def call_str(self, *args: Any, **kwargs: Any) -> str:
        if len(args) == 1 and not kwargs:
            size = _printed_size(args[0])
            if size > MAX_LENGTH:
                raise RuleLimit(f"str() would print more than {MAX_LENGTH} characters")
            self.build(size, "str()")
        return builtins.str(*args, **kwargs)

    def call_round(self, number: Any, ndigits: Any = None) -> Any:
        if isinstance(ndigits, int) and abs(ndigits) > MAX_ROUND_DIGITS:
            raise RuleLimit(f"it rounds to {ndigits} digits; at most {MAX_ROUND_DIGITS} either way")
        return builtins.round(number, ndigits)

    def _counted(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        return (self.steps_of(args[0]),) if len(args) == 1 else args

    def steps_of(self, iterable: Iterable[Any]) -> Iterable[Any]:
        """``iterable`` counted by :meth:`each`; a generator is one of the rule's generator
        expressions, whose loops count their steps already."""
        return iterable if type(iterable) is GeneratorType else self.each(iterable)


def _printed_size(value: Any) -> int:
    """A lower bound of ``len(str(value))``, stopping once it passes :data:`MAX_LENGTH`."""
    size = 0
    stack = [value]
    while stack and size <= MAX_LENGTH:
        item = stack.pop()
        if isinstance(item, str):
            size += len(item) + 2
        elif isinstance(item, list | tuple | set | frozenset):
            size += 2 + len(item)
            stack.extend(item)
        elif isinstance(item, dict):
            size += 2 + 2 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            size += 1
    return size


def compile_rule(expr: str, fail: Callable[[str], NoReturn]) -> CodeType:
    """Check ``expr`` against the rule language and compile it; ``fail(reason)`` when it is not."""
    if len(expr) > MAX_EXPR_CHARS:
        fail(f"expr is {len(expr)} characters long, over the limit of {MAX_EXPR_CHARS}")
    try:
        tree = ast.parse(expr, mode="eval")
        depth = _depth(tree)
    except SyntaxError as exc:
        fail(f"expr {expr!r} is not a Python expression ({exc.msg})")
    except (RecursionError, MemoryError):
        fail(f"expr nests deeper than the limit of {MAX_EXPR_DEPTH}")
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
    # Depth first: whether a very deep expression parses at all depends on the interpreter's
    # stack, and its message should not change with that (nest 3000 deep: "nests" either way).
    if depth > MAX_EXPR_DEPTH:
        fail(f"expr nests {depth} deep, over the limit of {MAX_EXPR_DEPTH}")
    if len(nodes) > MAX_EXPR_NODES:
        fail(f"expr has {len(nodes)} syntax nodes, over the limit of {MAX_EXPR_NODES}")
    guarded = ast.fix_missing_locations(_Guarding().visit(tree))
    return compile(guarded, "<invariant rule>", "eval")


def evaluate_rule(code: CodeType, key: str, document: dict[str, Any]) -> Any:
    """The value of a compiled rule for one record: its fields as names, plus ``record`` and ``key``.

    Exceptions the expression raises (a missing field is a :class:`NameError`) reach the caller,
    and so does :class:`RuleLimit` when it goes over a bound.
    """
    names: dict[str, Any] = dict(document)
    names["record"] = document
    names["key"] = key
    names["__builtins__"] = _RULE_BUILTINS
    names[_GUARD] = _Guard()
    return eval(code, names)  # noqa: S307 -- checked by compile_rule
