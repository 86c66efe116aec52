"""A delivery run: what is due through which channel, sent one by one, every action logged.

What is due, per document and channel, follows from the log alone:
  never tried                 send, attempt 1
  'sending' last (the process died before it could log the outcome)
                              send again with the same idempotency key; the receiver drops it
                              if the first one arrived
  'failed' last               send again, until it failed max_attempts times; after that only
                              when asked (`tally deliver --retry`)
  'skipped' last              send once the reason is gone (the customer has an address now)
  'delivered'                 never again
"""
from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from dagster_project.catalog.models import BillingSettings
from dagster_project.delivery import log
from dagster_project.delivery.channels import (
    ChannelUnavailable,
    DeliveryFailed,
    Document,
    EmailChannel,
    WebhookChannel,
    idempotency_key,
)

Channel = EmailChannel | WebhookChannel


@dataclass(frozen=True)
class Due:
    document: Document
    channel: str
    attempt: int
    skip_reason: str | None     # log 'skipped' with it instead of sending

    @property
    def key(self) -> str:
        return idempotency_key(self.document.invoice_number, self.channel)


@dataclass(frozen=True)
class Worklist:
    channels: dict[str, Channel]
    due: list[Due]


@dataclass(frozen=True)
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0           # not tried: their channel could not be reached in this run
    unavailable: tuple[str, ...] = ()   # why, per channel

    def summary(self) -> str:
        parts = [f"{self.delivered:,} delivered", f"{self.failed:,} failed", f"{self.skipped:,} skipped"]
        if self.deferred:
            parts.append(f"{self.deferred:,} left for the next run ({'; '.join(self.unavailable)})")
        return ", ".join(parts)


@dataclass(frozen=True)
class Undelivered:
    invoice_id: str
    invoice_number: str
    channel: str
    failures: int
    last_status: str | None     # None: never tried
    last_error: str | None
    gave_up: bool               # failed max_attempts times: runs no longer retry it


def open_channels(billing: BillingSettings, invoices_dir: Path,
                  environ: Mapping[str, str] | None = None) -> dict[str, Channel]:
    """The configured channels; none configured, nothing is ever sent. They connect when first used."""
    environ = os.environ if environ is None else environ
    settings = billing.delivery
    channels: dict[str, Channel] = {}
    if settings.email is not None:
        channels["email"] = EmailChannel(settings.email, billing.issuer.name, invoices_dir, environ)
    if settings.webhook is not None:
        channels["webhook"] = WebhookChannel(settings.webhook, environ)
    return channels


def worklist(con: duckdb.DuckDBPyConnection, billing: BillingSettings, invoices_dir: Path,
             retry_exhausted: bool = False, environ: Mapping[str, str] | None = None) -> Worklist:
    """What is due now (see the module's docstring); retry_exhausted also retries what failed max_attempts times."""
    channels = open_channels(billing, invoices_dir, environ)
    if not channels:
        return Worklist(channels, [])
    settings = billing.delivery
    due = []
    for candidate in log.candidates(con, list(channels), settings.issued_from):
        state = candidate.state
        if _gave_up(state, settings.max_attempts) and not retry_exhausted:
            continue
        reason = channels[candidate.channel].undeliverable(candidate.document)
        if reason is not None and state is not None and state.last_status == "skipped":
            continue  # logged once; nothing changed since
        due.append(Due(candidate.document, candidate.channel, state.last_attempt + 1 if state else 1, reason))
    return Worklist(channels, due)


def deliver(con: duckdb.DuckDBPyConnection, work: Worklist, run_id: str,
            on_delivery: Callable[[int], None] | None = None) -> DeliveryReport:
    """Send what is due, logging 'sending' before each send and its outcome after. Never raises for
    a delivery that goes wrong: it is logged as failed and retried by a later run."""
    counts: Counter[str] = Counter()
    unavailable: dict[str, str] = {}
    texts: tuple[str, str] | None = None   # the current document's JSON, shared by its channels
    try:
        for due in work.due:
            channel = work.channels[due.channel]
            started = _now()
            if due.skip_reason is not None:
                log.record(con, _action(run_id, due, channel, "skipped", started, started, error=due.skip_reason))
                counts["skipped"] += 1
            elif due.channel in unavailable:
                counts["deferred"] += 1
            else:
                invoice_id = due.document.invoice_id
                if texts is None or texts[0] != invoice_id:
                    texts = (invoice_id, log.document_json(con, invoice_id))
                log.record(con, _action(run_id, due, channel, "sending", started))
                outcome = _send(channel, due, texts[1])
                if outcome.status == "failed" and outcome.unavailable:
                    unavailable[due.channel] = f"{due.channel}: {outcome.error}"
                log.record(con, _action(run_id, due, channel, outcome.status, started, _now(),
                                        response=outcome.response, error=outcome.error))
                counts[outcome.status] += 1
            if on_delivery is not None:
                on_delivery(1)
    finally:
        for channel in work.channels.values():
            channel.close()
    return DeliveryReport(counts["delivered"], counts["failed"], counts["skipped"], counts["deferred"],
                          tuple(unavailable.values()))


@dataclass(frozen=True)
class _Outcome:
    status: str                 # delivered | failed
    response: str | None = None
    error: str | None = None
    unavailable: bool = False


def _send(channel: Channel, due: Due, json_text: str) -> _Outcome:
    try:
        response = channel.send(due.document, due.key, json_text)
    except DeliveryFailed as exc:
        return _Outcome("failed", error=str(exc), unavailable=isinstance(exc, ChannelUnavailable))
    except Exception as exc:  # a fault in one send is logged and retried; it must not stop the others
        return _Outcome("failed", error=f"{type(exc).__name__}: {exc}")
    return _Outcome("delivered", response=response)


def _action(run_id: str, due: Due, channel: Channel, status: str, started: datetime,
            finished: datetime | None = None, response: str | None = None, error: str | None = None) -> log.Action:
    document = due.document
    return log.Action(run_id, document.invoice_id, document.invoice_number, due.channel, due.key, due.attempt,
                      status, channel.recipient(document) or None, response, error, started, finished)


def undelivered(con: duckdb.DuckDBPyConnection, billing: BillingSettings, invoices_dir: Path) -> list[Undelivered]:
    """Deliveries not done through the configured channels: failed, interrupted or never tried (a
    document skipped for a reason, such as a customer without an address, is not among them)."""
    channels = open_channels(billing, invoices_dir, environ={})
    if not channels:
        return []
    found = []
    for candidate in log.candidates(con, list(channels), billing.delivery.issued_from):
        state = candidate.state
        if channels[candidate.channel].undeliverable(candidate.document) is not None:
            continue
        found.append(Undelivered(
            candidate.document.invoice_id, candidate.document.invoice_number, candidate.channel,
            state.failures if state else 0, state.last_status if state else None,
            state.last_error if state else None, _gave_up(state, billing.delivery.max_attempts)))
    return found


def _gave_up(state: log.ChannelState | None, max_attempts: int) -> bool:
    return state is not None and state.last_status == "failed" and state.failures >= max_attempts


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
