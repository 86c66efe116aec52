"""JsonLogic compiled to Polars expressions, so a pricing rule is evaluated for every invoice at once.

Each variable is a column of the frame the expression runs on (named as the variable:
`usage.api_calls`, `line.api_calls.amount`, `account.segment`, ...). Types are static: numbers are
exact decimals (Decimal(38, 18)), account attributes are text, and comparisons between a number
and text compare numerically, as JsonLogic's loose equality does. Truthiness follows JsonLogic:
0, "" and null are false. `and`/`or` give booleans (their usual use in conditions).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import polars as pl

from dagster_project.money import WORK

# operator -> (fewest arguments, most arguments or None)
OPERATORS = {
    "var": (1, 2),
    "==": (2, 2), "===": (2, 2), "!=": (2, 2), "!==": (2, 2),
    ">": (2, 2), ">=": (2, 2), "<": (2, 3), "<=": (2, 3),
    "!": (1, 1), "!!": (1, 1), "and": (1, None), "or": (1, None),
    "if": (1, None), "?:": (3, 3),
    "+": (1, None), "-": (1, 2), "*": (1, None), "/": (2, 2), "%": (2, 2),
    "min": (1, None), "max": (1, None),
    "in": (2, 2),
}
NUMBER, TEXT, BOOLEAN, NULL = "number", "text", "boolean", "null"


class RuleError(ValueError):
    """A rule the compiler cannot type: the message says where and why."""


@dataclass(frozen=True)
class Typed:
    expr: pl.Expr
    kind: str


def variable_kind(name: str) -> str:
    return TEXT if name.startswith("account.") else NUMBER


def variables_of(node) -> list[str]:
    """Every variable name a JsonLogic expression reads, in order of first use."""
    found: list[str] = []

    def walk(n) -> None:
        if isinstance(n, dict) and len(n) == 1:
            (op, args), = n.items()
            if op == "var":
                name = args[0] if isinstance(args, list) else args
                if isinstance(name, str) and name not in found:
                    found.append(name)
                return
            for arg in args if isinstance(args, list) else [args]:
                walk(arg)
        elif isinstance(n, list):
            for item in n:
                walk(item)

    walk(node)
    return found


def compile_rule_expression(node) -> Typed:
    return _compile(node)


def truthy(typed: Typed) -> pl.Expr:
    if typed.kind == BOOLEAN:
        return typed.expr.fill_null(False)
    if typed.kind == NUMBER:
        return (typed.expr != 0).fill_null(False)
    if typed.kind == TEXT:
        return (typed.expr != "").fill_null(False)
    return pl.lit(False)


def as_number(typed: Typed) -> pl.Expr:
    if typed.kind == NUMBER:
        return typed.expr
    if typed.kind == TEXT:
        return typed.expr.str.strip_chars().cast(WORK, strict=False)
    if typed.kind == BOOLEAN:
        return pl.when(typed.expr).then(Decimal(1)).otherwise(Decimal(0)).cast(WORK)
    return pl.lit(None, dtype=WORK)


def _number(value) -> Typed:
    return Typed(pl.lit(Decimal(str(value)), dtype=WORK), NUMBER)


def _compile(node) -> Typed:
    if isinstance(node, bool):
        return Typed(pl.lit(node), BOOLEAN)
    if isinstance(node, (int, Decimal)):
        return _number(node)
    if isinstance(node, float):
        raise RuleError("numbers must be exact decimals")
    if isinstance(node, str):
        return Typed(pl.lit(node, dtype=pl.String), TEXT)
    if node is None:
        return Typed(pl.lit(None), NULL)
    if not isinstance(node, dict) or len(node) != 1:
        raise RuleError(f"not a JsonLogic expression: {node!r}")
    (op, args), = node.items()
    if op not in OPERATORS:
        raise RuleError(f"unknown operator '{op}'")
    args = args if isinstance(args, list) else [args]
    low, high = OPERATORS[op]
    if len(args) < low or (high is not None and len(args) > high):
        raise RuleError(f"'{op}' takes {low}{'+' if high is None else '' if high == low else f'-{high}'} "
                        f"arguments, got {len(args)}")
    if op == "var":
        return _variable(args)
    if op == "in":
        return _in(args)
    if op in ("if", "?:"):
        return _if([_compile(a) for a in args])
    typed = [_compile(a) for a in args]
    if op in ("==", "===", "!=", "!==", ">", ">=", "<", "<="):
        return _compare(op, typed)
    if op == "!":
        return Typed(~truthy(typed[0]), BOOLEAN)
    if op == "!!":
        return Typed(truthy(typed[0]), BOOLEAN)
    if op == "and":
        return Typed(pl.all_horizontal([truthy(t) for t in typed]), BOOLEAN)
    if op == "or":
        return Typed(pl.any_horizontal([truthy(t) for t in typed]), BOOLEAN)
    return _arithmetic(op, [as_number(t) for t in typed])


def _variable(args) -> Typed:
    name = args[0]
    if not isinstance(name, str) or not name:
        raise RuleError("a variable name must be a non-empty string")
    kind = variable_kind(name)
    column = pl.col(name)
    if len(args) == 2:
        default = _compile(args[1])
        column = pl.coalesce(column, default.expr if kind == TEXT else as_number(default))
    return Typed(column, kind)


def _in(args) -> Typed:
    needle, haystack = _compile(args[0]), args[1]
    if isinstance(haystack, list):
        if not all(isinstance(v, (str, int, Decimal)) and not isinstance(v, bool) for v in haystack):
            raise RuleError("'in' takes a list of numbers or strings")
        if needle.kind == NUMBER or all(not isinstance(v, str) for v in haystack):
            values = [Decimal(str(v)) for v in haystack if not isinstance(v, str)]
            return Typed(as_number(needle).is_in(pl.lit(pl.Series(values, dtype=WORK))).fill_null(False), BOOLEAN)
        return Typed(needle.expr.cast(pl.String).is_in([str(v) for v in haystack]).fill_null(False), BOOLEAN)
    container = _compile(haystack)
    if container.kind != TEXT:
        raise RuleError("'in' looks for a value in a list or a string")
    return Typed(container.expr.str.contains(needle.expr.cast(pl.String), literal=True).fill_null(False), BOOLEAN)


def _if(branches: list[Typed]) -> Typed:
    if len(branches) % 2 == 0:
        branches = [*branches, Typed(pl.lit(None), NULL)]
    values = [branches[i] for i in range(1, len(branches), 2)] + [branches[-1]]
    kinds = {v.kind for v in values} - {NULL}
    if len(kinds) > 1:
        raise RuleError("the branches of 'if' give different types: " + ", ".join(sorted(kinds)))
    kind = kinds.pop() if kinds else NULL
    dtype = {NUMBER: WORK, TEXT: pl.String, BOOLEAN: pl.Boolean}.get(kind)

    def value(t: Typed) -> pl.Expr:
        return t.expr.cast(dtype) if dtype is not None else t.expr

    chain = None
    for i in range(0, len(branches) - 1, 2):
        condition = truthy(branches[i])
        chain = pl.when(condition).then(value(branches[i + 1])) if chain is None \
            else chain.when(condition).then(value(branches[i + 1]))
    return Typed(chain.otherwise(value(branches[-1])), kind)


def _compare(op: str, typed: list[Typed]) -> Typed:
    if op in ("<", "<=") and len(typed) == 3:  # between: a < b < c
        first = _compare(op, typed[:2]).expr
        return Typed(first & _compare(op, typed[1:]).expr, BOOLEAN)
    left, right = typed
    if NUMBER in (left.kind, right.kind) or BOOLEAN in (left.kind, right.kind) and left.kind != right.kind:
        a, b = as_number(left), as_number(right)
    elif NULL in (left.kind, right.kind):
        a, b = left.expr, right.expr
        if op in ("==", "==="):
            return Typed(a.is_null() & b.is_null(), BOOLEAN)
        if op in ("!=", "!=="):
            return Typed(~(a.is_null() & b.is_null()), BOOLEAN)
        return Typed(pl.lit(False), BOOLEAN)
    else:
        a, b = left.expr, right.expr
    result = {"==": a == b, "===": a == b, "!=": a != b, "!==": a != b,
              ">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]
    missing = op in ("!=", "!==")
    return Typed(result.fill_null(missing), BOOLEAN)


def _arithmetic(op: str, numbers: list[pl.Expr]) -> Typed:
    if op == "+":
        total = numbers[0]
        for n in numbers[1:]:
            total = total + n
        return Typed(total, NUMBER)
    if op == "*":
        product = numbers[0]
        for n in numbers[1:]:
            product = product * n
        return Typed(product, NUMBER)
    if op == "-":
        return Typed(-numbers[0] if len(numbers) == 1 else numbers[0] - numbers[1], NUMBER)
    if op == "/":
        return Typed(pl.when(numbers[1] != 0).then(numbers[0] / numbers[1]), NUMBER)
    if op == "%":  # the sign of the dividend, as in JavaScript
        quotient = numbers[0] / numbers[1]
        whole = pl.when(quotient >= 0).then(quotient.floor()).otherwise(quotient.ceil())
        return Typed(pl.when(numbers[1] != 0).then(numbers[0] - numbers[1] * whole), NUMBER)
    combine = pl.min_horizontal if op == "min" else pl.max_horizontal
    return Typed(combine(numbers), NUMBER)
