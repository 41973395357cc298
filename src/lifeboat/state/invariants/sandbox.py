"""The rule sandbox: the restricted expression language of ``rule`` invariants.

:func:`compile_rule` checks an expression against the allowed forms (no attribute access, no
lambda, no ``__`` names, calls of :data:`RULE_FUNCTIONS` only) before compiling it;
:func:`evaluate_rule` runs a compiled rule over one record with only those functions in scope.
The language restricts forms, not cost: invariant files are trusted configuration.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Callable
from types import CodeType
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


def compile_rule(expr: str, fail: Callable[[str], NoReturn]) -> CodeType:
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


def evaluate_rule(code: CodeType, key: str, document: dict[str, Any]) -> Any:
    """The value of a compiled rule for one record: its fields as names, plus ``record`` and ``key``.

    Exceptions the expression raises (a missing field is a :class:`NameError`) reach the caller.
    """
    names: dict[str, Any] = dict(document)
    names["record"] = document
    names["key"] = key
    names["__builtins__"] = _RULE_BUILTINS
    return eval(code, names)  # noqa: S307 -- checked by compile_rule
