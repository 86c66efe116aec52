"""Publish invoice documents under TALLY_INVOICES_DIR as <account_id>/<period_start>_<kind>.json|.html.

The JSON is the stored document, written as it is; the HTML is rendered from it here, in worker
processes when there are many, and this process writes both files. Files are written only when
their document changed (billing.published_documents records what each directory holds, with the
files' sizes), and the files of an invoice that no longer exists (a draft whose cycle went away)
are removed, so the directory mirrors billing.invoices. An account folder whose modification time
is the one recorded when a run last knew all its files (billing.published_folders) holds them
still: its files are not checked one by one. A daily run checked two files of every document of
every month, 2.4M a year at 100k accounts; it now checks a folder per account.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import jinja2
import orjson
import polars as pl

from dagster_project.invoicing.documents import render_html, template_environment
from dagster_project.parallel import map_in_processes, worker_count

FileSizes = dict[str, str]  # the suffix of each file of a document: the column of its recorded size
DOCUMENT_FILES: FileSizes = {".json": "json_bytes", ".html": "html_bytes"}
SUFFIXES = tuple(DOCUMENT_FILES)


@dataclass(frozen=True)
class PublishReport:
    written: int                # files
    unchanged: int              # files
    removed: int                # documents whose files were removed
    rewritten: pl.DataFrame     # invoice_id, digest, is_final, json_bytes, html_bytes of the documents written
    removed_ids: list[str]
    folders: dict[str, int | None]  # account folder: its modification time, for what it now holds (None: gone)


class UnsafePath(ValueError):
    """An invoice id that would put a file outside the invoices directory."""


def document_path(invoices_dir: Path, invoice_id: str, suffix: str) -> Path:
    """The file of an invoice document, refusing any id that would leave the invoices directory
    (account ids are checked when reference data loads; this is the last line of defence). A
    check of the id's text, not of the file system: it runs for every document of every run."""
    _check_id(invoices_dir, invoice_id)
    return invoices_dir / f"{invoice_id}{suffix}"


def _check_id(invoices_dir: Path, invoice_id: str) -> None:
    account, _, name = invoice_id.partition("/")
    if ("\x00" in invoice_id or not account or not name or "/" in name or "\\" in invoice_id
            or account in (".", "..") or name in (".", "..")):
        raise UnsafePath(f"invoice id {invoice_id!r} would be written outside {invoices_dir}")


def _account_of(invoice_id: str) -> str:
    """The account folder a document's files are in: its id is `<account>/<name>`."""
    return invoice_id.partition("/")[0]


def _accounts_of(invoice_ids: pl.Series) -> pl.Series:
    """_account_of over a column of ids."""
    return invoice_ids.str.extract(r"^([^/]*)/", 1)


def check_paths(invoices_dir: Path, invoice_ids) -> None:
    """Every document can be written, inside the invoices directory: checked before a run commits."""
    for invoice_id in invoice_ids:
        _check_id(invoices_dir, invoice_id)
    try:
        invoices_dir.mkdir(parents=True, exist_ok=True)
        probe = invoices_dir / ".tally-write-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UnsafePath(f"cannot write invoices to {invoices_dir}: {exc.strerror or exc}") from None


