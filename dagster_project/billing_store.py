"""The billing state in the warehouse, read and written through this one module.

billing.* holds what invoicing decided: invoices, their lines, custom charges, credit and wallet
draws and pricing-rule evaluations. A final invoice becomes permanent only when the run that
made it final commits (after every check passed and just before publishing): until then it is
`is_committed = false`, and the next run discards it if its own run failed. So a failed run
leaves no number given and no credit drawn, and is fixed by fixing the input and rerunning.

billing.due_invoices is the worklist of the current run (which invoices are due, computed once by
rating and read by invoicing); billing.rating_holds names the accounts rating had to hold back.
"""
from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from dagster_project.invoicing.assembly import Ledgers
from dagster_project.invoicing.billing import BillingResult
from dagster_project.warehouse import frame, scalar

INVOICE_COLUMNS = (
    "invoice_id", "account_id", "customer_id", "price_plan", "kind", "cycle_id", "cycle_index", "period_start_date",
    "period_end_date", "issue_date", "billing_month", "status", "invoice_number", "numbering_prefix",
    "numbering_period", "invoice_sequence", "currency", "subtotal_amount", "credits_applied_amount",
    "custom_charges_amount", "total_amount", "wallet_applied_amount", "amount_due_amount", "finalized_after_batch",
    "computed_as_of", "is_committed", "document_json", "document_html")
# every table whose rows belong to one invoice, the invoices table last
_INVOICE_TABLES = ("billing.invoice_lines", "billing.invoice_custom_charges", "billing.credit_draws",
                   "billing.wallet_draws", "billing.pricing_rule_evaluations", "billing.invoices")
_COMMITTED_FINAL = "status = 'final' and is_committed"


# --- reads -------------------------------------------------------------------------------------------

