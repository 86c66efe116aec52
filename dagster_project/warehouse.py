"""The DuckDB warehouse: short-lived connections and the tables Python writes.

DuckDB allows one writing process per file, and dbt runs as a subprocess on the same file, so
every step opens a connection, does its work and closes it (`connect()` is a context manager);
nothing holds a connection while dbt runs.

dbt owns staging/intermediate/marts. Python owns three schemas, created here:
  raw      what was read from TALLY_DATA_DIR (events with file and line, reference CSVs)
  config   the validated pricing catalog, as tables dbt can join
  billing  invoicing state: invoices (final ones are permanent), lines, charges; the delivery log
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from dagster_project.settings import duckdb_settings

DDL_EVENT_FILES = """
create table if not exists raw.event_files (   -- what has been loaded of each file so far
    file_name varchar primary key,
    loaded_bytes bigint not null,       -- the file's first loaded_bytes bytes are loaded ...
    loaded_lines bigint not null,       -- ... holding its first loaded_lines lines
    prefix_sha256 varchar not null,     -- sha256 of those bytes: a change to them is refused
    file_size bigint not null,          -- size and mtime when last seen: unchanged files are not read
    file_mtime_ns bigint not null
);

create table if not exists raw.event_file_loads (   -- one row per file per load batch
    file_name varchar not null,
    batch_id integer not null,
    first_line bigint not null,
    last_line bigint not null,
    byte_start bigint not null,
    byte_end bigint not null,
    loaded_at timestamp not null,
    event_count bigint not null,
    primary key (file_name, batch_id)
);
"""

DDL = """
create schema if not exists raw;
create schema if not exists config;
create schema if not exists billing;
""" + DDL_EVENT_FILES + """

create table if not exists raw.events (
    load_seq bigint not null,           -- global ingestion order: batch, file name, line
    batch_id integer not null,
    file_name varchar not null,
    line_number bigint not null,
    event_id varchar,
    schema_name varchar,
    account_id varchar,
    event_timestamp varchar,            -- as sent; parsed (and converted to UTC) in staging
    event_timestamp_utc timestamp,      -- a typed timestamp (a Parquet TIMESTAMP column) in UTC; the text is then null
    attributes map(varchar, varchar),   -- values as exact decimal text, never through a float
    dimensions map(varchar, varchar),
    parse_error varchar,                -- why the line could not be read as an event, else null
    raw_line varchar,                   -- kept only for lines that could not be read
    is_duplicate boolean not null,
    duplicate_payload_differs boolean not null
);

create table if not exists billing.rated_lines (
    invoice_id varchar not null,
    billing_month date not null,
    line_position integer not null,
    line_type varchar not null,
    billable_item varchar,
    description varchar not null,
    quantity decimal(38, 18),
    amount decimal(38, 18) not null,    -- rounded once, to the currency's minor unit
    details {details_type} not null
);

create table if not exists billing.invoices (
    invoice_id varchar primary key,     -- <account_id>/<period_start>_<kind>[_<number>], as the published file
    account_id varchar not null,
    customer_id varchar,
    price_plan varchar not null,
    kind varchar not null,
    cycle_id varchar,
    cycle_index integer,
    period_start_date date not null,
    period_end_date date not null,
    issue_date date not null,
    billing_month date not null,        -- first day of the issue date's month: the partition
    status varchar not null,
    invoice_number varchar,
    numbering_prefix varchar,           -- the prefix the number was given with (it may change later)
    numbering_period varchar,           -- the sequence an invoice number belongs to (e.g. 2026 when yearly)
    invoice_sequence integer,
    currency varchar not null,
    subtotal_amount decimal(38, 4) not null,
    credits_applied_amount decimal(38, 4) not null,
    custom_charges_amount decimal(38, 4) not null,
    total_amount decimal(38, 4) not null,
    wallet_applied_amount decimal(38, 4) not null,
    amount_due_amount decimal(38, 4) not null,
    finalized_after_batch integer,      -- events loaded in later batches for this cycle are late
    computed_as_of date not null,
    is_committed boolean not null,      -- a final invoice is permanent once its run committed it
    document_json varchar not null,     -- the published JSON; the HTML is rendered from it when published
    adjusts_invoice_id varchar,         -- a credit or debit note: the final invoice it corrects
    replaces_invoice_id varchar,        -- an invoice issued by `tally void`: the voided one
    adjustment_cause varchar,           -- late_events | void, on notes and on invoices issued by a void
    adjustment_reason varchar           -- shown on the document
);