def publish(invoices_dir: Path, stamps: pl.DataFrame, texts: Callable[[list[str]], Iterable[tuple[str, str]]],
            gone_ids: list[str], covers_every_invoice: bool, template_dir: Path | None, locale: str,
            recorded_folders: dict[str, int] | None = None, settled_ns: int | None = None,
            on_document: Callable[[int], None] | None = None) -> PublishReport:
    """Write the documents that changed and remove the files of the documents in gone_ids.

    stamps: one row per document of the billing months (invoice_id, digest, is_final, and what was
    last written to this directory: published_digest, json_bytes, html_bytes); a document is
    written when its digest changed or its files are missing or of another size. texts(ids) yields
    (invoice_id, JSON) of the documents to write: the JSON is written as it is, the HTML rendered
    from it (template_dir's invoice.html or the packaged one, in `locale`). gone_ids: the documents
    whose invoice is gone (billing_store.gone_documents; in a directory with nothing recorded,
    documents_on_disk less every invoice id). recorded_folders: the modification time of each
    account folder when a run last knew all its files (see documents_in_place). The folders written
    to are checked again once written, so that the next run vouches for them too. Folder times are
    returned to be recorded only when stamps cover every invoice: after a backfill of some months,
    a folder also holds files it did not check. settled_ns: see documents_in_place.
    """
    invoices_dir.mkdir(parents=True, exist_ok=True)
    removed_ids = sorted(gone_ids)
    in_place, checked_folders = documents_in_place(
        invoices_dir, stamps.filter(pl.col("published_digest") == pl.col("digest")), recorded_folders or {},
        settled_ns)
    stale = stamps.filter(~pl.col("invoice_id").is_in(sorted(in_place)))
    if on_document is not None:
        on_document(stamps.height - stale.height)
    chunks = _chunks(texts(stale["invoice_id"].to_list()))
    if stale.height < PARALLEL_FROM or worker_count() < 2:
        _start_renderer(template_dir, locale)
        rendered = map(_render_documents, chunks)
    else:
        rendered = map_in_processes(_render_documents, chunks, initializer=_start_renderer,
                                    initargs=(template_dir, locale))
    sizes = []
    for documents in rendered:
        sizes += _write_documents(invoices_dir, documents)
        if on_document is not None:
            on_document(len(documents))
    for invoice_id in removed_ids:
        for suffix in SUFFIXES:
            (invoices_dir / f"{invoice_id}{suffix}").unlink(missing_ok=True)
    written = pl.DataFrame(sizes, schema={"invoice_id": pl.String, "json_bytes": pl.Int64, "html_bytes": pl.Int64},
                           orient="row")
    folders = {}
    if covers_every_invoice:
        folders = folders_as_written(invoices_dir, stamps.filter(pl.col("invoice_id").is_in(sorted(in_place))),
                                     written, removed_ids, checked_folders, settled_ns)
    rewritten = stale.select("invoice_id", "digest", "is_final").join(written, on="invoice_id", how="inner")
    return PublishReport(written=2 * len(sizes), unchanged=2 * (stamps.height - stale.height),
                         removed=len(removed_ids), rewritten=rewritten, removed_ids=removed_ids, folders=folders)


def documents_in_place(invoices_dir: Path, records: pl.DataFrame, folders: dict[str, int],
                       settled_ns: int | None = None, files: FileSizes = DOCUMENT_FILES
                       ) -> tuple[set[str], dict[str, int | None]]:
    """The documents (invoice_id and a size column for each of `files`: json_bytes and html_bytes,
    or the PDFs' pdf_bytes) whose files are all there with the sizes recorded (a null size: the
    file need only exist), and the modification time of each folder whose files were checked one
    by one, taken before they were (None: no such folder, or one modified too recently to vouch
    for what it holds).

    A document whose account folder has the modification time in `folders` is there: creating,
    removing or replacing a file in a folder changes its time, so the files are those a run left.
    (A file rewritten in place, by a program that neither replaces nor renames it, is not seen.)
    Other folders' files are checked with one stat each; no file is read. Paths are plain strings:
    a Path per file cost more than the stat.

    A folder's time is taken before its files are checked, so a change after the check changes it.
    A change within the same tick of the file system's clock would not: a folder modified less than
    settled_ns (SETTLED_NS, far more than a tick) before it was looked at has no time returned, and
    the next run checks its files again."""
    base = os.fspath(invoices_dir)
    settled_before = time.time_ns() - (SETTLED_NS if settled_ns is None else settled_ns)
    accounts = _accounts_of(records["invoice_id"])
    checked: dict[str, int | None] = {}
    for account in accounts.unique().to_list():
        mtime = _modified(f"{base}/{account}")
        if mtime is None or folders.get(account) != mtime:
            checked[account] = mtime if mtime is not None and mtime < settled_before else None
    vouched = ~accounts.is_in(list(checked))
    present = set(records.filter(vouched)["invoice_id"].to_list())
    for invoice_id, *sizes in records.filter(~vouched).select("invoice_id", *files.values()).iter_rows():
        try:
            if all(size in (None, os.stat(f"{base}/{invoice_id}{suffix}").st_size)
                   for suffix, size in zip(files, sizes, strict=True)):
                present.add(invoice_id)
        except FileNotFoundError:
            pass
    return present, checked


