"""Publish invoice documents under TALLY_INVOICES_DIR as <account_id>/<period_start>_<kind>.json|.html.

Files are written only when their bytes change, and a file of an invoice that no longer exists
(a draft whose cycle went away) is removed, so the directory mirrors billing.invoices.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SUFFIXES = (".json", ".html")


@dataclass(frozen=True)
class PublishReport:
    written: int
    unchanged: int
    removed: int


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


def publish(invoices_dir: Path, documents: list[tuple[str, str, str]], existing_ids: set[str],
            on_document=None) -> PublishReport:
    """Write documents and remove the files of invoices not in existing_ids.

    documents: (invoice_id, json text, html text), invoice_id being <account_id>/<period_start>_<kind>;
    existing_ids: every invoice id in the warehouse (documents may cover only some billing months).
    """
    invoices_dir.mkdir(parents=True, exist_ok=True)
    written = unchanged = 0
    for invoice_id, json_text, html_text in documents:
        for suffix, text in ((".json", json_text), (".html", html_text)):
            path = document_path(invoices_dir, invoice_id, suffix)
            data = text.encode("utf-8")
            if path.exists() and path.read_bytes() == data:
                unchanged += 1
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(path.name + ".tmp")
            temporary.write_bytes(data)
            temporary.replace(path)
            written += 1
        if on_document is not None:
            on_document()
    removed = 0
    for path in sorted(invoices_dir.glob("*/*")):
        invoice_id = path.relative_to(invoices_dir).with_suffix("").as_posix()
        if path.suffix in SUFFIXES and invoice_id not in existing_ids:
            path.unlink()
            removed += 1
    return PublishReport(written=written, unchanged=unchanged, removed=removed)