def stored_invoices(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Invoices kept from earlier runs: committed finals and drafts."""
    return frame(con, "select invoice_id, account_id, status, numbering_period, invoice_sequence, billing_month "
                      f"from billing.invoices where {_COMMITTED_FINAL} or status = 'draft'")


def held_accounts(con: duckdb.DuckDBPyConnection, include_rating: bool = True) -> pl.DataFrame:
    """Accounts held back in this run, with the first reason: a bad reference row, or (once rating
    has run) amounts out of range."""
    rating = """
        union all by name
        select account_id, reason from billing.rating_holds
        where account_id not in (select account_id from raw.reference_problems where account_id is not null)"""
    return frame(con, f"""
        select account_id, min_by(problem, coalesce(line_number, 0)) as reason
        from raw.reference_problems where account_id is not null group by account_id
        {rating if include_rating else ""}
        order by account_id""")


def closed_meter_usage(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Meter quantities of closed cycles: what rating prices and what pricing rules read."""
    return frame(con, "select cycle_id, account_id, meter_name, quantity, event_count from marts.fct_meter_usage "
                      "where is_closed")


def billing_cycles(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return frame(con, "select * from marts.fct_billing_cycles")


def billed_accounts(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return frame(con, "select account_id, customer_id, tax_rate from marts.dim_accounts")


def account_attributes(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every column of accounts.csv as text (pricing-rule variables)."""
    return frame(con, "select * from raw.accounts")


def customers(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return frame(con, "select customer_id, customer_name, email, address from marts.dim_customers")


def license_intervals(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return frame(con, "select * from marts.fct_license_intervals")


def current_batch(con: duckdb.DuckDBPyConnection) -> int | None:
    """The latest event load batch: what a newly final invoice has seen (later events are late)."""
    return scalar(con, "select max(batch_id) from raw.event_file_loads")


def due_invoices(con: duckdb.DuckDBPyConnection) -> pl.LazyFrame:
    return frame(con, "select * from billing.due_invoices").lazy()


def rated_lines(con: duckdb.DuckDBPyConnection, first: date, last: date) -> pl.DataFrame:
    return frame(con, "select * exclude (billing_month) from billing.rated_lines where billing_month between ? and ?",
                 [first, last])


def ledgers(con: duckdb.DuckDBPyConnection, first_month: date) -> Ledgers:
    """What credits and wallets hold before the invoices of the range draw on them: draws of
    committed finals, and of drafts issued before the range."""
    kept = f"select invoice_id from billing.invoices where {_COMMITTED_FINAL} or billing_month < ?"
    return Ledgers(
        grants=frame(con, "select * from marts.dim_credit_grants"),
        credits_drawn=frame(con, f"select grant_id, amount from billing.credit_draws where invoice_id in ({kept})",
                            [first_month]),
        topups=frame(con, "select account_id, amount, topup_date from marts.fct_wallet_topups"),
        wallet_drawn=frame(con, "select account_id, amount from billing.wallet_draws where invoice_id in "
                                f"(select invoice_id from billing.invoices where {_COMMITTED_FINAL})"))


def document_stamps(con: duckdb.DuckDBPyConnection, directory: str, first: date, last: date) -> pl.DataFrame:
    """The documents of the billing months: invoice_id, the digest of their text, the byte sizes of
    their files, and the digest last published to `directory` (null when never published there)."""
    return frame(con, """
        select i.invoice_id, md5(i.document_json || i.document_html) as digest,
               strlen(i.document_json) as json_bytes, strlen(i.document_html) as html_bytes,
               p.digest as published_digest
        from billing.invoices as i
        left join billing.published_documents as p on p.directory = ? and p.invoice_id = i.invoice_id
        where i.billing_month between ? and ?
        order by i.invoice_id""", [directory, first, last])


def document_texts(con: duckdb.DuckDBPyConnection, invoice_ids: list[str]):
    """(invoice_id, json, html) of some invoices, streamed in batches: never all documents at once."""
    cursor = con.execute("select invoice_id, document_json, document_html from billing.invoices "
                         "where invoice_id in (select unnest(?::varchar[])) order by invoice_id", [invoice_ids])
    while batch := cursor.fetchmany(2_000):
        yield from batch


def record_published(con: duckdb.DuckDBPyConnection, directory: str, written: pl.DataFrame,
                     removed: list[str]) -> None:
    """What the invoices directory now holds (invoice_id, digest), so the next run writes only what changed."""
    con.execute("begin transaction")
    ids = written["invoice_id"].to_list() + removed
    con.execute("delete from billing.published_documents where directory = ? "
                "and invoice_id in (select unnest(?::varchar[]))", [directory, ids])
    insert_rows(con, "billing.published_documents", written.select(pl.lit(directory).alias("directory"),
                                                                     "invoice_id", "digest"))
    con.execute("commit")


def invoice_ids(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {row[0] for row in con.execute("select invoice_id from billing.invoices").fetchall()}


# --- writes ------------------------------------------------------------------------------------------

def discard_uncommitted(con: duckdb.DuckDBPyConnection) -> int:
    """Forget the finals of a run that failed before it committed (numbers, draws and all)."""
    uncommitted = "select invoice_id from billing.invoices where status = 'final' and not is_committed"
    count = scalar(con, f"select count(*) from ({uncommitted})")
    if count:
        con.execute("begin transaction")
        for table in _INVOICE_TABLES:
            con.execute(f"delete from {table} where invoice_id in ({uncommitted})")
        con.execute("commit")
    return count


def save_worklist(con: duckdb.DuckDBPyConnection, due: pl.DataFrame, lines: pl.DataFrame, holds: pl.DataFrame,
                  first: date, last: date) -> None:
    """The run's due invoices, their rated lines and the accounts rating held back."""
    con.execute("begin transaction")
    con.execute("create or replace table billing.rating_holds (account_id varchar, reason varchar)")
    insert_rows(con, "billing.rating_holds", holds)
    con.register("due_rows", due.to_arrow())
    try:
        con.execute("create or replace table billing.due_invoices as select * from due_rows")
    finally:
        con.unregister("due_rows")
    con.execute("delete from billing.rated_lines where billing_month between ? and ?", [first, last])
    insert_rows(con, "billing.rated_lines", lines)
    con.execute("commit")


def save_invoices(con: duckdb.DuckDBPyConnection, result: BillingResult, first: date, last: date,
                  held: list[str]) -> None:
    """Replace the drafts of the range (a held account keeps its own) with the run's invoices."""
    lines = result.lines
    con.execute("begin transaction")
    con.execute("create or replace temp table held_now (account_id varchar)")
    if held:
        con.executemany("insert into held_now values (?)", [[account] for account in held])
    con.register("new_invoices", result.invoices.select("invoice_id").to_arrow())
    # drafts of the range, and any draft an invoice of this run replaces (a changed grace period
    # can move an invoice to another billing month)
    replaced = ("select invoice_id from billing.invoices where status = 'draft' "
                "and (billing_month between ? and ? or invoice_id in (select invoice_id from new_invoices)) "
                "and account_id not in (select account_id from held_now)")
    for table in _INVOICE_TABLES:
        con.execute(f"delete from {table} where invoice_id in ({replaced})", [first, last])
    con.unregister("new_invoices")
    insert_rows(con, "billing.invoices", result.invoices.with_columns(
        (pl.col("status") == "draft").alias("is_committed")).select(INVOICE_COLUMNS))
    insert_rows(con, "billing.invoice_lines", lines)
    insert_rows(con, "billing.invoice_custom_charges", result.charges)
    insert_rows(con, "billing.credit_draws", result.credit_draws)
    insert_rows(con, "billing.wallet_draws", result.wallet_draws)
    insert_rows(con, "billing.pricing_rule_evaluations", result.rule_log)
    con.execute("drop table held_now")
    con.execute("commit")


def commit(con: duckdb.DuckDBPyConnection) -> int:
    """Make the run's finals permanent: numbers given, credits and wallet drawn. Returns how many."""
    count = scalar(con, "select count(*) from billing.invoices where status = 'final' and not is_committed")
    con.execute("update billing.invoices set is_committed = true where status = 'final' and not is_committed")
    return count


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: pl.DataFrame) -> None:
    """Insert a frame's rows into a table by column name."""
    if rows.is_empty():
        return
    con.register("frame_rows", rows.to_arrow())
    try:
        columns = ", ".join(f'"{c}"' for c in rows.columns)
        con.execute(f"insert into {table} ({columns}) select {columns} from frame_rows")
    finally:
        con.unregister("frame_rows")
