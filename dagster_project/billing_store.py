"""The billing state in the warehouse, read and written through this one module.

billing.* holds what invoicing decided: invoices, their lines, custom charges, credit and wallet
draws and pricing-rule evaluations. A final invoice becomes permanent only when the run that
made it final commits (after every check passed and just before publishing): until then it is
`is_committed = false`, and the next run discards it if its own run failed. So a failed run
leaves no number given and no credit drawn, and is fixed by fixing the input and rerunning.

billing.due_invoices is the worklist of the current run (which invoices are due, computed once by
rating and read by invoicing); billing.rating_holds names the accounts rating had to hold back.
billing.void_requests holds what `tally void` asked for; the next run carries it out.
"""
from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from dagster_project.invoicing.assembly import Ledgers
from dagster_project.invoicing.billing import BillingResult
from dagster_project.invoicing.corrections import InvoiceHistory, no_history
from dagster_project.warehouse import frame, scalar

INVOICE_COLUMNS = (
    "invoice_id", "account_id", "customer_id", "price_plan", "kind", "cycle_id", "cycle_index", "period_start_date",
    "period_end_date", "issue_date", "billing_month", "status", "invoice_number", "numbering_prefix",
    "numbering_period", "invoice_sequence", "currency", "subtotal_amount", "credits_applied_amount",
    "custom_charges_amount", "total_amount", "wallet_applied_amount", "amount_due_amount", "finalized_after_batch",
    "computed_as_of", "is_committed", "document_json", "adjusts_invoice_id", "replaces_invoice_id",
    "adjustment_cause", "adjustment_reason")
# every table whose rows belong to one invoice, the invoices table last
_INVOICE_TABLES = ("billing.invoice_lines", "billing.invoice_custom_charges", "billing.credit_draws",
                   "billing.wallet_draws", "billing.pricing_rule_evaluations", "billing.invoices")
_COMMITTED_FINAL = "status = 'final' and is_committed"
# committed final documents with the chain each belongs to (invoicing/corrections.py): a note's is
# its invoice's, <account_id>/<period_start>_<kind of the invoice>
_CHAINED_FINALS = """
    select documents.*,
           documents.account_id || '/' || strftime(documents.period_start_date, '%Y-%m-%d') || '_'
               || coalesce(adjusted.kind, documents.kind) as chain_id
    from billing.invoices as documents
    left join billing.invoices as adjusted on adjusted.invoice_id = documents.adjusts_invoice_id
    where documents.status = 'final' and documents.is_committed"""
_VOIDED = "select adjusts_invoice_id from chained where kind = 'credit_note' and adjustment_cause = 'void'"


# --- reads -------------------------------------------------------------------------------------------

