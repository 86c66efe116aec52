"""Warehouse reads shared by rating and invoicing: which invoices a run is about."""
from __future__ import annotations

import duckdb
import polars as pl

from dagster_project.catalog import Catalog
from dagster_project.invoicing.billing import BillingRange, invoices_due
from dagster_project.warehouse import frame


def stored_invoices(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return frame(con, "select invoice_id, status, numbering_period, invoice_sequence, billing_month "
                       "from billing.invoices")


def closed_meter_usage(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Meter quantities of closed cycles: what rating prices and what pricing rules read."""
    return frame(con, "select cycle_id, meter_name, quantity, event_count from marts.fct_meter_usage "
                      "where is_closed")


def load_invoices_due(con: duckdb.DuckDBPyConnection, catalog: Catalog, span: BillingRange) -> pl.LazyFrame:
    cycles = frame(con, "select * from marts.fct_billing_cycles")
    accounts = frame(con, "select account_id, customer_id, tax_rate from marts.dim_accounts")
    return invoices_due(catalog, span, cycles, accounts, stored_invoices(con))


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    """Insert a frame's rows into a table by column name."""
    if frame.is_empty():
        return
    con.register("frame_rows", frame.to_arrow())
    try:
        columns = ", ".join(f'"{c}"' for c in frame.columns)
        con.execute(f"insert into {table} ({columns}) select {columns} from frame_rows")
    finally:
        con.unregister("frame_rows")
