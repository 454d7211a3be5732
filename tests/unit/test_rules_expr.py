"""The rule expression language: whitelist, semantics, errors and speed."""

from __future__ import annotations

import math
import timeit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifeline.rules.expr import CompiledExpr, ExprError, compile_expr


@pytest.mark.parametrize(
    ("source", "env", "expected"),
    [
        ("a > 3 and b < 2", {"a": 4.0, "b": 1.0}, 1.0),
        ("a > 3 and b < 2", {"a": 2.0, "b": 1.0}, 0.0),
        ("not a", {"a": 0.0}, 1.0),
        ("a or b", {"a": 0.0, "b": 7.0}, 7.0),
        ("1 < a <= 3", {"a": 3.0}, 1.0),
        ("a == 1 != b", {"a": 1.0, "b": 2.0}, 1.0),
        ("-a + 2 * b - c / 4 % 3", {"a": 1.0, "b": 2.0, "c": 8.0}, 1.0),
        ("2 ** 10", {}, 1024.0),
        ("abs(a - 5)", {"a": 2.0}, 3.0),
        ("min(a, b, 1) + max(a, b)", {"a": 2.0, "b": 3.0}, 4.0),
        ("round(a, 1)", {"a": 1.26}, 1.3),
        ("round(a)", {"a": 1.6}, 2.0),
        ("True + False", {}, 1.0),
        ("(a)", {"a": 2.5}, 2.5),
    ],
)
def test_expr_evaluates_whitelisted_constructs(source: str, env: dict[str, float], expected: float) -> None:
    """Allowed constructs evaluate like Python, returning a float (booleans as 1.0/0.0)."""
    result = compile_expr(source)(env)
    assert isinstance(result, float)
    assert result == pytest.approx(expected)


def test_expr_names_are_the_variables_read() -> None:
    """names holds every variable the expression reads, not the function names."""
    expr = compile_expr("100 * (1 - freq1_hz / (f1_ref_hz * (1 - 0.002 * (temp_c - 20)))) + abs(x)")
    assert expr.names == frozenset({"freq1_hz", "f1_ref_hz", "temp_c", "x"})
    assert expr.source.startswith("100 *")


@pytest.mark.parametrize("source", ["a / b", "a % b", "10 ** 400", "(-8) ** 0.5", "0 ** -1", "a / b > 1 or 1"])
def test_expr_arithmetic_errors_give_nan(source: str) -> None:
    """Division by zero, overflow and domain errors make the result nan instead of raising."""
    assert math.isnan(compile_expr(source)({"a": 1.0, "b": 0.0}))


def test_expr_missing_name_raises_key_error() -> None:
    """A name missing from env is a KeyError (the engine calls only when all names are present)."""
    with pytest.raises(KeyError):
        compile_expr("a + b")({"a": 1.0})


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("a.real > 1", "attribute access not allowed in an expression (column 2)"),
        ("x + a[0]", "subscripts not allowed in an expression (column 6)"),
        ("(lambda: 1)()", "call to this not allowed in an expression (only abs, min, max, round) (column 1)"),
        ("lambda: 1", "lambda not allowed in an expression (column 1)"),
        ("[x for x in y]", "comprehensions not allowed in an expression (column 1)"),
        ("a == 'on'", "strings not allowed in an expression (column 6)"),
        ("open(a)", "call to 'open' not allowed in an expression (only abs, min, max, round) (column 1)"),
        ("__import__", "name '__import__' not allowed in an expression (names must not start with '_')"
                       " (column 1)"),
        ("a if b else c", "conditional expressions ('x if c else y') not allowed in an expression (column 1)"),
        ("a // 2", "operator '//' not allowed in an expression (column 3)"),
        ("a in b", "operator 'in' not allowed in an expression (column 3)"),
        ("~a", "operator '~' not allowed in an expression (column 1)"),
        ("min(a)", "min() takes at least 2 argument(s), got 1 (column 1)"),
        ("round(a, ndigits=2)", "keyword arguments to round() not allowed in an expression (column 1)"),
        ("abs > 1", "'abs' is a function; call it like abs(x) (column 1)"),
        ("None", "None not allowed in an expression (column 1)"),
        ("(a := 1)", "assignments (':=') not allowed in an expression (column 2)"),
        ("", "empty expression (column 1)"),
        ("a == = b", "syntax error: invalid syntax (column 6)"),
    ],
)
def test_expr_rejects_forbidden_constructs(source: str, message: str) -> None:
    """Anything off the whitelist is an ExprError naming the construct and its column."""
    with pytest.raises(ExprError) as info:
        compile_expr(source)
    assert str(info.value) == message


def test_expr_error_column_counts_leading_blanks() -> None:
    """Columns refer to the source as given, leading blanks included."""
    with pytest.raises(ExprError) as info:
        compile_expr("   a.b")
    assert (info.value.col, info.value.reason) == (5, "attribute access not allowed in an expression")


def test_expr_multiline_source_is_one_expression() -> None:
    """A block-scalar expression spanning lines compiles as one expression."""
    assert compile_expr("a == 1 and\n  b == 0\n")({"a": 1.0, "b": 0.0}) == 1.0


def test_expr_runs_without_builtins() -> None:
    """The compiled function's globals hold no builtins beyond the whitelisted functions."""
    expr = compile_expr("a + 1")
    assert expr.fn.__globals__["__builtins__"] == {}


def test_expr_equal_by_source() -> None:
    """Two compilations of the same text are equal and hash alike (rules compare by value)."""
    assert compile_expr("a > 1") == compile_expr("a > 1")
    assert hash(compile_expr("a > 1")) == hash(compile_expr("a > 1"))
    assert compile_expr("a > 1") != compile_expr("a > 2")
    assert repr(compile_expr("a > 1")) == "CompiledExpr('a > 1')"


def test_expr_is_fast_on_the_hot_path() -> None:
    """`a > 3 and b < 2` evaluates in well under 1 µs per call (generous bound for CI noise)."""
    expr: CompiledExpr = compile_expr("a > 3 and b < 2")
    env = {"a": 4.0, "b": 1.0}
    n = 20_000
    best = min(timeit.repeat(lambda: expr(env), number=n, repeat=5)) / n
    assert best < 2e-6


@given(a=st.floats(allow_nan=False, allow_infinity=False), b=st.floats(allow_nan=False, allow_infinity=False))
def test_expr_matches_python_on_arithmetic(a: float, b: float) -> None:
    """On finite inputs, arithmetic and comparisons agree with Python's own evaluation."""
    expr = compile_expr("(a + b) * 2 - a > b and a <= b or a - b")
    expected = float(((a + b) * 2 - a > b and a <= b) or a - b)
    got = expr({"a": a, "b": b})
    assert got == expected or (math.isnan(got) and math.isnan(expected))
