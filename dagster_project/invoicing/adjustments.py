"""Pricing rules and minimum commitments (steps 2 and 3 of an invoice) over every cycle invoice at once.

Rules run per plan, in `order`; each sees the results of earlier rules (line amounts and the
subtotal so far). A rule's variables are columns of one wide frame per plan, one row per invoice,
so its compiled JsonLogic evaluates for every invoice in one expression. Every evaluation is
logged. Rules and commitments apply to cycle invoices; opening invoices hold only fees in advance.
"""
from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from dagster_project.catalog import Catalog
from dagster_project.jsonlogic import as_number, compile_rule_expression, truthy, variables_of
from dagster_project.money import WORK, clamp_low, round_money, zero
from dagster_project.rating.usage import detail

SUBTOTAL = "invoice.subtotal"
LOG_SCHEMA = {
    "invoice_id": pl.String, "rule_name": pl.String, "rule_order": pl.Int32, "action_type": pl.String,
    "target_item": pl.String, "condition_result": pl.Boolean, "is_applied": pl.Boolean, "variables_json": pl.String,
    "computed_value": WORK, "amount_before": WORK, "amount_after": WORK, "subtotal_before": WORK,
    "subtotal_after": WORK,
}


@dataclass(frozen=True)
class Adjusted:
    lines: pl.DataFrame  # the rated lines with rule adjustments, plus rule and true-up lines
    log: pl.DataFrame    # one row per rule evaluation (LOG_SCHEMA)


def adjust(catalog: Catalog, invoices: pl.DataFrame, lines: pl.DataFrame, usage: pl.DataFrame,
           accounts: pl.DataFrame) -> Adjusted:
    """invoices: the invoices due; lines: their rated lines; usage: invoice_id, meter_name, quantity,
    event_count; accounts: account_id and every column of accounts.csv, as text."""
    cycle_invoices = invoices.filter(pl.col("kind") == "cycle")
    logs = [pl.DataFrame(schema=LOG_SCHEMA)]
    for plan in catalog.price_plans.values():
        if not plan.pricing_rules:
            continue
        plan_invoices = cycle_invoices.filter(pl.col("price_plan") == plan.name)
        if plan_invoices.is_empty():
            continue
        lines, log = _apply_rules(plan, plan_invoices, lines, usage, accounts, catalog.billing.rounding)
        logs.append(log)
    lines = pl.concat([lines, _true_ups(catalog, cycle_invoices, lines)], how="vertical")
    return Adjusted(lines=lines, log=pl.concat(logs, how="vertical"))


