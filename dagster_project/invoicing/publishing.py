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
    rewritten: pl.DataFrame     # invoice_id, digest of the documents written
    removed_ids: list[str]


class UnsafePath(ValueError):
    """An invoice id that would put a file outside the invoices directory."""


def document_path(invoices_dir: Path, invoice_id: str, suffix: str) -> Path:
    """The file of an invoice document, refusing any id that would leave the invoices directory
    (account ids are checked when reference data loads; this is the last line of defence)."""
    root = invoices_dir.resolve()
    if "\x00" in invoice_id:
        raise UnsafePath(f"invoice id {invoice_id!r} cannot name a file")
    path = (root / f"{invoice_id}{suffix}").resolve()
    if path.parent.parent != root:
        raise UnsafePath(f"invoice id {invoice_id!r} would be written outside {root}")
    return path


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
            existing_ids: set[str], on_document: Callable[[int], None] | None = None) -> PublishReport:
    """Write the documents that changed and remove the files of invoices not in existing_ids.

    stamps: one row per document of the billing months (invoice_id, digest, json_bytes, html_bytes,
    published_digest: what was last written to this directory); a document is rewritten when its
    digest changed or its files are missing or of another size, so a run over 100k unchanged
    finals reads no file. texts(ids) yields (invoice_id, json, html) of the documents to write.
    existing_ids: every invoice id in the warehouse (stamps may cover only some billing months).
    """
    invoices_dir.mkdir(parents=True, exist_ok=True)
    stale = [row["invoice_id"] for row in stamps.iter_rows(named=True) if not _in_place(invoices_dir, row)]
    if on_document is not None:
        on_document(stamps.height - len(stale))
    written = 0
    for invoice_id, json_text, html_text in texts(stale):
        for suffix, text in ((".json", json_text), (".html", html_text)):
            _write(document_path(invoices_dir, invoice_id, suffix), text.encode("utf-8"))
            written += 1
        if on_document is not None:
            on_document(1)
    removed_ids = sorted({path.relative_to(invoices_dir).with_suffix("").as_posix()
                          for path in invoices_dir.glob("*/*") if path.suffix in SUFFIXES} - existing_ids)
    for invoice_id in removed_ids:
        for suffix in SUFFIXES:
            (invoices_dir / f"{invoice_id}{suffix}").unlink(missing_ok=True)
    return PublishReport(written=written, unchanged=2 * (stamps.height - len(stale)), removed=len(removed_ids),
                         rewritten=stamps.filter(pl.col("invoice_id").is_in(stale)).select("invoice_id", "digest"),
                         removed_ids=removed_ids)


def _in_place(invoices_dir: Path, stamp: dict) -> bool:
    """The document was published here with this digest and its files are still there, whole."""
    if stamp["published_digest"] != stamp["digest"]:
        return False
    for suffix, size in ((".json", stamp["json_bytes"]), (".html", stamp["html_bytes"])):
        try:
            if os.stat(invoices_dir / f"{stamp['invoice_id']}{suffix}").st_size != size:
                return False
        except FileNotFoundError:
            return False
    return True


def _write(path: Path, data: bytes) -> None:
    """Atomically: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    temporary.replace(path)
