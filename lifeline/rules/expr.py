"""The rule expression language: a small, safe subset of Python expressions over numbers.

Allowed: numbers, ``True``/``False``, names (a sensor's metrics or numeric labels), ``and or not``,
comparisons (``== != < <= > >=``, chained), ``+ - * / % **``, unary ``-``/``+``, parentheses,
and calls to ``abs``, ``min``, ``max`` and ``round``. Anything else is rejected at compile time
with an ``ExprError`` naming the construct and its column.

A compiled expression is a plain Python function built from the checked AST and run with empty
``__builtins__``: names become ``env["name"]`` look-ups (a missing name raises ``KeyError``),
``**`` goes through ``math.pow``, and a division by zero, an overflow or a domain error makes the
whole result ``nan`` instead of raising. Booleans come out as ``1.0`` / ``0.0``.
This module must never evaluate anything it has not checked against the whitelist.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping
from typing import Any, Final

FUNCTIONS: Final[Mapping[str, tuple[int, int | None]]] = {
    "abs": (1, 1),
    "min": (2, None),
    "max": (2, None),
    "round": (1, 2),
}

_BINOPS: Final = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Mod: "%", ast.Pow: "**"}
_CMPOPS: Final = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_OP_TEXT: Final = {
    ast.FloorDiv: "//", ast.MatMult: "@", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^",
    ast.LShift: "<<", ast.RShift: ">>", ast.Invert: "~", ast.In: "in", ast.NotIn: "not in",
    ast.Is: "is", ast.IsNot: "is not",
}
_CONSTRUCTS: Final = {
    ast.Attribute: "attribute access", ast.Subscript: "subscripts", ast.Lambda: "lambda",
    ast.ListComp: "comprehensions", ast.SetComp: "comprehensions", ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions", ast.IfExp: "conditional expressions ('x if c else y')",
    ast.List: "lists", ast.Tuple: "tuples", ast.Set: "sets", ast.Dict: "dicts",
    ast.JoinedStr: "f-strings", ast.NamedExpr: "assignments (':=')", ast.Starred: "'*' unpacking",
    ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield", ast.Slice: "slices",
}
_ARITH_ERRORS: Final = (ZeroDivisionError, OverflowError, ValueError)
_TEMPLATE: Final = "def _f(_e):\n    try:\n        return _float(_X)\n    except _errors:\n        return _nan\n"


class ExprError(ValueError):
    """An expression that does not parse or uses something outside the whitelist.

    ``reason`` says what is wrong, ``col`` is the 1-based column in ``source``."""

    def __init__(self, source: str, reason: str, col: int) -> None:
        self.source = source
        self.reason = reason
        self.col = col
        super().__init__(f"{reason} (column {col})")


class CompiledExpr:
    """A checked expression; calling it with a name -> value mapping gives a float.

    ``fn`` is the underlying function, for callers on the hot path that want to skip one call."""

    __slots__ = ("fn", "names", "source")

    def __init__(self, source: str, names: frozenset[str], fn: Callable[[Mapping[str, float]], float]) -> None:
        self.source = source
        self.names = names
        self.fn = fn

    def __call__(self, env: Mapping[str, float]) -> float:
        return self.fn(env)

    def __repr__(self) -> str:
        return f"CompiledExpr({self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CompiledExpr) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)


def compile_expr(source: str) -> CompiledExpr:
    """Check ``source`` against the whitelist and compile it; raise ``ExprError`` if it is not allowed."""
    text = source.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    if not text.strip():
        raise ExprError(source, "empty expression", 1)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        col = (e.offset or 1) + (len(text) - len(text.lstrip()))
        raise ExprError(source, f"syntax error: {e.msg}", col) from None
    lead = len(text) - len(text.lstrip())
    names = _Checker(source, text.strip(), lead).check(tree.body)
    return CompiledExpr(source, frozenset(names), _build(tree.body))


class _Checker:
    def __init__(self, source: str, text: str, lead: int) -> None:
        self.source = source
        self.text = text
        self.lead = lead
        self.names: set[str] = set()

    def fail(self, node: ast.AST, reason: str, offset: int | None = None) -> ExprError:
        col = (getattr(node, "col_offset", 0) if offset is None else offset) + 1 + self.lead
        return ExprError(self.source, reason, col)

    def between(self, left: ast.expr, right: ast.expr) -> int:
        """The offset of the operator between two operands (the first non-blank after ``left``)."""
        start = left.end_col_offset or 0
        gap = self.text[start : right.col_offset]
        return start + len(gap) - len(gap.lstrip(" ()")) if gap.strip(" ()") else start

    def check(self, node: ast.expr) -> set[str]:
        self.visit(node)
        return self.names

    def visit(self, node: ast.expr) -> None:
        if isinstance(node, ast.Constant):
            self._constant(node)
        elif isinstance(node, ast.Name):
            self._name(node)
        elif isinstance(node, ast.BoolOp):
            for value in node.values:
                self.visit(value)
        elif isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Invert):
                raise self.fail(node, "operator '~' not allowed in an expression")
            self.visit(node.operand)
        elif isinstance(node, ast.BinOp):
            self._binop(node)
        elif isinstance(node, ast.Compare):
            self._compare(node)
        elif isinstance(node, ast.Call):
            self._call(node)
        elif isinstance(node, ast.Attribute | ast.Subscript):
            what = _CONSTRUCTS[type(node)]
            raise self.fail(node, f"{what} not allowed in an expression", node.value.end_col_offset)
        else:
            what = _CONSTRUCTS.get(type(node), type(node).__name__)
            raise self.fail(node, f"{what} not allowed in an expression")

    def _constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, bool | int | float):
            return
        what = {str: "strings", bytes: "bytes", complex: "complex numbers"}.get(type(node.value))
        raise self.fail(node, f"{what or repr(node.value)} not allowed in an expression")

    def _name(self, node: ast.Name) -> None:
        if node.id.startswith("_"):
            raise self.fail(node, f"name {node.id!r} not allowed in an expression (names must not start with '_')")
        if node.id in FUNCTIONS:
            raise self.fail(node, f"{node.id!r} is a function; call it like {node.id}(x)")
        self.names.add(node.id)

    def _binop(self, node: ast.BinOp) -> None:
        if type(node.op) not in _BINOPS:
            op = _OP_TEXT.get(type(node.op), "?")
            raise self.fail(node, f"operator {op!r} not allowed in an expression", self.between(node.left, node.right))
        self.visit(node.left)
        self.visit(node.right)

    def _compare(self, node: ast.Compare) -> None:
        lefts = [node.left, *node.comparators]
        for i, op in enumerate(node.ops):
            if not isinstance(op, _CMPOPS):
                at = self.between(lefts[i], lefts[i + 1])
                raise self.fail(node, f"operator {_OP_TEXT.get(type(op), '?')!r} not allowed in an expression", at)
        self.visit(node.left)
        for right in node.comparators:
            self.visit(right)

    def _call(self, node: ast.Call) -> None:
        func = node.func
        if not isinstance(func, ast.Name) or func.id not in FUNCTIONS:
            what = repr(func.id) if isinstance(func, ast.Name) else "this"
            raise self.fail(node, f"call to {what} not allowed in an expression (only abs, min, max, round)")
        if node.keywords:
            raise self.fail(node, f"keyword arguments to {func.id}() not allowed in an expression")
        low, high = FUNCTIONS[func.id]
        n = len(node.args)
        if n < low or (high is not None and n > high):
            want = f"{low}" if low == high else f"{low} or {high}" if high else f"at least {low}"
            raise self.fail(node, f"{func.id}() takes {want} argument(s), got {n}")
        for arg in node.args:
            self.visit(arg)


class _Rewrite(ast.NodeTransformer):
    """Checked AST -> runnable AST: names read ``_e``, ``**`` uses ``math.pow``, ``round`` is safe."""

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if node.id in ("round",):
            return ast.copy_location(ast.Name("_round", ast.Load()), node)
        if node.id in FUNCTIONS:
            return node
        sub = ast.Subscript(ast.Name("_e", ast.Load()), ast.Constant(node.id), ast.Load())
        return ast.copy_location(sub, node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.op, ast.Pow):
            call = ast.Call(ast.Name("_pow", ast.Load()), [node.left, node.right], [])
            return ast.copy_location(call, node)
        return node


class _Splice(ast.NodeTransformer):
    def __init__(self, body: ast.expr) -> None:
        self.body = body

    def visit_Name(self, node: ast.Name) -> ast.expr:
        return self.body if node.id == "_X" else node


def _round(x: float, digits: float | None = None) -> float:
    return float(round(x)) if digits is None else round(x, int(digits))


def _build(body: ast.expr) -> Callable[[Mapping[str, float]], float]:
    runnable = _Rewrite().visit(body)
    module = _Splice(runnable).visit(ast.parse(_TEMPLATE))
    ast.fix_missing_locations(module)
    namespace: dict[str, Any] = {
        "__builtins__": {},
        "_float": float,
        "_nan": math.nan,
        "_errors": _ARITH_ERRORS,
        "_pow": math.pow,
        "_round": _round,
        "abs": abs,
        "min": min,
        "max": max,
    }
    exec(compile(module, "<rule expression>", "exec"), namespace)
    fn: Callable[[Mapping[str, float]], float] = namespace["_f"]
    return fn
