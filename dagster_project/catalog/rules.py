"""JsonLogic pricing rules (SPEC 4.6): the operators and variables Tally understands.

Validation lives here so that an invalid rule is a configuration error naming the rule; the
compiler to Polars expressions lives in rating/rules.py and accepts exactly this language.
"""
from __future__ import annotations

from decimal import Decimal

# operator -> (min args, max args or None)
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
CYCLE_VARIABLES = ("days", "index", "proration")
LINE_FIELDS = ("quantity", "amount")


def variable_problem(name, plan, items) -> str | None:
    """Why a `var` name is not one of SPEC 4.6's variables, or None if it is."""
    if not isinstance(name, str):
        return "a variable name must be a string"
    parts = name.split(".")
    head = parts[0]
    if head == "usage" and len(parts) in (2, 3):
        if len(parts) == 3 and parts[2] != "event_count":
            return f"unknown variable '{name}' (usage.<meter> or usage.<meter>.event_count)"
        return None
    if head == "line" and len(parts) == 3:
        if parts[2] not in LINE_FIELDS:
            return f"unknown variable '{name}' (line.<billable_item>.quantity or .amount)"
        if items is not None and parts[1] not in items:
            return f"unknown billable item '{parts[1]}' in variable '{name}'"
        return None
    if name == "invoice.subtotal":
        return None
    if head == "account" and len(parts) == 2:
        return None
    if head == "cycle" and len(parts) == 2 and parts[1] in CYCLE_VARIABLES:
        return None
    return f"unknown variable '{name}'"


def check_rules(plan, items) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    names: set[str] = set()
    for i, rule in enumerate(plan.pricing_rules):
        path = f"pricing_rules[{i}]"
        where = f"rule '{rule.name}'"
        if rule.name in names:
            problems.append((f"{path}.name", f"duplicate pricing rule name '{rule.name}'"))
        names.add(rule.name)
        if rule.condition is not None:
            problems += _check_expression(rule.condition, f"{path}.condition", where, plan, items)
        problems += _check_expression(rule.compute, f"{path}.compute", where, plan, items)
        if _is_boolean_literal(rule.compute) or isinstance(rule.compute, str):
            problems.append((f"{path}.compute", f"{where}: compute must give a number"))
        action = rule.action
        if action.type in ("set_amount", "add_to_amount"):
            if action.target is None:
                problems.append((f"{path}.action.target", f"{where}: {action.type} needs a target billable item"))
            elif items is not None and action.target not in items:
                problems.append((f"{path}.action.target", f"{where}: unknown billable item '{action.target}'"))
        elif action.target is not None:
            problems.append((f"{path}.action.target", f"{where}: add_line takes no target"))
        if action.type == "add_line" and not rule.description:
            problems.append((f"{path}.description", f"{where}: add_line needs a description (the line's text)"))
    return problems


def _is_boolean_literal(value) -> bool:
    return isinstance(value, bool)


def _check_expression(expr, path: str, where: str, plan, items) -> list[tuple[str, str]]:
    if isinstance(expr, (bool, int, Decimal, str)) or expr is None:
        return []
    if isinstance(expr, list):
        out = []
        for i, item in enumerate(expr):
            out += _check_expression(item, f"{path}[{i}]", where, plan, items)
        return out
    if not isinstance(expr, dict) or len(expr) != 1:
        return [(path, f"{where}: a JsonLogic operation is a mapping with exactly one operator")]
    (op, args), = expr.items()
    if op not in OPERATORS:
        return [(path, f"{where}: unknown operator '{op}'")]
    arg_list = args if isinstance(args, list) else [args]
    low, high = OPERATORS[op]
    if len(arg_list) < low or (high is not None and len(arg_list) > high):
        return [(path, f"{where}: '{op}' takes {low}{'' if high == low else '+' if high is None else f'-{high}'} "
                       f"arguments, got {len(arg_list)}")]
    if op == "var":
        problem = variable_problem(arg_list[0], plan, items)
        return [(f"{path}.var", f"{where}: {problem}")] if problem else []
    out = []
    for i, arg in enumerate(arg_list):
        out += _check_expression(arg, f"{path}.{op}[{i}]" if isinstance(args, list) else f"{path}.{op}", where,
                                 plan, items)
    return out