create table if not exists billing.void_requests (   -- `tally void`: processed by the next run
    invoice_id varchar primary key,
    invoice_number varchar not null,
    reason varchar not null,
    requested_at timestamp not null
);

create table if not exists raw.reference_load (   -- what the reference tables were last loaded from
    fingerprint varchar not null,
    summary_json varchar not null       -- the counts that load reported
);

create table if not exists billing.published_documents (   -- what each invoices directory holds
    directory varchar not null,
    invoice_id varchar not null,
    digest varchar not null,            -- md5 of the document's JSON and of what its HTML is rendered with
    is_final boolean not null,          -- written as a committed final: it never changes again
    json_bytes bigint,                  -- the sizes of its files: a missing or damaged file is written again
    html_bytes bigint
);

create table if not exists billing.published_folders (   -- each account folder of an invoices directory
    directory varchar not null,
    account_id varchar not null,
    mtime_ns bigint not null            -- its modification time when a run last knew every file in it
);

create table if not exists billing.rendered_pdf_folders (   -- published_folders, for the PDFs
    directory varchar not null,
    account_id varchar not null,
    mtime_ns bigint not null            -- its modification time when a pass last knew every PDF in it
);

create table if not exists billing.rendered_pdfs (   -- the PDF of each document in each invoices directory
    directory varchar not null,
    invoice_id varchar not null,
    document_digest varchar not null,   -- what it was rendered from (invoicing/pdf.py)
    pdf_bytes bigint not null,          -- its size: a missing or damaged file is rendered again
    from_final boolean not null         -- rendered from a final document, which never changes
);

create table if not exists billing.invoice_lines (
    invoice_id varchar not null,
    line_number integer not null,
    line_type varchar not null,
    billable_item varchar,
    description varchar not null,
    quantity decimal(38, 18),
    amount decimal(38, 4) not null,
    details_json varchar not null
);

create table if not exists billing.invoice_custom_charges (
    invoice_id varchar not null,
    charge_number integer not null,
    charge_name varchar not null,
    rate decimal(38, 18),
    amount decimal(38, 4) not null
);

create table if not exists billing.credit_draws (
    invoice_id varchar not null,
    account_id varchar not null,
    grant_id varchar not null,
    draw_number integer not null,       -- the order in which the invoice drew its grants
    amount decimal(38, 18) not null
);

create table if not exists billing.wallet_draws (   -- final invoices only: drafts draw nothing
    invoice_id varchar not null,
    account_id varchar not null,
    draw_date date not null,
    amount decimal(38, 18) not null
);

create table if not exists billing.pricing_rule_evaluations (
    invoice_id varchar not null,
    rule_name varchar not null,
    rule_order integer not null,
    action_type varchar not null,
    target_item varchar,
    condition_result boolean not null,
    is_applied boolean not null,
    variables_json varchar not null,
    computed_value decimal(38, 18),
    amount_before decimal(38, 18),
    amount_after decimal(38, 18),
    subtotal_before decimal(38, 18) not null,
    subtotal_after decimal(38, 18) not null
);

create table if not exists billing.rating_holds (   -- accounts rating held back in the latest run
    account_id varchar,
    reason varchar
);

create table if not exists raw.reference_problems (   -- the latest run's reference-data problems
    file_name varchar,
    line_number bigint,
    column_name varchar,
    message varchar,
    account_id varchar,                 -- the account the problem holds back, if any
    problem varchar
);

create table if not exists raw.event_load_problems (
    problem varchar,
    is_error boolean                    -- false: a note (an incomplete last line left for later)
);

-- The last successful metering, written after dbt metering succeeded (metering_state.py): the
-- next run meters the batches after through_batch and the accounts whose state changed.
create table if not exists billing.metering_checkpoint (
    run_number integer not null,          -- int_events.metered_run of the rows this run computed
    through_batch integer not null,
    schemas_fingerprint varchar not null, -- event schemas it validated with: a change re-meters all
    horizon_date date not null,           -- cycles were generated through this day
    checkpointed_at timestamp not null,
    code_fingerprint varchar,             -- the metering models' code: a change re-meters all
    plan_fingerprints varchar             -- JSON, each plan's config.price_plans.metering_fingerprint
);