def folders_as_written(invoices_dir: Path, in_place: pl.DataFrame, written: pl.DataFrame, removed_ids: list[str],
                       checked_folders: dict[str, int | None], settled_ns: int | None = None,
                       files: FileSizes = DOCUMENT_FILES) -> dict[str, int | None]:
    """The folder times to record after a pass over every document: those documents_in_place
    returned (checked_folders), and for each folder this pass wrote to or removed from, its time
    once its files are checked again, so that the next pass vouches for it too; a file someone
    removed meanwhile is seen. in_place and written: the documents found in place and those
    written (invoice_id and the size column of each of `files`), which the folders now hold."""
    columns = ["invoice_id", *files.values()]
    changed = {_account_of(invoice_id) for invoice_id in [*written["invoice_id"], *removed_ids]}
    held = pl.concat([in_place.select(columns), written.select(columns)])
    held = held.filter(_accounts_of(held["invoice_id"]).is_in(sorted(changed)))
    present, rechecked = documents_in_place(invoices_dir, held, {}, settled_ns, files)
    not_as_written = {_account_of(invoice_id) for invoice_id in set(held["invoice_id"]) - present}
    return {**checked_folders, **dict.fromkeys(changed), **rechecked, **dict.fromkeys(not_as_written)}


def _modified(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return None


# a folder's time vouches for its files only once it is this old (documents_in_place); the clock
# that stamps files ticks every 1-10 ms
SETTLED_NS = 100_000_000

# Below this many documents one process renders them all; above it, one process per core (starting
# the workers costs about a second, a document's HTML about 0.25 ms). The files are written by this
# process alone: on ext4, processes creating files in one tree at once wait on each other, and
# two of them wrote 100k documents more slowly than one.
PARALLEL_FROM = 2000
_CHUNK = 500
_RENDERER: tuple[jinja2.Environment, str] | None = None


def _chunks(texts: Iterable[tuple[str, str]]):
    chunk = []
    for invoice_id, json_text in texts:
        chunk.append((invoice_id, json_text))
        if len(chunk) == _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _start_renderer(template_dir: Path | None, locale: str) -> None:
    global _RENDERER
    _RENDERER = (template_environment(template_dir), locale)


def _render_documents(chunk: list[tuple[str, str]]) -> list[tuple[str, bytes, bytes]]:
    """(invoice_id, JSON, HTML) of each document, as the bytes its two files hold."""
    environment, locale = _RENDERER
    rendered = []
    for invoice_id, json_text in chunk:
        json_bytes = json_text.encode("utf-8")
        html = render_html(orjson.loads(json_bytes), environment, locale)
        rendered.append((invoice_id, json_bytes, html.encode("utf-8")))
    return rendered


def _write_documents(invoices_dir: Path, documents: list[tuple[str, bytes, bytes]]) -> list[tuple[str, int, int]]:
    """Write each document's two files; (invoice_id, bytes of each) of what was written."""
    base = os.fspath(invoices_dir)
    written = []
    folders = set()
    for invoice_id, json_bytes, html_bytes in documents:
        _check_id(invoices_dir, invoice_id)
        account = _account_of(invoice_id)
        if account not in folders:
            os.makedirs(f"{base}/{account}", exist_ok=True)
            folders.add(account)
        write_atomically(f"{base}/{invoice_id}.json", json_bytes)
        write_atomically(f"{base}/{invoice_id}.html", html_bytes)
        written.append((invoice_id, len(json_bytes), len(html_bytes)))
    return written


def documents_on_disk(invoices_dir: Path) -> set[str]:
    """The documents a directory holds files of. For a directory with no record of what it holds,
    listed before anything is written to it: listing it afterwards read back the 200k files a first
    run at 100k accounts had just written, 1.5 s."""
    ids = set()
    if not invoices_dir.is_dir():
        return ids
    for account in os.scandir(invoices_dir):
        if account.is_dir(follow_symlinks=False):
            for entry in os.scandir(account.path):
                stem, dot, suffix = entry.name.rpartition(".")
                if dot and f".{suffix}" in SUFFIXES:
                    ids.add(f"{account.name}/{stem}")
    return ids


def write_atomically(path: Path | str, data: bytes) -> None:
    """Atomically: a reader sees the old file or the new one, never half of one. The folder exists.
    Plain system calls: this runs twice for every document of a run."""
    temporary = f"{path}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view):]
    finally:
        os.close(descriptor)
    os.replace(temporary, path)
