"""Pricing rules and commitments (README): compiled JsonLogic, applied in order, logged.

The compiler is checked differentially against an independent JsonLogic interpreter
(panzi-json-logic) on generated rules and data.
"""
from __future__ import annotations

import json
import shutil
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from json_logic import jsonLogic

from dagster_project.catalog import ConfigError, load_catalog
from dagster_project.invoicing.adjustments import adjust
from dagster_project.jsonlogic import RuleError, compile_rule_expression, truthy
from dagster_project.money import WORK
from dagster_project.rating.usage import DETAIL
from tests.conftest import CASES

PLAN = """
name: p
currency: USD
billing_cycle: {interval: month}
rate_cards:
  usage:
    - {billable_item: api_calls, model: per_unit, unit_price: "0.01"}
  fixed_fees:
    - {billable_item: platform_fee, amount: "100"}
minimum_commitment: {amount: "500", applies_to: [api_calls]}
pricing_rules:
  - name: bulk_discount
    order: 1
    condition: {">": [{"var": "usage.api_calls"}, 10000]}
    compute: {"*": [{"var": "line.api_calls.amount"}, -0.1]}
    action: {type: add_to_amount, target: api_calls}
  - name: cap_the_platform_fee
    order: 2
    condition: {">": [{"var": "invoice.subtotal"}, 300]}
    compute: {"-": [{"var": "line.platform_fee.amount"}, 25]}
    action: {type: set_amount, target: platform_fee}
  - name: enterprise_thanks
    order: 3
    condition: {"and": [{"==": [{"var": "account.segment"}, "enterprise"]},
                        {">=": [{"var": "line.api_calls.amount"}, 270]}]}
    compute: {"max": [-20, {"*": [{"var": "invoice.subtotal"}, -0.05]}]}
    action: {type: add_line}
    description: Enterprise thank-you
"""


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    config = tmp_path_factory.mktemp("config")
    shutil.copytree(CASES / "05_pricing_rules" / "pricing_config", config, dirs_exist_ok=True)
    (config / "price_plans" / "api.yaml").unlink()
    (config / "price_plans" / "p.yaml").write_text(PLAN)
    (config / "billable_items.yaml").write_text(
        "billable_items:\n  - {name: api_calls, billable_name: API calls, type: usage, usage_meter: api_calls}\n"
        "  - {name: platform_fee, billable_name: Platform fee, type: fixed_fee}\n")
    return load_catalog(config)


def adjusted(catalog, calls: int, segment: str):
    invoices = pl.DataFrame({"invoice_id": ["i"], "account_id": ["a"], "kind": ["cycle"], "price_plan": ["p"],
                             "currency": ["USD"], "currency_digits": [2], "cycle_index": [0], "period_days": [31],
                             "full_period_days": [31]},
                            schema_overrides={"currency_digits": pl.Int32, "period_days": pl.Int32,
                                              "full_period_days": pl.Int32})
    amount = Decimal(calls) * Decimal("0.01")
    lines = pl.DataFrame({"invoice_id": ["i", "i"], "line_position": [0, 0], "line_type": ["usage", "fixed_fee"],
                          "billable_item": ["api_calls", "platform_fee"], "description": ["API calls", "Fee"],
                          "quantity": [Decimal(calls), Decimal(1)], "amount": [amount, Decimal(100)],
                          "details": [[], []]},
                         schema={"invoice_id": pl.String, "line_position": pl.Int32, "line_type": pl.String,
                                 "billable_item": pl.String, "description": pl.String, "quantity": WORK,
                                 "amount": WORK, "details": pl.List(DETAIL)})
    usage = pl.DataFrame({"invoice_id": ["i"], "meter_name": ["api_calls"], "quantity": [Decimal(calls)],
                          "event_count": [3]}, schema_overrides={"quantity": WORK})
    accounts = pl.DataFrame({"account_id": ["a"], "segment": [segment]})
    return adjust(catalog, invoices, lines, usage, accounts)


def amounts(result) -> dict:
    return {(t, i or d): a for t, i, d, a in
            result.lines.select("line_type", "billable_item", "description", "amount").iter_rows()}


