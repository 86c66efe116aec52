"""Publish invoice documents under TALLY_INVOICES_DIR as <account_id>/<period_start>_<kind>.json|.html.

Files are written only when their document changed (billing.published_documents records what
each directory holds), and the files of an invoice that no longer exists (a draft whose cycle went
away) are removed, so the directory mirrors billing.invoices.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

SUFFIXES = (".json", ".html")


@dataclass(frozen=True)
class PublishReport:
    written: int                # files
    unchanged: int              # files
    removed: int                # documents whose files were removed
    rewritten: pl.DataFrame     # invoice_id, digest, is_final of the documents written
    removed_ids: list[str]


class UnsafePath(ValueError):
    """An invoice id that would put a file outside the invoices directory."""


def document_path(invoices_dir: Path, invoice_id: str, suffix: str) -> Path:
    """The file of an invoice document, refusing any id that would leave the invoices directory
    (account ids are checked when reference data loads; this is the last line of defence). A
    check of the id's text, not of the file system: it runs for every document of every run."""
    account, _, name = invoice_id.partition("/")
    if ("\x00" in invoice_id or not account or not name or "/" in name or "\\" in invoice_id
            or account in (".", "..") or name in (".", "..")):
        raise UnsafePath(f"invoice id {invoice_id!r} would be written outside {invoices_dir}")
    return invoices_dir / account / f"{name}{suffix}"


def check_paths(invoices_dir: Path, invoice_ids) -> None:
    """Every document can be written, inside the invoices directory: checked before a run commits."""
    for invoice_id in invoice_ids:
        document_path(invoices_dir, invoice_id, ".json")
    try:
        invoices_dir.mkdir(parents=True, exist_ok=True)
        probe = invoices_dir / ".tally-write-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UnsafePath(f"cannot write invoices to {invoices_dir}: {exc.strerror or exc}") from None


def publish(invoices_dir: Path, stamps: pl.DataFrame, texts: Callable[[list[str]], Iterable[tuple[str, str, str]]],
            existing_ids: set[str], recorded_ids: set[str],
            on_document: Callable[[int], None] | None = None) -> PublishReport:
    """Write the documents that changed and remove the files of invoices not in existing_ids.

    stamps: one row per document of the billing months (invoice_id, digest, json_bytes, html_bytes,
    published_digest: what was last written to this directory, is_final); a document is rewritten when its
    digest changed or its files are missing or of another size (sizes are null for published
    finals: their files need only exist), so a run over 100k unchanged finals reads no file.
    texts(ids) yields (invoice_id, json, html) of the documents to write. existing_ids: every
    invoice id in the warehouse (stamps may cover only some billing months); recorded_ids: the
    documents recorded as published in this directory, whose files go when their invoice is gone
    (a directory with no record yet is listed instead).
    """
    invoices_dir.mkdir(parents=True, exist_ok=True)
    stale = [row["invoice_id"] for row in stamps.iter_rows(named=True) if not _in_place(invoices_dir, row)]
    if on_document is not None:
        on_document(stamps.height - len(stale))
    written = 0
    for invoice_id, json_text, html_text in texts(stale):
        for suffix, text in ((".json", json_text), (".html", html_text)):
            write_atomically(document_path(invoices_dir, invoice_id, suffix), text.encode("utf-8"))
            written += 1
        if on_document is not None:
            on_document(1)
    removed_ids = sorted((recorded_ids if recorded_ids else _ids_on_disk(invoices_dir)) - existing_ids)
    for invoice_id in removed_ids:
        for suffix in SUFFIXES:
            (invoices_dir / f"{invoice_id}{suffix}").unlink(missing_ok=True)
    return PublishReport(written=written, unchanged=2 * (stamps.height - len(stale)), removed=len(removed_ids),
                         rewritten=stamps.filter(pl.col("invoice_id").is_in(stale)).select("invoice_id", "digest",
                                                                                           "is_final"),
                         removed_ids=removed_ids)


def _ids_on_disk(invoices_dir: Path) -> set[str]:
    ids = set()
    for account in os.scandir(invoices_dir):
        if account.is_dir(follow_symlinks=False):
            for entry in os.scandir(account.path):
                stem, dot, suffix = entry.name.rpartition(".")
                if dot and f".{suffix}" in SUFFIXES:
                    ids.add(f"{account.name}/{stem}")
    return ids


def _in_place(invoices_dir: Path, stamp: dict) -> bool:
    """The document was published here with this digest and its files are still there, whole."""
    if stamp["published_digest"] != stamp["digest"]:
        return False
    for suffix, size in ((".json", stamp["json_bytes"]), (".html", stamp["html_bytes"])):
        try:
            if os.stat(invoices_dir / f"{stamp['invoice_id']}{suffix}").st_size != size and size is not None:
                return False
        except FileNotFoundError:
            return False
    return True


def write_atomically(path: Path, data: bytes) -> None:
    """Atomically: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    temporary.replace(path)
