"""PDFs of invoices and notes: <account_id>/<period_start>_<kind>.pdf beside each JSON and HTML.

Typst typesets templates/invoice.typ with presentation.present's view of the stored JSON (the
view the HTML shows too). Typst is a compiler in Rust with its fonts embedded in the package, so
a fresh machine needs nothing else, and one compiler serves every document of a process: fonts
loaded and the template parsed once. A document takes about 7 ms of one core here (WeasyPrint,
rendering the HTML, about 260 ms): 100k finals in 6 to 7 minutes on two free cores, where
WeasyPrint would need three and a half hours. Many documents are rendered by one process per core.

What was rendered is recorded (billing.rendered_pdfs: the digest of what each PDF was rendered
from, and its size) rather than compared with the files: a run over 100k unchanged PDFs renders
nothing and reads no file, where comparing would mean rendering them all again. A document is
rendered when its digest changed or its file is missing or of another size; as for the JSON and
HTML, an account folder still at the modification time a pass over every PDF recorded
(billing.rendered_pdf_folders) holds its PDFs, so a pass stats a folder per account, not a file
per document of every month. A final's digest is that of its JSON, which never changes, so each
final PDF is rendered once (and once rendered as final its document is not even read again); a
later locale or template applies to what is rendered later, as a final's stored HTML keeps its
own. A draft's digest also covers the locale and the template, so a draft is rendered again
whenever it or the way it is shown changed; the PDF of a draft that went away is removed.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import polars as pl
import typst

from dagster_project.invoicing.presentation import present
from dagster_project.invoicing.publishing import (
    document_path,
    documents_in_place,
    folders_as_written,
    write_atomically,
)
from dagster_project.parallel import map_in_processes, worker_count

TEMPLATE = Path(__file__).parent / "templates" / "invoice.typ"
SUFFIX = ".pdf"
PDF_FILES = {SUFFIX: "pdf_bytes"}
# Below this many documents one process renders them all; above it, one process per core (starting
# the workers costs about a second, a document about 7 ms).
PARALLEL_FROM = 200
_CHUNK = 50


class PdfRenderer:
    """One Typst compiler for many documents, in one locale."""

    def __init__(self, locale: str):
        self.locale = locale
        self._compiler = typst.Compiler(input=str(TEMPLATE), root=str(TEMPLATE.parent), ignore_system_fonts=True)

    def render(self, document: dict) -> bytes:
        # untagged: tags (for screen readers) cost a third more time, and the JSON and HTML
        # documents carry the same content accessibly
        view = orjson.dumps(present(document, self.locale)).decode()
        return self._compiler.compile(sys_inputs={"view": view}, pdf_tags=False)


def rendering_fingerprint(locale: str) -> str:
    """What besides its document a PDF depends on: the locale and the template."""
    return hashlib.md5(TEMPLATE.read_bytes() + locale.encode()).hexdigest()


@dataclass(frozen=True)
class PdfReport:
    documents: int           # the documents looked at
    rendered: pl.DataFrame   # invoice_id, digest, pdf_bytes of the PDFs written
    unchanged: int
    removed_ids: list[str]   # documents whose PDF was removed
    folders: dict[str, int | None]  # account folder: its modification time, for the PDFs it now holds


def publish_pdfs(invoices_dir: Path, stamps: pl.DataFrame, texts: Callable[[list[str]], Iterable[tuple[str, str]]],
                 existing_ids: set[str], recorded_ids: set[str], locale: str,
                 recorded_folders: dict[str, int] | None = None, covers_every_document: bool = False,
                 settled_ns: int | None = None, on_document: Callable[[int], None] | None = None) -> PdfReport:
    """Render the PDFs whose document changed or whose file is damaged; remove those of invoices
    that are gone.

    stamps: one row per document to have a PDF (invoice_id, digest, rendered_digest and pdf_bytes:
    what was last rendered to this directory, null when nothing was); texts(ids) yields
    (invoice_id, document JSON) of the documents to render; existing_ids: every invoice id in the
    warehouse; recorded_ids: every document with a PDF recorded in this directory.
    recorded_folders: each account folder's modification time when a pass last knew its PDFs
    (billing.rendered_pdf_folders): its PDFs are not checked one by one (publishing.py's
    documents_in_place, as for the JSON and HTML). Folder times are returned to be recorded only
    when covers_every_document: PDFs rendered for some documents only (e-mail attachments) say
    nothing of the rest of their folder.
    """
    invoices_dir.mkdir(parents=True, exist_ok=True)
    in_place, checked_folders = documents_in_place(
        invoices_dir, stamps.filter(pl.col("rendered_digest") == pl.col("digest")), recorded_folders or {},
        settled_ns, PDF_FILES)
    stale = stamps.filter(~pl.col("invoice_id").is_in(sorted(in_place)))
    if on_document is not None:
        on_document(stamps.height - stale.height)
    digests = dict(stale.select("invoice_id", "digest").iter_rows())
    jobs = ((invoice_id, digests[invoice_id], text) for invoice_id, text in texts(list(digests)))
    rendered = []
    for written in _render_all(invoices_dir, jobs, len(digests), locale):
        rendered += written
        if on_document is not None:
            on_document(len(written))
    removed_ids = sorted(recorded_ids - existing_ids)
    for invoice_id in removed_ids:
        (invoices_dir / f"{invoice_id}{SUFFIX}").unlink(missing_ok=True)
    written = pl.DataFrame(rendered, schema={"invoice_id": pl.String, "digest": pl.String, "pdf_bytes": pl.Int64},
                           orient="row")
    folders = {}
    if covers_every_document:
        folders = folders_as_written(invoices_dir, stamps.filter(pl.col("invoice_id").is_in(sorted(in_place))),
                                     written, removed_ids, checked_folders, settled_ns, PDF_FILES)
    return PdfReport(documents=stamps.height, rendered=written, unchanged=stamps.height - stale.height,
                     removed_ids=removed_ids, folders=folders)


Job = tuple[str, str, str]  # invoice_id, digest, document JSON
Written = list[tuple[str, str, int]]  # invoice_id, digest, bytes written


def _render_all(invoices_dir: Path, jobs: Iterator[Job], count: int, locale: str) -> Iterator[Written]:
    """Render and write every job, in chunks; on every core when there are many."""
    chunks = ((invoices_dir, chunk) for chunk in _chunks(jobs))
    if count < PARALLEL_FROM or worker_count() < 2:
        _start_renderer(locale)
        return map(_render_chunk, chunks)
    return map_in_processes(_render_chunk, chunks, initializer=_start_renderer, initargs=(locale,))


def _chunks(jobs: Iterator[Job]) -> Iterator[list[Job]]:
    chunk = []
    for job in jobs:
        chunk.append(job)
        if len(chunk) == _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


_RENDERER: PdfRenderer | None = None


def _start_renderer(locale: str) -> None:
    global _RENDERER
    _RENDERER = PdfRenderer(locale)


def _render_chunk(work: tuple[Path, list[Job]]) -> Written:
    invoices_dir, chunk = work
    written = []
    for invoice_id, digest, text in chunk:
        pdf = _RENDERER.render(orjson.loads(text))
        path = document_path(invoices_dir, invoice_id, SUFFIX)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, pdf)
        written.append((invoice_id, digest, len(pdf)))
    return written