def stored_invoices(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Invoices kept from earlier runs: committed finals and drafts."""
    return frame(con, "select invoice_id, account_id, kind, status, invoice_number, numbering_period, "
                      "invoice_sequence, billing_month "
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
    """Meter quantities of closed cycles: what rating prices and what pricing rules read. A cycle
    with late events is final, so only a correction prices it: over all its events, late ones too."""
    return frame(con, """
        select cycle_id, account_id, meter_name, quantity, event_count from marts.fct_meter_usage
        where is_closed and cycle_id not in (select cycle_id from marts.fct_meter_usage_with_late_events)
        union all
        select cycle_id, account_id, meter_name, quantity, event_count from marts.fct_meter_usage_with_late_events
        where is_closed""")


def billing_cycles(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return frame(con, "select * from marts.fct_billing_cycles")


def billed_accounts(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return frame(con, "select account_id, customer_id, tax_rate from marts.dim_accounts")


def account_attributes(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every column of accounts.csv as text (pricing-rule variables)."""
    return frame(con, "select * from raw.accounts")


def customers(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return frame(con, "select customer_id, customer_name, email, address, tax_id, payment_terms_days "
                      "from marts.dim_customers")


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


def pending_voids(con: duckdb.DuckDBPyConnection, held: list[str]) -> pl.DataFrame:
    """The voids asked for and not yet carried out (invoice_id, invoice_number, reason, chain_id),
    but for held-back accounts: those wait for a run that bills them."""
    return frame(con, f"""
        with chained as ({_CHAINED_FINALS})
        select requests.invoice_id, requests.invoice_number, requests.reason, chained.chain_id
        from billing.void_requests as requests
        inner join chained on chained.invoice_id = requests.invoice_id
        where requests.invoice_id not in ({_VOIDED})
          and chained.account_id not in (select unnest(?::varchar[]))
        order by requests.invoice_id""", [held])


def late_event_chains(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """chain_id, invoice_id (the chain's current invoice) of every cycle invoice whose cycle has
    late events loaded after the chain's last document was issued: what `late_events: adjust`
    re-rates. Chains billed since their latest late event are not re-rated again."""
    return frame(con, f"""
        with chained as ({_CHAINED_FINALS}),
        late as (
            select cycle_id, any_value(latest_late_batch) as latest_late_batch
            from marts.fct_meter_usage_with_late_events group by cycle_id
        ),
        chains as (
            select chain_id, max(finalized_after_batch) as billed_through_batch from chained group by chain_id
        )
        select chained.chain_id, chained.invoice_id
        from chained
        inner join late on late.cycle_id = chained.cycle_id
        inner join chains on chains.chain_id = chained.chain_id
        where chained.kind = 'cycle'
          and chained.invoice_id not in ({_VOIDED})
          and late.latest_late_batch > chains.billed_through_batch
        order by chained.chain_id""")


def invoice_history(con: duckdb.DuckDBPyConnection, voids: pl.DataFrame, restated_ids: list[str]) -> InvoiceHistory:
    """The committed documents of the chains a run corrects: those of the voids, and those whose
    current invoice is restated (restated_ids)."""
    if voids.is_empty() and not restated_ids:
        return no_history()
    chains = voids["chain_id"].to_list() + [
        row[0] for row in con.execute(f"with chained as ({_CHAINED_FINALS}) select chain_id from chained "
                                      "where invoice_id in (select unnest(?::varchar[]))", [restated_ids]).fetchall()]
    documents = frame(con, f"""
        with chained as ({_CHAINED_FINALS})
        select * exclude (document_json) from chained
        where chain_id in (select unnest(?::varchar[]))
        order by invoice_id""", [chains])
    ids = documents["invoice_id"].to_list()

    def rows_of(table: str, order: str) -> pl.DataFrame:
        return frame(con, f"select * from {table} where invoice_id in (select unnest(?::varchar[])) order by {order}",
                     [ids])

    return InvoiceHistory(
        voids=voids, documents=documents,
        lines=rows_of("billing.invoice_lines", "invoice_id, line_number"),
        charges=rows_of("billing.invoice_custom_charges", "invoice_id, charge_number"),
        credit_draws=rows_of("billing.credit_draws", "invoice_id, draw_number"))


def document_stamps(con: duckdb.DuckDBPyConnection, directory: str, first: date, last: date,
                    rendering: str) -> pl.DataFrame:
    """The documents of the billing months: invoice_id, the digest of what their files are made of
    (their JSON and `rendering`, what the HTML is rendered with: documents.html_rendering), and what
    was last published to `directory` (its digest and file sizes, null when never published there).
    A published committed final is not read again: its digest stands. (Its JSON is not even
    scanned: the digests of the others are a second query, which reads the JSON of those alone.
    One query read every document's JSON, 0.13 s at 130k invoices, growing with every month.)"""
    stamps = frame(con, """
        select i.invoice_id,
               case when i.status = 'final' and i.is_committed and coalesce(p.is_final, false) then p.digest
               end as digest,
               p.digest as published_digest, p.json_bytes, p.html_bytes,
               i.status = 'final' and i.is_committed as is_final
        from billing.invoices as i
        left join billing.published_documents as p on p.directory = ? and p.invoice_id = i.invoice_id
        where i.billing_month between ? and ?""", [directory, first, last])
    pending = stamps.filter(pl.col("digest").is_null())["invoice_id"].to_list()
    if pending:
        digests = frame(con, "select invoice_id, md5(document_json || ?) as computed_digest from billing.invoices "
                             "where invoice_id in (select unnest(?::varchar[]))", [rendering, pending])
        stamps = stamps.join(digests, on="invoice_id", how="left").with_columns(
            pl.coalesce("digest", "computed_digest").alias("digest")).drop("computed_digest")
    return stamps.sort("invoice_id")


def documents_to_check(con: duckdb.DuckDBPyConnection, directory: str) -> list[str]:
    """The invoices whose documents a run may write to `directory`: all but the finals published
    there as final, whose ids were checked when they were first written."""
    return [row[0] for row in con.execute(
        "select invoice_id from billing.invoices as i where not exists (select 1 from billing.published_documents "
        "as p where p.directory = ? and p.invoice_id = i.invoice_id and p.is_final)", [directory]).fetchall()]


def gone_documents(con: duckdb.DuckDBPyConnection, directory: str) -> list[str] | None:
    """The documents recorded as published to `directory` whose invoice no longer exists (a draft
    whose cycle went away); None when nothing is recorded as published there."""
    if not scalar(con, "select exists (select 1 from billing.published_documents where directory = ?)", [directory]):
        return None
    return [row[0] for row in con.execute(
        "select invoice_id from billing.published_documents as p where p.directory = ? and not exists "
        "(select 1 from billing.invoices as i where i.invoice_id = p.invoice_id) order by 1", [directory]).fetchall()]


def invoice_count(con: duckdb.DuckDBPyConnection) -> int:
    return scalar(con, "select count(*) from billing.invoices")


def published_documents(con: duckdb.DuckDBPyConnection, directory: str) -> pl.DataFrame:
    """What `directory` holds by the record: invoice_id, json_bytes, html_bytes (null: not recorded)."""
    return frame(con, "select invoice_id, json_bytes, html_bytes from billing.published_documents "
                      "where directory = ?", [directory])


def record_published(con: duckdb.DuckDBPyConnection, directory: str, written: pl.DataFrame,
                     removed: list[str]) -> None:
    """What the invoices directory now holds (invoice_id, digest, is_final, json_bytes, html_bytes),
    so the next run writes only what changed."""
    con.execute("begin transaction")
    ids = written["invoice_id"].to_list() + removed
    con.execute("delete from billing.published_documents where directory = ? "
                "and invoice_id in (select unnest(?::varchar[]))", [directory, ids])
    insert_rows(con, "billing.published_documents", written.select(
        pl.lit(directory).alias("directory"), "invoice_id", "digest", "is_final", "json_bytes", "html_bytes"))
    con.execute("commit")


# the folder times of each kind of file: the JSON and HTML a run publishes, the PDFs `tally pdfs` renders
FOLDER_TABLES = {"documents": "billing.published_folders", "pdfs": "billing.rendered_pdf_folders"}


def published_folders(con: duckdb.DuckDBPyConnection, directory: str, files: str = "documents") -> dict[str, int]:
    """Each account folder of `directory` whose files (FOLDER_TABLES) a pass last knew: its
    modification time then."""
    return dict(con.execute(f"select account_id, mtime_ns from {FOLDER_TABLES[files]} where directory = ?",
                            [directory]).fetchall())


def record_published_folders(con: duckdb.DuckDBPyConnection, directory: str, folders: dict[str, int | None],
                             files: str = "documents") -> None:
    """The modification time of each account folder whose files this pass checked or wrote (None:
    none to vouch for it: the folder is gone, or was modified too recently)."""
    table = FOLDER_TABLES[files]
    con.execute("begin transaction")
    con.execute(f"delete from {table} where directory = ? "
                "and account_id in (select unnest(?::varchar[]))", [directory, sorted(folders)])
    insert_rows(con, table, pl.DataFrame(
        [(directory, account, mtime) for account, mtime in sorted(folders.items()) if mtime is not None],
        schema={"directory": pl.String, "account_id": pl.String, "mtime_ns": pl.Int64}, orient="row"))
    con.execute("commit")


def pdf_stamps(con: duckdb.DuckDBPyConnection, directory: str, rendering: str,
               invoice_ids: list[str] | None = None) -> pl.DataFrame:
    """The documents to have PDFs (drafts and committed finals; invoice_ids: only those): invoice_id,
    the digest of what their PDF is rendered from (a final's JSON; a draft's JSON and `rendering`,
    the locale and template: invoicing/pdf.py), and the digest and size of the PDF last rendered
    to `directory` (null when none was). A final whose PDF was rendered as final is not read again:
    its recorded digest stands."""
    return frame(con, """
        with stamps as (
            select i.invoice_id, i.document_json, i.status, r.document_digest, r.pdf_bytes,
                   i.status = 'final' and coalesce(r.from_final, false) as settled
            from billing.invoices as i
            left join billing.rendered_pdfs as r on r.directory = ? and r.invoice_id = i.invoice_id
            where (i.status = 'draft' or i.is_committed)
              and (?::varchar[] is null or i.invoice_id in (select unnest(?::varchar[])))
        )
        select invoice_id,
               case when settled then document_digest
                    else md5(document_json || case when status = 'draft' then ? else '' end) end as digest,
               document_digest as rendered_digest, pdf_bytes
        from stamps
        order by invoice_id""", [directory, invoice_ids, invoice_ids, rendering])


def documents_without_pdf(con: duckdb.DuckDBPyConnection, directory: str) -> int:
    """How many documents have no PDF in `directory`, or a final's still rendered from its draft."""
    return scalar(con, """
        select count(*) from billing.invoices as i
        left join billing.rendered_pdfs as r on r.directory = ? and r.invoice_id = i.invoice_id
        where (i.status = 'draft' or i.is_committed)
          and (r.invoice_id is null or (i.status = 'final' and not r.from_final))""", [directory])


def document_jsons(con: duckdb.DuckDBPyConnection, invoice_ids: list[str]):
    """(invoice_id, json) of some invoices, streamed in batches: never all documents at once."""
    cursor = con.execute("select invoice_id, document_json from billing.invoices "
                         "where invoice_id in (select unnest(?::varchar[])) order by invoice_id", [invoice_ids])
    while batch := cursor.fetchmany(2_000):
        yield from batch


def rendered_pdf_ids(con: duckdb.DuckDBPyConnection, directory: str) -> set[str]:
    return {row[0] for row in con.execute("select invoice_id from billing.rendered_pdfs where directory = ?",
                                          [directory]).fetchall()}


def record_rendered_pdfs(con: duckdb.DuckDBPyConnection, directory: str, rendered: pl.DataFrame,
                         removed: list[str]) -> None:
    """The PDFs `directory` now holds (invoice_id, digest, pdf_bytes), so the next run renders only what changed."""
    ids = rendered["invoice_id"].to_list() + removed
    con.execute("begin transaction")
    con.execute("delete from billing.rendered_pdfs where directory = ? "
                "and invoice_id in (select unnest(?::varchar[]))", [directory, ids])
    con.register("rendered_rows", rendered.to_arrow())
    try:
        # each was rendered from its invoice's current document, final or draft
        con.execute("insert into billing.rendered_pdfs select ?, r.invoice_id, r.digest, r.pdf_bytes, "
                    "i.status = 'final' from rendered_rows as r join billing.invoices as i using (invoice_id)",
                    [directory])
    finally:
        con.unregister("rendered_rows")
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


class VoidRefused(ValueError):
    """`tally void` named no invoice that can be voided."""


def check_voidable(con: duckdb.DuckDBPyConnection, reference: str) -> tuple[str, str]:
    """(invoice_id, invoice_number) of the final invoice a void names (by number, or by id), or
    VoidRefused saying why it cannot be voided. Reads only."""
    found = con.execute("select invoice_id, invoice_number, kind, status from billing.invoices "
                        "where (invoice_number = ? or invoice_id = ?) and (status = 'draft' or is_committed)",
                        [reference, reference]).fetchall()
    if not found:
        raise VoidRefused(f"no invoice {reference}: nothing to void")
    invoice_id, number, kind, status = found[0]
    if status == "draft":
        raise VoidRefused(f"{reference} is a draft: only a final invoice can be voided (a draft changes with "
                          "every run until it is final)")
    if kind in ("credit_note", "debit_note"):
        raise VoidRefused(f"{number} is a {kind.replace('_', ' ')}: only an invoice can be voided")
    voided_by = scalar(con, "select invoice_number from billing.invoices where kind = 'credit_note' and "
                            "adjustment_cause = 'void' and adjusts_invoice_id = ? and is_committed", [invoice_id])
    if voided_by is not None:
        raise VoidRefused(f"{number} is already void (credit note {voided_by})")
    return invoice_id, number


def request_void(con: duckdb.DuckDBPyConnection, invoice_id: str, invoice_number: str, reason: str) -> None:
    """Ask the next run to void an invoice (asking again replaces the reason)."""
    con.execute("begin transaction")
    con.execute("delete from billing.void_requests where invoice_id = ?", [invoice_id])
    con.execute("insert into billing.void_requests values (?, ?, ?, now())", [invoice_id, invoice_number, reason])
    con.execute("commit")


def withdraw_void(con: duckdb.DuckDBPyConnection, invoice_id: str) -> None:
    con.execute("delete from billing.void_requests where invoice_id = ?", [invoice_id])


def void_outcome(con: duckdb.DuckDBPyConnection, invoice_id: str) -> tuple[str, str | None] | None:
    """(credit note number, number of the invoice issued in its place or None) of a carried-out
    void, or None while it waits."""
    note = scalar(con, "select invoice_number from billing.invoices where kind = 'credit_note' and "
                       "adjustment_cause = 'void' and adjusts_invoice_id = ? and is_committed", [invoice_id])
    if note is None:
        return None
    return note, scalar(con, "select invoice_number from billing.invoices where replaces_invoice_id = ? "
                             "and is_committed", [invoice_id])


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