-- This warehouse, told apart from one created in its place (the publication beside it must not
-- take the files it published from the old one for current)
create table if not exists billing.warehouse_identity as select cast(uuid() as varchar) as id;

create table if not exists billing.metering_account_states (
    account_id varchar primary key,
    state_hash varchar not null
);

-- What each dbt node was last built from (defs/dbt/unchanged.py): a node whose inputs match is
-- not built again. Deleted before a build of the node, written after the build succeeded.
create table if not exists billing.dbt_node_builds (
    unique_id varchar not null,
    fingerprint varchar not null,
    definition varchar                  -- a view's: it is created again only when this changes
);

-- Append-only (delivery/): 'sending' is written before a document goes out through a channel and
-- 'delivered' or 'failed' after, so a send whose outcome was never written is found and sent
-- again with the same idempotency key.
create table if not exists billing.delivery_actions (
    run_id varchar not null,            -- the Dagster run that acted
    invoice_id varchar not null,
    invoice_number varchar not null,
    channel varchar not null,           -- email | webhook
    idempotency_key varchar not null,   -- one per document and channel, the same on every attempt
    attempt integer not null,           -- per document and channel, from 1; 'sending' and its outcome share it
    status varchar not null,            -- sending | delivered | failed | skipped
    recipient varchar,                  -- the e-mail addresses, or the URL
    response varchar,                   -- what the receiver answered
    error varchar,                      -- why it failed or was skipped
    started_at timestamp not null,
    finished_at timestamp               -- null while sending
);
"""


def _details_type() -> str:
    from dagster_project.rating.usage import DETAIL_FIELDS

    def sql_type(dtype) -> str:
        if dtype.is_decimal():
            return "decimal(38, 18)"
        if dtype.is_temporal():
            return "date"
        return "integer" if dtype.is_integer() else "varchar"

    fields = ", ".join(f'"{name}" {sql_type(dtype)}' for name, dtype in DETAIL_FIELDS.items())
    return f"struct({fields})[]"


@contextmanager
def connect(path: Path | str, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection that is always closed, with UTC as the session time zone."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        con.execute("set TimeZone = 'UTC'")
        for statement in duckdb_settings(path.resolve()).statements():
            con.execute(statement)
        yield con
    finally:
        con.close()


# Warehouses written by earlier versions are brought up to date in place: final invoices are
# permanent, so a warehouse is never rebuilt to change its shape.
_MIGRATIONS = """
alter table billing.invoices add column if not exists numbering_prefix varchar;
alter table billing.invoices add column if not exists is_committed boolean default true;
alter table billing.invoices add column if not exists adjusts_invoice_id varchar;
alter table billing.invoices add column if not exists replaces_invoice_id varchar;
alter table billing.invoices add column if not exists adjustment_cause varchar;
alter table billing.invoices add column if not exists adjustment_reason varchar;
-- documents' HTML is rendered from their JSON when published, no longer stored
alter table billing.invoices drop column if exists document_html;
"""
# money was DECIMAL(38, 2) before three- and four-digit currencies (KWD, CLF)
_MONEY_COLUMNS = {"invoices": ["subtotal_amount", "credits_applied_amount", "custom_charges_amount", "total_amount",
                               "wallet_applied_amount", "amount_due_amount"],
                  "invoice_lines": ["amount"], "invoice_custom_charges": ["amount"]}


# What earlier runs left that metering reads, copied at the start of a run by the billing_state
# asset (so that dbt's sources are written by an asset of the run, and lineage shows it).
BILLING_STATE_SQL = """
create or replace table billing.final_cycles as   -- cycles made final, after which load batch
select cycle_id, min(finalized_after_batch) as finalized_after_batch   -- the first, if a void reissued it
from billing.invoices
where status = 'final' and kind = 'cycle' and is_committed
group by cycle_id;

create or replace table billing.last_metering_checkpoint as select * from billing.metering_checkpoint;

