"""The DuckDB warehouse: short-lived connections and the tables Python writes.

DuckDB allows one writing process per file, and dbt runs as a subprocess on the same file, so
every step opens a connection, does its work and closes it (`connect()` is a context manager);
nothing holds a connection while dbt runs.

dbt owns staging/intermediate/marts. Python owns three schemas, created here:
  raw      what was read from TALLY_DATA_DIR (events with file and line, reference CSVs)
  config   the validated pricing catalog, as tables dbt can join
  billing  invoicing state: invoices (final ones are permanent), lines, charges
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

DDL = """
create schema if not exists raw;
create schema if not exists config;
create schema if not exists billing;

create table if not exists raw.event_files (
    file_name varchar primary key,
    batch_id integer not null,
    loaded_at timestamp not null,
    event_count bigint not null
);

create table if not exists raw.events (
    load_seq bigint not null,           -- global ingestion order: batch, file name, line
    batch_id integer not null,
    file_name varchar not null,
    line_number bigint not null,
    event_id varchar,
    schema_name varchar,
    account_id varchar,
    event_timestamp varchar,            -- as sent; parsed (and converted to UTC) in staging
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
    invoice_id varchar primary key,     -- <account_id>/<period_start>_<kind>, as the published file
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
    numbering_period varchar,           -- the sequence an invoice number belongs to (e.g. 2026 when yearly)
    invoice_sequence integer,
    currency varchar not null,
    subtotal_amount decimal(38, 2) not null,
    credits_applied_amount decimal(38, 2) not null,
    custom_charges_amount decimal(38, 2) not null,
    total_amount decimal(38, 2) not null,
    wallet_applied_amount decimal(38, 2) not null,
    amount_due_amount decimal(38, 2) not null,
    finalized_after_batch integer,      -- events loaded in later batches for this cycle are late
    computed_as_of date not null,
    document_json varchar not null,
    document_html varchar not null
);

create table if not exists billing.invoice_lines (
    invoice_id varchar not null,
    line_number integer not null,
    line_type varchar not null,
    billable_item varchar,
    description varchar not null,
    quantity decimal(38, 18),
    amount decimal(38, 2) not null,
    details_json varchar not null
);

create table if not exists billing.invoice_custom_charges (
    invoice_id varchar not null,
    charge_number integer not null,
    charge_name varchar not null,
    rate decimal(38, 18),
    amount decimal(38, 2) not null
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

-- State left by earlier runs that metering needs: which cycles are final, and after which load
-- batch. Events of a final cycle loaded in a later batch are `late` (SPEC 3.2).
create or replace view billing.final_cycles as
select cycle_id, finalized_after_batch
from billing.invoices
where status = 'final' and kind = 'cycle';
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
        yield con
    finally:
        con.close()


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
    con.execute(DDL.replace("{details_type}", details_type))


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(scalar(con, "select count(*) from information_schema.tables where table_schema = ? "
                            "and table_name = ?", [schema, table]))


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    """The single value of a query. Reads the whole result: DuckDB refuses new work on a connection
    whose last result was only partly fetched."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


def frame(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pl.DataFrame:
    """A query's result as a Polars frame (DECIMAL columns stay exact decimals)."""
    return con.sql(sql, params=params or None).pl()
