"""Invoicing: totals, drafts and finals, numbers and documents for the billing months."""

import dagster as dg
import polars as pl

from dagster_project.defs.billing_inputs import (
    closed_meter_usage,
    insert_rows,
    load_invoices_due,
    stored_invoices,
)
from dagster_project.defs.partitions import billing_months, month_range
from dagster_project.defs.progress import report
from dagster_project.defs.rating.assets import rated_lines
from dagster_project.defs.resources import BillingClock, PricingCatalogResource, WarehouseResource
from dagster_project.invoicing.assembly import Ledgers
from dagster_project.invoicing.billing import BillingRange, issue
from dagster_project.invoicing.documents import details_json
from dagster_project.warehouse import frame, scalar

INVOICE_COLUMNS = (
    "invoice_id", "account_id", "customer_id", "price_plan", "kind", "cycle_id", "cycle_index", "period_start_date",
    "period_end_date", "issue_date", "billing_month", "status", "invoice_number", "numbering_period",
    "invoice_sequence", "currency", "subtotal_amount", "credits_applied_amount", "custom_charges_amount",
    "total_amount", "wallet_applied_amount", "amount_due_amount", "finalized_after_batch", "computed_as_of",
    "document_json", "document_html")


@dg.asset(group_name="invoicing", partitions_def=billing_months, backfill_policy=dg.BackfillPolicy.single_run(),
          deps=[rated_lines, dg.AssetKey(["marts", "dim_customers"]), dg.AssetKey(["marts", "dim_credit_grants"]),
                dg.AssetKey(["marts", "fct_wallet_topups"])],
          description="Invoices issued in the billing months (billing.invoices, lines, custom charges): drafts "
                      "are recomputed, final invoices are permanent and numbered once.")
def invoices(context: dg.AssetExecutionContext, catalog: PricingCatalogResource, warehouse: WarehouseResource,
             billing_clock: BillingClock) -> dg.MaterializeResult:
    first, last = month_range(context)
    span = BillingRange(as_of=billing_clock.today(), first_month=first, last_month=last)
    loaded = catalog.load()
    with warehouse.connect() as con:
        stored = stored_invoices(con)
        due = load_invoices_due(con, loaded, span)
        lines = frame(con, "select * exclude (billing_month) from billing.rated_lines "
                           "where billing_month between ? and ?", [first, last])
        usage = closed_meter_usage(con)
        accounts = frame(con, "select * from raw.accounts")
        customers = frame(con, "select customer_id, customer_name, email, address from marts.dim_customers")
        current_batch = scalar(con, "select max(batch_id) from raw.event_files")
        # what invoices that are not recomputed have drawn: final ones, and drafts issued before the range
        kept = "select invoice_id from billing.invoices where status = 'final' or billing_month < ?"
        ledgers = Ledgers(
            grants=frame(con, "select * from marts.dim_credit_grants"),
            credits_drawn=frame(con, f"select grant_id, amount from billing.credit_draws where invoice_id in ({kept})",
                                [first]),
            topups=frame(con, "select account_id, amount, topup_date from marts.fct_wallet_topups"),
            wallet_drawn=frame(con, "select account_id, amount from billing.wallet_draws"))
        result = issue(loaded, span, due, lines, usage, accounts, ledgers, stored, customers, current_batch,
                       catalog.directory / "templates")
        invoice_lines = result.lines.with_columns(
            pl.Series("details_json", [details_json(d) for d in result.lines["details"].to_list()], dtype=pl.String)
        ).drop("details")
        con.execute("begin transaction")
        replaced = ("select invoice_id from billing.invoices where status <> 'final' "
                    "and billing_month between ? and ?")
        for table in ("billing.invoice_lines", "billing.invoice_custom_charges", "billing.credit_draws",
                      "billing.pricing_rule_evaluations", "billing.invoices"):
            con.execute(f"delete from {table} where invoice_id in ({replaced})", [first, last])
        insert_rows(con, "billing.invoices", result.invoices.select(INVOICE_COLUMNS))
        insert_rows(con, "billing.invoice_lines", invoice_lines)
        insert_rows(con, "billing.invoice_custom_charges", result.charges)
        insert_rows(con, "billing.credit_draws", result.credit_draws)
        insert_rows(con, "billing.wallet_draws", result.wallet_draws)
        insert_rows(con, "billing.pricing_rule_evaluations", result.rule_log)
        con.execute("commit")
    by_status = dict(result.invoices.group_by("status").len().iter_rows())
    finals_before = stored.filter(pl.col("status") == "final").height
    report(context, f"invoicing: {by_status.get('draft', 0)} draft, {by_status.get('final', 0)} newly final "
                     f"({finals_before} final before, unchanged)")
    return dg.MaterializeResult(metadata={"drafts": by_status.get("draft", 0),
                                          "newly_final": by_status.get("final", 0),
                                          "final_before": finals_before})