create or replace table billing.last_metering_account_states as select * from billing.metering_account_states;
"""


def _migrate_event_files(con: duckdb.DuckDBPyConnection) -> None:
    """Before grown files were tracked, raw.event_files had one row per file with its batch."""
    columns = {row[0] for row in con.execute("select column_name from information_schema.columns "
                                             "where table_schema = 'raw' and table_name = 'event_files'").fetchall()}
    if "batch_id" not in columns:
        return
    con.execute("alter table raw.event_files rename to event_files_v1")
    con.execute(DDL_EVENT_FILES)
    con.execute("insert into raw.event_file_loads select file_name, batch_id, 1, event_count, 0, 0, loaded_at, "
                "event_count from raw.event_files_v1")
    # sizes unknown: -1 makes the next run compare the file with its recorded prefix (0 bytes), that
    # is, adopt it as loaded in full (see ingestion/events.py)
    con.execute("insert into raw.event_files select file_name, -1, event_count, '', -1, -1 from raw.event_files_v1")
    con.execute("drop table raw.event_files_v1")


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    details_type = _details_type()
    if table_exists(con, "billing", "rated_lines"):
        # rated lines are recomputed on every run: a new breakdown shape just replaces the table
        current = scalar(con, "select data_type from information_schema.columns where table_schema = 'billing' "
                              "and table_name = 'rated_lines' and column_name = 'details'")
        def normalized(text: str) -> str:
            return text.replace(" ", "").replace('"', "").lower()

        if normalized(current) != normalized(details_type):
            con.execute("drop table billing.rated_lines")
    if table_exists(con, "raw", "event_files"):
        _migrate_event_files(con)
    if table_exists(con, "billing", "invoices"):
        con.execute(_MIGRATIONS)
        for table, column in con.execute(
                "select table_name, column_name from information_schema.columns where table_schema = 'billing' "
                "and data_type = 'DECIMAL(38,2)'").fetchall():
            if column in _MONEY_COLUMNS.get(table, []):
                con.execute(f"alter table billing.{table} alter column {column} type decimal(38, 4)")
    if con.execute("select count(*) from duckdb_views() where schema_name = 'billing' "
                   "and view_name = 'final_cycles'").fetchall()[0][0]:
        con.execute("drop view billing.final_cycles")  # a table since billing_state copies it
    con.execute(DDL.replace("{details_type}", details_type))
    # recorded before finals were told apart: written again once, then known; before sizes were
    # recorded, a file needs only exist
    con.execute("alter table billing.published_documents add column if not exists is_final boolean default false")
    con.execute("alter table billing.published_documents add column if not exists json_bytes bigint")
    con.execute("alter table billing.published_documents add column if not exists html_bytes bigint")
    # a checkpoint written before the metering code was recorded: the next run re-meters all once
    con.execute("alter table billing.metering_checkpoint add column if not exists code_fingerprint varchar")
    # before the plans' fingerprints were recorded: a plan change is metered incrementally once
    con.execute("alter table billing.metering_checkpoint add column if not exists plan_fingerprints varchar")
    # before typed timestamps were kept, a Parquet timestamp was stored as text and parsed back
    con.execute("alter table raw.events add column if not exists event_timestamp_utc timestamp")
    # recorded before views were told apart: each view is created again once
    con.execute("alter table billing.dbt_node_builds add column if not exists definition varchar")


def replace_table(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """Replace a table with the rows of an Arrow table."""
    con.register("incoming_table", table)
    try:
        con.execute(f"create or replace table {name} as select * from incoming_table")
    finally:
        con.unregister("incoming_table")


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(scalar(con, "select count(*) from information_schema.tables where table_schema = ? "
                            "and table_name = ?", [schema, table]))


def quoted_identifier(identifier: str) -> str:
    """A name as a DuckDB identifier, whatever characters it holds."""
    return '"' + identifier.replace('"', '""') + '"'


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    """The single value of a query. Reads the whole result: DuckDB refuses new work on a connection
    whose last result was only partly fetched."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


def frame(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pl.DataFrame:
    """A query's result as a Polars frame (DECIMAL columns stay exact decimals)."""
    return con.sql(sql, params=params or None).pl()