def _apply_rules(plan, invoices: pl.DataFrame, lines: pl.DataFrame, usage: pl.DataFrame, accounts: pl.DataFrame,
                 rounding: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    rules = sorted(plan.pricing_rules, key=lambda r: r.order)
    targets = sorted({r.action.target for r in rules if r.action.target})
    names = {name for r in rules for name in variables_of(r.condition) + variables_of(r.compute)}
    names |= {f"line.{t}.amount" for t in targets} | {SUBTOTAL}
    wide = _variables(invoices, lines.filter(pl.col("invoice_id").is_in(invoices["invoice_id"].implode())),
                      usage, accounts, names, targets)
    logs, added = [], []
    for rule in rules:
        read = list(dict.fromkeys(variables_of(rule.condition) + variables_of(rule.compute)))
        condition = truthy(compile_rule_expression(rule.condition)) if rule.condition is not None else pl.lit(True)
        value = round_money(as_number(compile_rule_expression(rule.compute)).cast(WORK), pl.col("currency_digits"),
                            rounding)
        target = rule.action.target
        present = pl.col(f"present.{target}") if target else pl.lit(True)
        applied = condition & value.is_not_null() & present
        before = pl.col(f"line.{target}.amount") if target else pl.lit(None, dtype=WORK)
        after = {"set_amount": value, "add_to_amount": before + value, "add_line": value}[rule.action.type]
        step = wide.with_columns(
            condition.alias("_condition"), applied.alias("_applied"), value.alias("_value"),
            before.alias("_before"), pl.when(applied).then(after).otherwise(before).alias("_after"),
            _variables_json(read).alias("_variables"))
        change = pl.col("_after").fill_null(zero()) - pl.col("_before").fill_null(zero())
        step = step.with_columns((pl.col(SUBTOTAL) + pl.when(pl.col("_applied")).then(change).otherwise(zero()))
                                 .alias("_subtotal_after"))
        logs.append(step.select(
            "invoice_id", pl.lit(rule.name).alias("rule_name"), pl.lit(rule.order, dtype=pl.Int32).alias("rule_order"),
            pl.lit(rule.action.type).alias("action_type"), pl.lit(target, dtype=pl.String).alias("target_item"),
            pl.col("_condition").alias("condition_result"), pl.col("_applied").alias("is_applied"),
            pl.col("_variables").alias("variables_json"), pl.col("_value").alias("computed_value"),
            pl.col("_before").alias("amount_before"),
            pl.when(pl.col("_applied")).then(pl.col("_after")).otherwise(pl.col("_before")).alias("amount_after"),
            pl.col(SUBTOTAL).alias("subtotal_before"), pl.col("_subtotal_after").alias("subtotal_after")))
        if rule.action.type == "add_line":
            added.append(step.filter(pl.col("_applied")).select(
                "invoice_id", pl.lit(rule.order, dtype=pl.Int32).alias("line_position"),
                pl.lit("pricing_rule").alias("line_type"), pl.lit(None, dtype=pl.String).alias("billable_item"),
                pl.lit(rule.description).alias("description"), pl.lit(None, dtype=WORK).alias("quantity"),
                pl.col("_value").alias("amount"),
                pl.concat_list(detail(kind=pl.lit("pricing_rule"), rule=pl.lit(rule.name),
                                      amount=pl.col("_value"))).alias("details")))
        updates = [pl.col("_subtotal_after").alias(SUBTOTAL)]
        if target:
            updates.append(pl.col("_after").alias(f"line.{target}.amount"))
        wide = step.with_columns(updates).select(wide.columns)
    log = pl.concat(logs, how="vertical")
    return _adjusted_lines(lines, log, added), log


def _variables(invoices: pl.DataFrame, lines: pl.DataFrame, usage: pl.DataFrame, accounts: pl.DataFrame,
               names: set[str], targets: list[str]) -> pl.DataFrame:
    """One row per invoice with a column per variable the plan's rules read (numbers as decimals)."""
    wide = invoices.select(
        "invoice_id", "account_id", "currency_digits",
        pl.col("period_days").cast(WORK).alias("cycle.days"), pl.col("cycle_index").cast(WORK).alias("cycle.index"),
        (pl.col("period_days").cast(WORK) / pl.col("full_period_days").cast(WORK)).alias("cycle.proration"),
    )
    subtotals = lines.group_by("invoice_id").agg(pl.col("amount").sum().alias(SUBTOTAL))
    wide = (wide.join(subtotals, on="invoice_id", how="left")
            .with_columns(pl.col(SUBTOTAL).fill_null(zero())))
    for target in targets:
        present = lines.filter(pl.col("billable_item") == target).select("invoice_id").unique()
        wide = wide.with_columns(pl.col("invoice_id").is_in(present["invoice_id"].implode()).alias(f"present.{target}"))
    for name in sorted(names - {SUBTOTAL, "cycle.days", "cycle.index", "cycle.proration"}):
        parts = name.split(".")
        if parts[0] == "account":
            column = parts[1]
            values = (accounts.select("account_id", pl.col(column).cast(pl.String).alias(name))
                      if column in accounts.columns else
                      accounts.select("account_id", pl.lit(None, dtype=pl.String).alias(name)))
            wide = wide.join(values, on="account_id", how="left")
            continue
        if parts[0] == "usage":
            field = "event_count" if len(parts) == 3 else "quantity"
            values = usage.filter(pl.col("meter_name") == parts[1]).select(
                "invoice_id", pl.col(field).cast(WORK).alias(name))
        else:  # line.<item>.quantity | amount: summed over the invoice's lines for that item
            values = (lines.filter(pl.col("billable_item") == parts[1]).group_by("invoice_id")
                      .agg(pl.col(parts[2]).cast(WORK).sum().alias(name)))
        wide = (wide.join(values, on="invoice_id", how="left")
                .with_columns(pl.col(name).fill_null(zero())))
    return wide


def _variables_json(names: list[str]) -> pl.Expr:
    """The values a rule read, as a JSON object of exact decimal text."""
    if not names:
        return pl.lit("{}")
    fields = [_plain_text(pl.col(n)).alias(n) for n in names]
    return pl.struct(fields).struct.json_encode()


def _plain_text(column: pl.Expr) -> pl.Expr:
    text = column.cast(pl.String)
    trimmed = text.str.strip_chars_end("0").str.strip_chars_end(".")
    return pl.when(text.str.contains(".", literal=True)).then(trimmed).otherwise(text)


def _adjusted_lines(lines: pl.DataFrame, log: pl.DataFrame, added: list[pl.DataFrame]) -> pl.DataFrame:
    """Target lines take their final amounts, with one detail row per rule that changed them."""
    changes = (log.filter(pl.col("is_applied") & pl.col("target_item").is_not_null())
               .sort("invoice_id", "rule_order")
               .group_by("invoice_id", "target_item", maintain_order=True)
               .agg(pl.col("amount_after").last().alias("_amount"),
                    detail(kind=pl.lit("pricing_rule"), rule=pl.col("rule_name"),
                           amount=pl.col("amount_after") - pl.col("amount_before")).alias("_rule_details"))
               .rename({"target_item": "billable_item"}))
    adjusted = (lines.join(changes, on=["invoice_id", "billable_item"], how="left")
                .with_columns(pl.coalesce("_amount", "amount").alias("amount"),
                              pl.when(pl.col("_rule_details").is_not_null())
                              .then(pl.concat_list("details", "_rule_details"))
                              .otherwise(pl.col("details")).alias("details"))
                .drop("_amount", "_rule_details"))
    return pl.concat([adjusted, *[a.select(lines.columns) for a in added]], how="vertical")


def _true_ups(catalog: Catalog, invoices: pl.DataFrame, lines: pl.DataFrame) -> pl.DataFrame:
    """A commitment_true_up line where the lines a commitment covers sum below its amount."""
    true_ups = [lines.clear()]
    for plan in catalog.price_plans.values():
        commitment = plan.minimum_commitment
        if commitment is None:
            continue
        plan_invoices = (invoices.filter(pl.col("price_plan") == plan.name)
                         .select("invoice_id", "currency", "currency_digits"))
        covered = lines if commitment.applies_to == "all" else lines.filter(
            pl.col("billable_item").is_in(commitment.applies_to))
        sums = covered.group_by("invoice_id").agg(pl.col("amount").sum().alias("_covered"))
        amount = pl.lit(commitment.amount, dtype=WORK)
        shortfall = clamp_low(amount - pl.col("_covered").fill_null(zero()), zero())
        true_ups.append(
            plan_invoices.join(sums, on="invoice_id", how="left")
            .with_columns(shortfall.alias("_shortfall"))
            .filter(pl.col("_shortfall") > 0)
            .select("invoice_id", pl.lit(0, dtype=pl.Int32).alias("line_position"),
                    pl.lit("commitment_true_up").alias("line_type"),
                    pl.lit(None, dtype=pl.String).alias("billable_item"),
                    pl.concat_str(pl.lit("Minimum commitment true-up ("), pl.lit(format(commitment.amount, "f")),
                                  pl.lit(" "), pl.col("currency"), pl.lit(")")).alias("description"),
                    pl.lit(None, dtype=WORK).alias("quantity"),
                    round_money(pl.col("_shortfall"), pl.col("currency_digits"), catalog.billing.rounding)
                    .alias("amount"),
                    pl.concat_list(detail(kind=pl.lit("commitment"), amount=amount,
                                          quantity=pl.col("_covered").fill_null(zero()))).alias("details"))
            .select(lines.columns))
    return pl.concat(true_ups, how="vertical")
