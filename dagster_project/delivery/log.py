"""billing.delivery_actions, the append-only log of delivery, and the documents it has yet to deliver.

Every row is written, and committed, on its own: the 'sending' row of an attempt is on disk
before the document leaves, so a process that dies between the send and its outcome leaves
'sending' as the last word on that document and channel, for the next run to find.
"""
from __future__ import annotations

from dataclasses import astuple, dataclass
from datetime import date, datetime

import duckdb

from dagster_project.delivery.channels import Document

STATUSES = ("sending", "delivered", "failed", "skipped")


@dataclass(frozen=True)
class Action:
    run_id: str
    invoice_id: str
    invoice_number: str
    channel: str
    idempotency_key: str
    attempt: int
    status: str
    recipient: str | None
    response: str | None
    error: str | None
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class ChannelState:
    """What the log says about one document and channel."""

    last_attempt: int
    last_status: str        # of the last attempt: its outcome, or 'sending' when it has none
    failures: int
    last_error: str | None


@dataclass(frozen=True)
class Candidate:
    """A document not yet delivered through a channel (state is None: never tried)."""

    document: Document
    channel: str
    state: ChannelState | None


def record(con: duckdb.DuckDBPyConnection, action: Action) -> None:
    con.execute("insert into billing.delivery_actions (run_id, invoice_id, invoice_number, channel, idempotency_key, "
                "attempt, status, recipient, response, error, started_at, finished_at) "
                "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", list(astuple(action)))


def candidates(con: duckdb.DuckDBPyConnection, channels: list[str], issued_from: date | None) -> list[Candidate]:
    """Every committed final invoice and note issued from issued_from on (drafts never), times each
    channel, that the channel has not delivered; in issue order. The customer's address is today's."""
    rows = con.execute("""
        with states as (
            select
                invoice_id,
                channel,
                max(attempt) as last_attempt,
                -- an attempt's outcome comes after its 'sending' row
                arg_max(status, attempt * 2 + (status <> 'sending')::integer) as last_status,
                count(*) filter (where status = 'failed') as failures,
                arg_max(error, attempt * 2 + (status <> 'sending')::integer) as last_error
            from billing.delivery_actions
            group by invoice_id, channel
        ),

        channels as (
            select unnest(?::varchar[]) as channel
        )

        select
            invoices.invoice_id, invoices.invoice_number, invoices.kind, invoices.customer_id,
            customers.customer_name, customers.email, invoices.issue_date, invoices.period_start_date,
            invoices.period_end_date, invoices.currency, invoices.total_amount, invoices.amount_due_amount,
            channels.channel, states.last_attempt, states.last_status, states.failures, states.last_error
        from billing.invoices as invoices
        cross join channels
        left join marts.dim_customers as customers on customers.customer_id = invoices.customer_id
        left join states on states.invoice_id = invoices.invoice_id and states.channel = channels.channel
        where invoices.status = 'final' and invoices.is_committed and invoices.invoice_number is not null
          and invoices.issue_date >= coalesce(?::date, invoices.issue_date)
          and states.last_status is distinct from 'delivered'
        order by invoices.issue_date, invoices.invoice_number, channels.channel""",
                       [channels, issued_from]).fetchall()
    return [Candidate(Document(*row[:12]), row[12], ChannelState(*row[13:]) if row[13] is not None else None)
            for row in rows]


def document_json(con: duckdb.DuckDBPyConnection, invoice_id: str) -> str:
    """The published JSON of a document."""
    return con.execute("select document_json from billing.invoices where invoice_id = ?", [invoice_id]).fetchall()[0][0]