def test_each_rule_sees_the_results_of_the_rules_before_it(catalog):
    result = adjusted(catalog, 30000, "enterprise")
    # 300 - 30 (rule 1) = 270; subtotal 370 > 300, so the fee becomes 100 - 25 = 75 (rule 2);
    # rule 3 sees subtotal 345 and adds max(-20, -17.25) = -17.25; the commitment covers api_calls
    # only (270 < 500): a true-up of 230
    assert amounts(result) == {("usage", "api_calls"): Decimal("270.00"), ("fixed_fee", "platform_fee"): Decimal(75),
                               ("pricing_rule", "Enterprise thank-you"): Decimal("-17.25"),
                               ("commitment_true_up", "Minimum commitment true-up (500 USD)"): Decimal(230)}
    log = result.log.sort("rule_order").select("rule_name", "condition_result", "amount_before", "amount_after",
                                               "subtotal_before", "subtotal_after").rows()
    assert log == [("bulk_discount", True, Decimal(300), Decimal(270), Decimal(400), Decimal(370)),
                   ("cap_the_platform_fee", True, Decimal(100), Decimal(75), Decimal(370), Decimal(345)),
                   ("enterprise_thanks", True, None, Decimal("-17.25"), Decimal(345), Decimal("327.75"))]
    assert json.loads(result.log.filter(pl.col("rule_order") == 1)["variables_json"].item()) == {
        "usage.api_calls": "30000", "line.api_calls.amount": "300"}


def test_rules_whose_conditions_fail_change_nothing_and_are_still_logged(catalog):
    result = adjusted(catalog, 5000, "smb")
    assert amounts(result) == {("usage", "api_calls"): Decimal("50.00"), ("fixed_fee", "platform_fee"): Decimal(100),
                               ("commitment_true_up", "Minimum commitment true-up (500 USD)"): Decimal(450)}
    assert result.log["condition_result"].to_list() == [False, False, False]
    assert len(result.log) == 3


def test_a_commitment_exactly_met_adds_no_line(catalog):
    result = adjusted(catalog, 50000, "smb")  # 500 - 50 = 450 < 500: a true-up of 50
    assert amounts(result)[("commitment_true_up", "Minimum commitment true-up (500 USD)")] == Decimal(50)
    exactly = adjusted(catalog, 55556, "smb")  # 555.56 - 55.56 = 500.00 exactly
    assert not any(t == "commitment_true_up" for t, _ in amounts(exactly))


@pytest.mark.parametrize("rule, message", [
    ('{name: r, order: 1, compute: {"^": [1, 2]}, action: {type: add_line}, description: x}',
     "pricing_rules[0].compute: rule 'r': unknown operator '^'"),
    ('{name: r, order: 1, compute: {"var": "usage.nope"}, action: {type: add_line}, description: x}',
     "pricing_rules[0].compute: rule 'r': unknown variable 'usage.nope': 'nope' is not a meter of plan 'p'"),
    ('{name: r, order: 1, compute: {">": [1, 2]}, action: {type: add_line}, description: x}',
     "pricing_rules[0].compute: rule 'r': compute must give a number, not boolean"),
    ('{name: r, order: 1, compute: {"var": "account.segment"}, action: {type: add_line}, description: x}',
     "pricing_rules[0].compute: rule 'r': compute must give a number, not text"),
    ('{name: r, order: 1, compute: 1, action: {type: set_amount, target: storage}}',
     "pricing_rules[0].action.target: rule 'r': 'storage' is not priced by plan 'p'"),
    ('{name: r, order: 1, condition: {"if": [true, 1, "a"]}, compute: 1, action: {type: add_line}, description: x}',
     "pricing_rules[0].condition: rule 'r': the branches of 'if' give different types: number, text"),
])
def test_invalid_rules_are_configuration_errors_naming_the_rule(catalog, tmp_path, rule, message):
    shutil.copytree(CASES / "05_pricing_rules" / "pricing_config", tmp_path / "c")
    (tmp_path / "c" / "price_plans" / "api.yaml").write_text(
        "name: p\ncurrency: USD\nbilling_cycle: {interval: month}\nrate_cards:\n  usage:\n"
        '    - {billable_item: api_calls, model: per_unit, unit_price: "1"}\n'
        f"pricing_rules:\n  - {rule}\n")
    with pytest.raises(ConfigError) as caught:
        load_catalog(tmp_path / "c")
    assert [str(p) for p in caught.value.problems] == [f"price_plans/api.yaml: {message}"]


def evaluate(expression, row: dict):
    frame = pl.DataFrame([row], schema={name: (pl.String if name.startswith("account.") else WORK) for name in row})
    typed = compile_rule_expression(expression)
    return frame.select(typed.expr.alias("v")).item(), typed


