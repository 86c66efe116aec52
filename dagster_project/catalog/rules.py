"""Validation of JsonLogic pricing rules (README): a rule that cannot be compiled, reads an
unknown variable or does not compute a number is a configuration error naming the rule.

The language is defined once, by the compiler in jsonlogic.py; validation compiles each rule.
"""
from __future__ import annotations

from dagster_project.jsonlogic import NUMBER, RuleError, compile_rule_expression, variables_of

CYCLE_VARIABLES = ("days", "index", "proration")
LINE_FIELDS = ("quantity", "amount")


def variable_problem(name: str, plan, items: dict | None, meters_of_plan: list[str] | None) -> str | None:
    """Why a `var` name is not one of the README's variables for this plan, or None if it is."""
    parts = name.split(".")
    head = parts[0]
    if head == "usage" and len(parts) in (2, 3):
        if len(parts) == 3 and parts[2] != "event_count":
            return f"unknown variable '{name}' (usage.<meter> or usage.<meter>.event_count)"
        if meters_of_plan is not None and parts[1] not in meters_of_plan:
            return f"unknown variable '{name}': '{parts[1]}' is not a meter of plan '{plan.name}'"
        return None
    if head == "line" and len(parts) == 3:
        if parts[2] not in LINE_FIELDS:
            return f"unknown variable '{name}' (line.<billable_item>.quantity or .amount)"
        if items is not None and parts[1] not in items:
            return f"unknown billable item '{parts[1]}' in variable '{name}'"
        return None
    if name == "invoice.subtotal" or (head == "account" and len(parts) == 2):
        return None
    if head == "cycle" and len(parts) == 2 and parts[1] in CYCLE_VARIABLES:
        return None
    return f"unknown variable '{name}'"


def priced_items(plan) -> list[str]:
    cards = plan.rate_cards
    return [c.billable_item for c in (*cards.usage, *cards.licenses, *cards.fixed_fees)]


def check_rules(plan, items: dict | None, meters_of_plan: list[str] | None) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    names: set[str] = set()
    for i, rule in enumerate(plan.pricing_rules):
        path, where = f"pricing_rules[{i}]", f"rule '{rule.name}'"
        if rule.name in names:
            problems.append((f"{path}.name", f"duplicate pricing rule name '{rule.name}'"))
        names.add(rule.name)
        for part, expression in (("condition", rule.condition), ("compute", rule.compute)):
            if part == "condition" and expression is None:
                continue
            try:
                typed = compile_rule_expression(expression)
            except RuleError as exc:
                problems.append((f"{path}.{part}", f"{where}: {exc}"))
                continue
            for name in variables_of(expression):
                problem = variable_problem(name, plan, items, meters_of_plan)
                if problem:
                    problems.append((f"{path}.{part}", f"{where}: {problem}"))
            if part == "compute" and typed.kind != NUMBER:
                problems.append((f"{path}.compute", f"{where}: compute must give a number, not {typed.kind}"))
        action = rule.action
        if action.type in ("set_amount", "add_to_amount"):
            if action.target is None:
                problems.append((f"{path}.action.target", f"{where}: {action.type} needs a target billable item"))
            elif action.target not in priced_items(plan):
                problems.append((f"{path}.action.target",
                                 f"{where}: '{action.target}' is not priced by plan '{plan.name}'"))
        elif action.target is not None:
            problems.append((f"{path}.action.target", f"{where}: add_line takes no target"))
        if action.type == "add_line" and not rule.description:
            problems.append((f"{path}.description", f"{where}: add_line needs a description (the line's text)"))
    return problems