def test_modulo_takes_the_sign_of_the_dividend_as_in_javascript():
    assert evaluate({"%": [-7, 3]}, {"x": Decimal(0)})[0] == Decimal(-1)
    assert evaluate({"%": [7, 3]}, {"x": Decimal(0)})[0] == Decimal(1)


def test_text_compares_with_numbers_numerically_and_division_by_zero_is_null():
    assert evaluate({"==": [{"var": "account.employees"}, 250]}, {"account.employees": "250.0"})[0] is True
    assert evaluate({"/": [1, {"var": "x"}]}, {"x": Decimal(0)})[0] is None


# --- differential: the compiler against an independent interpreter ---------------------------------------------

NUMBER_VARIABLES = ["usage.api_calls", "line.api_calls.amount", "invoice.subtotal", "cycle.days"]
literal = st.decimals(min_value=-1000, max_value=1000, places=2).map(lambda d: d.normalize() if d else Decimal(0))


def numbers(depth: int):
    leaf = st.one_of(literal, st.sampled_from(NUMBER_VARIABLES).map(lambda v: {"var": v}))
    if depth == 0:
        return leaf
    inner = numbers(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(st.sampled_from(["+", "*", "min", "max"]), st.lists(inner, min_size=1, max_size=3))
        .map(lambda t: {t[0]: t[1]}),
        st.tuples(inner, inner).map(lambda t: {"-": list(t)}),
        st.tuples(inner, literal.filter(lambda d: d != 0)).map(lambda t: {"/": list(t)}),
        st.tuples(conditions(depth - 1), inner, inner).map(lambda t: {"if": list(t)}),
    )


def conditions(depth: int):
    comparison = st.tuples(st.sampled_from([">", ">=", "<", "<=", "==", "!="]), numbers(0), numbers(0)).map(
        lambda t: {t[0]: [t[1], t[2]]})
    segment = st.sampled_from(["enterprise", "smb", ""]).map(lambda s: {"==": [{"var": "account.segment"}, s]})
    membership = st.lists(st.sampled_from(["enterprise", "smb", "edu"]), min_size=1, max_size=3).map(
        lambda values: {"in": [{"var": "account.segment"}, values]})
    leaf = st.one_of(comparison, segment, membership)
    if depth == 0:
        return leaf
    inner = conditions(depth - 1)
    return st.one_of(leaf,
                     st.tuples(st.sampled_from(["and", "or"]), st.lists(inner, min_size=1, max_size=3))
                     .map(lambda t: {t[0]: t[1]}),
                     inner.map(lambda c: {"!": c}))


data = st.fixed_dictionaries({
    "usage.api_calls": st.integers(min_value=0, max_value=300000).map(Decimal),
    "line.api_calls.amount": st.decimals(min_value=0, max_value=5000, places=2),
    "invoice.subtotal": st.decimals(min_value=-100, max_value=9000, places=2),
    "cycle.days": st.integers(min_value=1, max_value=31).map(Decimal),
    "account.segment": st.sampled_from(["enterprise", "smb", "edu", ""]),
})


def nested(row: dict) -> dict:
    """The same data as the nested object a JsonLogic interpreter reads `usage.api_calls` from."""
    out: dict = {}
    for name, value in row.items():
        *parents, leaf = name.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


@settings(max_examples=150, deadline=None)
@given(numbers(2), data)
def test_compiled_computations_match_the_reference_interpreter(expression, row):
    ours, typed = evaluate(expression, row)
    theirs = jsonLogic(expression, nested(row))
    assert typed.kind == "number"
    # the oracle computes in binary floats, ours in exact decimals: agree to the floats' precision
    expected = Decimal(str(theirs))
    assert abs(Decimal(str(ours)) - expected) <= max(abs(expected), Decimal(1)) * Decimal("1e-12")


@settings(max_examples=150, deadline=None)
@given(conditions(2), data)
def test_compiled_conditions_match_the_reference_interpreter(expression, row):
    frame = pl.DataFrame([row], schema={n: (pl.String if n.startswith("account.") else WORK) for n in row})
    ours = frame.select(truthy(compile_rule_expression(expression)).alias("v")).item()
    assert ours == bool(jsonLogic(expression, nested(row)))


def test_numbers_are_never_floats():
    with pytest.raises(RuleError):
        compile_rule_expression({"+": [1, 0.5]})
    # text that holds a number compares and computes as an exact decimal
    assert evaluate({"+": [{"var": "account.credit"}, "0.2"]}, {"account.credit": "0.1"})[0] == Decimal("0.3")
