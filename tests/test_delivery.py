"""Delivery: final invoices sent by e-mail to a real SMTP server and by webhook to a real HTTP
server, both on loopback; every action logged; failures retried; a document delivered once per
channel, even when the process dies between sending and logging.

One billed warehouse goes through the stages of a delivery's life, through the real `tally`:
a run whose webhook fails once, a run with nothing new that retries it and fails again (giving
up: max_attempts 2), `tally deliver --retry`, then a run killed by the receiver while it sends
and the `tally deliver` that finishes its work. The delivery core is also run directly against
the servers, on copies of that warehouse.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
from datetime import date
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import duckdb
import pytest
from aiosmtpd.controller import Controller

from dagster_project import warehouse
from dagster_project.catalog import ConfigError, load_catalog
from dagster_project.delivery import deliver, undelivered, worklist
from dagster_project.delivery.channels import idempotency_key, signature
from dagster_project.invoicing.publishing import document_path
from tests.conftest import CASES, TALLY, query_file, run_tally

SECRET = "whsec-test-3f9a"
LOG_COLUMNS = ("invoice_id", "invoice_number", "channel", "idempotency_key", "attempt", "status", "recipient",
               "response", "error", "run_id", "started_at", "finished_at")


# --- the receivers -------------------------------------------------------------------------------------

class Inbox:
    """What the SMTP server accepted; it knows no mailbox named nobody."""

    def __init__(self):
        self.messages = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              message_from_bytes(envelope.content, policy=default_policy)))
        return f"250 OK queued as q{len(self.messages)}"


class Receiver:
    """A webhook receiver as its documentation tells receivers to be: it checks the signature,
    records one delivery per Idempotency-Key and answers a repeat with 200 without recording it.
    It fails the next `failures_left` requests with 503, and kills process `kill_pid` when a
    request arrives, after recording it and before answering (a crash of the sender)."""

    def __init__(self):
        self.requests = []           # (key, signature valid), every request
        self.deliveries = {}         # key -> (headers, body), once per key
        self.failures_left = 0
        self.kill_pid = None
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                key = self.headers["Idempotency-Key"]
                expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                valid = hmac.compare_digest(expected, self.headers.get("Tally-Signature", ""))
                with receiver.lock:
                    receiver.requests.append((key, valid))
                    if not valid:
                        return self._answer(401, b"bad signature")
                    if receiver.failures_left:
                        receiver.failures_left -= 1
                        return self._answer(503, b"try again later")
                    repeat = key in receiver.deliveries
                    receiver.deliveries.setdefault(key, (dict(self.headers), body))
                    if receiver.kill_pid is not None:
                        os.kill(receiver.kill_pid, signal.SIGKILL)
                        receiver.kill_pid = None
                        return None
                self._answer(200, b'{"duplicate": true}' if repeat else b'{"received": true}')

            def _answer(self, status, body):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/tally/invoices"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def delivery_settings(smtp_port: int, url: str, max_attempts: int = 2) -> str:
    return (f"delivery:\n"
            f"  email: {{smtp_host: 127.0.0.1, smtp_port: {smtp_port}, starttls: false, "
            f"sender: billing@acme.example, timeout_seconds: 5}}\n"
            f"  webhook: {{url: '{url}', secret_env: TALLY_WEBHOOK_SECRET, timeout_seconds: 5}}\n"
            f"  max_attempts: {max_attempts}\n")


# --- the stages ----------------------------------------------------------------------------------------

def log_rows(warehouse_path) -> list[dict]:
    con = duckdb.connect(str(warehouse_path), read_only=True)
    try:
        rows = con.execute(f"select {', '.join(LOG_COLUMNS)} from billing.delivery_actions "
                           "order by invoice_id, channel, attempt, status <> 'sending'").fetchall()
    finally:
        con.close()
    return [dict(zip(LOG_COLUMNS, row, strict=True)) for row in rows]


def statuses(rows, invoice_id, channel) -> list[tuple[int, str]]:
    return [(r["attempt"], r["status"]) for r in rows if r["invoice_id"] == invoice_id and r["channel"] == channel]


def tally_deliver(workdir, *flags):
    return run_tally("deliver", "--config", str(workdir / "config"), "--warehouse", str(workdir / "warehouse.duckdb"),
                     "--invoices", str(workdir / "invoices"), *flags, home=workdir / ".dagster")


def run_command(workdir, as_of):
    return [str(TALLY), "run", "--config", str(workdir / "config"), "--data", str(workdir / "data"),
            "--warehouse", str(workdir / "warehouse.duckdb"), "--invoices", str(workdir / "invoices"),
            "--as-of", as_of]


def tally_run(workdir, as_of):
    return subprocess.run(run_command(workdir, as_of), capture_output=True, text=True, timeout=900,
                          env={**os.environ, "DAGSTER_HOME": str(workdir / ".dagster")})


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    """Case 01 (two accounts; customer cus_2 without an e-mail address) delivered stage by stage;
    each stage's process, log rows and what the receivers had, captured as it ended. The servers
    keep running for the tests of the core."""
    inbox, receiver = Inbox(), Receiver()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    workdir = tmp_path_factory.mktemp("delivery")
    shutil.copytree(CASES / "01_stripe_payments" / "pricing_config", workdir / "config")
    shutil.copytree(CASES / "01_stripe_payments" / "data", workdir / "data")
    customers = workdir / "data" / "customers.csv"
    customers.write_text(customers.read_text().replace("ap@initech.example", ""))
    with (workdir / "config" / "billing.yaml").open("a") as billing:
        billing.write(delivery_settings(smtp.port, receiver.url))
    warehouse_path = workdir / "warehouse.duckdb"

    def capture(proc):
        return {"proc": proc, "rows": log_rows(warehouse_path), "messages": list(inbox.messages),
                "requests": list(receiver.requests), "deliveries": dict(receiver.deliveries)}

    captured = {"workdir": workdir, "receiver": receiver, "inbox": inbox}
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("TALLY_WEBHOOK_SECRET", SECRET)
        receiver.failures_left = 1
        captured["first"] = capture(tally_run(workdir, "2026-11-10"))
        shutil.copyfile(warehouse_path, workdir / "after_first_run.duckdb")
        receiver.failures_left = 1
        captured["nothing_new"] = capture(tally_run(workdir, "2026-11-10"))
        captured["retry"] = capture(tally_deliver(workdir, "--retry"))
        crashing = subprocess.Popen(run_command(workdir, "2027-01-02"), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True,
                                    env={**os.environ, "DAGSTER_HOME": str(workdir / ".dagster")})
        receiver.kill_pid = crashing.pid
        output, _ = crashing.communicate(timeout=900)
        receiver.kill_pid = None
        crashing.output = output
        captured["crash"] = capture(crashing)
        captured["resumed"] = capture(tally_deliver(workdir))
        yield captured
    smtp.stop()
    receiver.server.shutdown()
    receiver.server.server_close()


def finals(workdir, month):
    return query_file(workdir / "warehouse.duckdb", "select invoice_id, invoice_number, status from billing.invoices "
                                               f"where billing_month = '{month}' order by invoice_id")


# --- through `tally` -----------------------------------------------------------------------------------

def test_a_run_delivers_its_finals_by_email_and_webhook_and_logs_each_action(stages):
    first = stages["first"]
    proc = first["proc"]
    # billed and published; one webhook failed: exit 5, the document listed
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "delivery         2 delivered, 1 failed, 1 skipped" in proc.stdout
    assert "not delivered (1)" in proc.stderr and "by webhook: failed 1 time(s): HTTP 503 Service Unavailable" \
        in proc.stderr
    october = finals(stages["workdir"], "2026-11-01")   # the October cycles, issued in November
    assert [status for _, _, status in october] == ["final", "final"]
    (a_id, a_number, _), (b_id, b_number, _) = october
    rows = first["rows"]
    assert statuses(rows, a_id, "email") == [(1, "sending"), (1, "delivered")]
    assert statuses(rows, b_id, "email") == [(1, "skipped")]
    # the webhook failed its first request: acct_a's, which comes first
    assert statuses(rows, a_id, "webhook") == [(1, "sending"), (1, "failed")]
    assert statuses(rows, b_id, "webhook") == [(1, "sending"), (1, "delivered")]
    skipped = next(r for r in rows if r["status"] == "skipped")
    assert (skipped["error"], skipped["recipient"]) == ("customer cus_2 has no e-mail address", None)
    failed = next(r for r in rows if r["status"] == "failed")
    assert failed["error"] == "HTTP 503 Service Unavailable: try again later"
    assert failed["recipient"] == stages["receiver"].url and failed["finished_at"] >= failed["started_at"]
    delivered_email = next(r for r in rows if r["status"] == "delivered" and r["channel"] == "email")
    assert (delivered_email["recipient"], delivered_email["response"]) == ("billing@globex.example",
                                                                          "250 OK queued as q1")
    assert all(r["finished_at"] is None for r in rows if r["status"] == "sending")
    assert {r["idempotency_key"] for r in rows if r["invoice_id"] == a_id and r["channel"] == "webhook"} == \
        {idempotency_key(a_number, "webhook")}
    assert len({r["run_id"] for r in rows}) == 1


def test_drafts_are_never_delivered(stages):
    # the December cycles, closed but in their grace period on 2027-01-02
    drafts = [invoice_id for invoice_id, _, status in finals(stages["workdir"], "2027-01-01") if status == "draft"]
    assert len(drafts) == 2
    assert not {r["invoice_id"] for r in stages["resumed"]["rows"]} & set(drafts)


def test_the_email_carries_the_html_document_and_the_pdf_that_exists(stages):
    workdir = stages["workdir"]
    [(sender, recipients, message)] = stages["first"]["messages"]
    (a_id, a_number, _), _ = finals(workdir, "2026-11-01")
    assert (sender, recipients) == ("billing@acme.example", ["billing@globex.example"])
    assert message["Subject"] == f"Invoice {a_number} from Acme Cloud Inc."
    [sent_by] = message["From"].addresses
    assert (sent_by.display_name, sent_by.addr_spec) == ("Acme Cloud Inc.", "billing@acme.example")
    assert message["To"] == "Globex Corporation <billing@globex.example>"
    assert message["Message-ID"] == f"<{idempotency_key(a_number, 'email')}@acme.example>"
    html = message.get_body(("html",)).get_content().replace("\r\n", "\n")   # SMTP lines end in CRLF
    assert html == document_path(workdir / "invoices", a_id, ".html").read_text()
    assert f"Invoice {a_number}" in message.get_body(("plain",)).get_content()
    [attachment] = list(message.iter_attachments())
    assert (attachment.get_content_type(), attachment.get_filename()) == ("application/pdf", f"{a_number}.pdf")
    pdf = document_path(workdir / "invoices", a_id, ".pdf").read_bytes()     # typeset by delivery, for the e-mail
    assert attachment.get_content() == pdf and pdf.startswith(b"%PDF")


def test_an_email_without_a_pdf_is_the_html_alone(stages, tmp_path):
    path = undelivered_copy(stages, tmp_path)
    billing = load_catalog(stages["workdir"] / "config").billing
    email_only = billing.model_copy(update={"delivery": billing.delivery.model_copy(update={"webhook": None})})
    inbox = stages["inbox"]
    sent_before = len(inbox.messages)
    # the published JSON and HTML, without their PDFs
    shutil.copytree(stages["workdir"] / "invoices", tmp_path / "no-pdfs-here", ignore=shutil.ignore_patterns("*.pdf"))
    with warehouse.connect(path) as con:
        report = deliver(con, worklist(con, email_only, tmp_path / "no-pdfs-here"), "run-without-pdfs")
    assert (report.delivered, report.skipped) == (1, 1)
    [(_, _, message)] = inbox.messages[sent_before:]
    assert list(message.iter_attachments()) == []
    assert message.get_body(("html",)) is not None
    assert message.get_body(("plain",)).get_content().endswith("The document is the HTML part of this message.\r\n")


def test_the_webhook_posts_the_published_json_signed_with_its_idempotency_key(stages):
    workdir = stages["workdir"]
    _, (b_id, b_number, _) = finals(workdir, "2026-11-01")
    headers, body = stages["first"]["deliveries"][idempotency_key(b_number, "webhook")]
    assert body == document_path(workdir / "invoices", b_id, ".json").read_bytes()
    assert headers["Tally-Signature"] == signature(SECRET, body)
    assert headers["Tally-Invoice-Number"] == b_number
    assert json.loads(body)["invoice_number"] == b_number
    assert all(valid for _, valid in stages["retry"]["requests"])


def test_the_next_run_retries_a_failed_delivery_until_max_attempts_then_only_deliver_retry(stages):
    (a_id, a_number, _), _ = finals(stages["workdir"], "2026-11-01")
    nothing_new = stages["nothing_new"]
    proc = nothing_new["proc"]
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "nothing new since run" in proc.stdout        # billing stopped at once; delivery still ran
    assert "delivery         0 delivered, 1 failed, 0 skipped" in proc.stdout
    assert "failed 2 times, no longer retried by runs (`tally deliver --retry`)" in proc.stderr
    assert statuses(nothing_new["rows"], a_id, "webhook") == [(1, "sending"), (1, "failed"), (2, "sending"),
                                                             (2, "failed")]
    # nothing else was sent again: the delivered e-mail and webhook, the skipped e-mail
    assert len(nothing_new["rows"]) == len(stages["first"]["rows"]) + 2
    assert len(nothing_new["messages"]) == 1

    retry = stages["retry"]
    assert retry["proc"].returncode == 0, retry["proc"].stdout + retry["proc"].stderr
    assert "delivery         1 delivered, 0 failed, 0 skipped" in retry["proc"].stdout
    assert statuses(retry["rows"], a_id, "webhook")[-2:] == [(3, "sending"), (3, "delivered")]
    key = idempotency_key(a_number, "webhook")
    assert [k for k, _ in retry["requests"]].count(key) == 3      # one key for all three attempts
    assert key in retry["deliveries"]


def test_a_run_killed_between_send_and_log_is_resent_with_the_same_key_and_delivered_once(stages):
    workdir = stages["workdir"]
    crash, resumed = stages["crash"], stages["resumed"]
    assert crash["proc"].returncode == -signal.SIGKILL, crash["proc"].output
    (a_id, a_number, _), (b_id, b_number, _) = finals(workdir, "2026-12-01")   # the November cycles, final now
    key = idempotency_key(a_number, "webhook")
    # the receiver had it; the log says only that it was being sent
    assert key in crash["deliveries"]
    assert statuses(crash["rows"], a_id, "webhook") == [(1, "sending")]
    assert statuses(crash["rows"], a_id, "email") == [(1, "sending"), (1, "delivered")]

    proc = resumed["proc"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert statuses(resumed["rows"], a_id, "webhook") == [(1, "sending"), (2, "sending"), (2, "delivered")]
    resent = next(r for r in resumed["rows"] if r["invoice_id"] == a_id and r["status"] == "delivered"
                  and r["channel"] == "webhook")
    assert resent["response"] == 'HTTP 200 OK: {"duplicate": true}'
    assert [k for k, _ in resumed["requests"]].count(key) == 2     # seen twice ...
    assert len(resumed["deliveries"]) == len(crash["deliveries"]) + 1   # ... recorded once; acct_b's is new
    assert statuses(resumed["rows"], b_id, "webhook") == [(1, "sending"), (1, "delivered")]
    assert statuses(resumed["rows"], b_id, "email") == [(1, "skipped")]
    assert len(resumed["messages"]) == 2                           # the e-mail sent before the crash, once


def test_the_delivery_log_mart_is_published_with_every_action(stages):
    workdir = stages["workdir"]
    rows = stages["resumed"]["rows"]
    published = workdir / "warehouse.published.duckdb"
    log = query_file(published, "select invoice_id, channel, attempt, status, kind, account_id, is_latest "
                           "from marts.delivery_log order by invoice_id, channel, attempt, status <> 'sending'")
    assert [(r[0], r[1], r[2], r[3]) for r in log] == [(r["invoice_id"], r["channel"], r["attempt"], r["status"])
                                                       for r in rows]
    latest = {(r[0], r[1]): r[3] for r in log if r[6]}
    assert sorted(latest.values()) == ["delivered"] * 6 + ["skipped"] * 2
    assert {r[4] for r in log} == {"cycle"} and {r[5] for r in log} == {"acct_a", "acct_b"}
    # nothing left to deliver
    with warehouse.connect(workdir / "warehouse.duckdb", read_only=True) as con:
        assert undelivered(con, load_catalog(workdir / "config").billing, workdir / "invoices") == []


# --- the delivery core, directly --------------------------------------------------------------------------

def undelivered_copy(stages, tmp_path):
    """The warehouse as the first run billed it, before any delivery (its log emptied)."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(stages["workdir"] / "after_first_run.duckdb", path)
    with warehouse.connect(path) as con:
        con.execute("delete from billing.delivery_actions")
    return path


def webhook_only(stages, url):
    """The stages' settings with the e-mail channel off and the webhook at url."""
    billing = load_catalog(stages["workdir"] / "config").billing
    webhook = billing.delivery.webhook.model_copy(update={"url": url})
    return billing.model_copy(update={"delivery": billing.delivery.model_copy(update={"webhook": webhook,
                                                                                      "email": None})})


def test_an_unreachable_webhook_fails_once_and_leaves_the_rest_for_the_next_run(stages, tmp_path):
    path = undelivered_copy(stages, tmp_path)
    closed = f"http://127.0.0.1:{free_port()}/hook"
    unreachable = webhook_only(stages, closed)
    with warehouse.connect(path) as con:
        work = worklist(con, unreachable, tmp_path, environ={"TALLY_WEBHOOK_SECRET": SECRET})
        assert [(due.channel, due.attempt) for due in work.due] == [("webhook", 1), ("webhook", 1)]
        report = deliver(con, work, "run-unreachable")
        assert (report.delivered, report.failed, report.deferred) == (0, 1, 1)
        assert report.summary().startswith("0 delivered, 1 failed, 0 skipped, 1 left for the next run (webhook: "
                                           f"cannot reach {closed}: ")
        [sending, failed] = con.execute("select status, error from billing.delivery_actions "
                                        "order by status <> 'sending'").fetchall()
        assert sending == ("sending", None) and failed[0] == "failed" and "Connection refused" in failed[1]
        missing = undelivered(con, unreachable, tmp_path)
        assert [(m.last_status, m.failures, m.gave_up) for m in missing] == [("failed", 1, False), (None, 0, False)]

        reachable = webhook_only(stages, stages["receiver"].url)
        work = worklist(con, reachable, tmp_path, environ={"TALLY_WEBHOOK_SECRET": SECRET})
        assert [due.attempt for due in work.due] == [2, 1]
        assert deliver(con, work, "run-reachable").delivered == 2
        assert undelivered(con, reachable, tmp_path) == []


def test_a_missing_secret_fails_the_channel_without_sending(stages, tmp_path):
    path = undelivered_copy(stages, tmp_path)
    requests_before = len(stages["receiver"].requests)
    settings = webhook_only(stages, stages["receiver"].url)
    with warehouse.connect(path) as con:
        report = deliver(con, worklist(con, settings, tmp_path, environ={}), "run-no-secret")
        assert (report.failed, report.deferred) == (1, 1)
        errors = [row[0] for row in con.execute("select error from billing.delivery_actions where status = 'failed'")
                  .fetchall()]
    assert errors == ["the environment variable TALLY_WEBHOOK_SECRET (delivery.webhook.secret_env) is not set"]
    assert len(stages["receiver"].requests) == requests_before


def test_a_skipped_customer_is_sent_to_once_an_address_appears(stages, tmp_path):
    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(stages["workdir"] / "after_first_run.duckdb", path)
    billing = load_catalog(stages["workdir"] / "config").billing
    email_only = billing.model_copy(update={"delivery": billing.delivery.model_copy(update={"webhook": None})})
    inbox = stages["inbox"]
    sent_before = len(inbox.messages)
    published = stages["workdir"] / "invoices"
    with warehouse.connect(path) as con:
        assert worklist(con, email_only, published).due == []      # skipped once; not logged again
        # customers.csv gains an address for cus_2 (as the next run's reference data would have it)
        con.execute("update marts.dim_customers set email = 'nobody@initech.example' where customer_id = 'cus_2'")
        report = deliver(con, worklist(con, email_only, published), "run-refused")
        assert report.failed == 1
        con.execute("update marts.dim_customers set email = 'ap@initech.example' where customer_id = 'cus_2'")
        assert deliver(con, worklist(con, email_only, published), "run-fixed").delivered == 1
        rows = con.execute("select attempt, status, recipient, error from billing.delivery_actions "
                           "where invoice_id = 'acct_b/2026-10-01_cycle' and channel = 'email' "
                           "order by attempt, status <> 'sending'").fetchall()
    assert rows == [(1, "skipped", None, "customer cus_2 has no e-mail address"),
                    (2, "sending", "nobody@initech.example", None),
                    (2, "failed", "nobody@initech.example",
                     "every recipient refused: nobody@initech.example: 550 5.1.1 no such mailbox"),
                    (3, "sending", "ap@initech.example", None),
                    (3, "delivered", "ap@initech.example", None)]
    [(_, recipients, message)] = inbox.messages[sent_before:]
    assert recipients == ["ap@initech.example"] and message["To"] == "Initech LLC <ap@initech.example>"


def test_documents_issued_before_issued_from_are_never_sent(stages, tmp_path):
    path = undelivered_copy(stages, tmp_path)
    billing = webhook_only(stages, stages["receiver"].url)

    def due_from(day):
        settings = billing.model_copy(update={"delivery": billing.delivery.model_copy(update={"issued_from": day})})
        return [due.document.invoice_id for due in worklist(con, settings, tmp_path).due]

    with warehouse.connect(path, read_only=True) as con:
        assert due_from(date(2026, 11, 4)) == ["acct_a/2026-10-01_cycle", "acct_b/2026-10-01_cycle"]
        assert due_from(date(2026, 11, 5)) == []


def test_no_channel_configured_sends_nothing(stages, tmp_path):
    path = undelivered_copy(stages, tmp_path)
    config = stages["workdir"] / "config"
    billing = load_catalog(config).billing
    silent = billing.model_copy(update={"delivery": type(billing.delivery)()})
    with warehouse.connect(path) as con:
        work = worklist(con, silent, tmp_path)
        assert (work.channels, work.due) == ({}, [])
        assert deliver(con, work, "run-silent").delivered == 0
        assert undelivered(con, silent, tmp_path) == []


def test_the_idempotency_key_depends_on_the_number_and_channel_only():
    # the same forever: receivers drop repeats by the keys they have seen, across Tally versions
    assert idempotency_key("INV-2026-000001", "webhook") == "7d3500b9-1d8f-5060-970c-891e426f596c"
    assert idempotency_key("INV-2026-000001", "webhook") != idempotency_key("INV-2026-000001", "email")
    assert idempotency_key("INV-2026-000001", "webhook") != idempotency_key("INV-2026-000002", "webhook")
    assert signature("key", b"{}") == "sha256=" + hmac.new(b"key", b"{}", hashlib.sha256).hexdigest()


def test_tally_deliver_with_no_channel_sends_nothing_and_without_a_warehouse_fails(tmp_path):
    quiet = run_tally("deliver", "--config", str(CASES / "01_stripe_payments" / "pricing_config"),
                      "--warehouse", str(tmp_path / "none.duckdb"), home=tmp_path / ".dagster")
    assert quiet.returncode == 0, quiet.stderr
    assert "no delivery channel in billing.yaml" in quiet.stdout
    config = tmp_path / "config"
    shutil.copytree(CASES / "01_stripe_payments" / "pricing_config", config)
    with (config / "billing.yaml").open("a") as billing:
        billing.write(delivery_settings(25, "http://127.0.0.1:9/hook"))
    missing = run_tally("deliver", "--config", str(config), "--warehouse", str(tmp_path / "none.duckdb"),
                        home=tmp_path / ".dagster")
    assert missing.returncode == 1
    assert "nothing to deliver: no warehouse at" in missing.stderr and not (tmp_path / "none.duckdb").exists()


# --- configuration -------------------------------------------------------------------------------------

def config_problems(tmp_path, delivery_yaml) -> list[str]:
    config = tmp_path / "config"
    shutil.copytree(CASES / "01_stripe_payments" / "pricing_config", config)
    with (config / "billing.yaml").open("a") as billing:
        billing.write(delivery_yaml)
    with pytest.raises(ConfigError) as caught:
        load_catalog(config)
    return [str(problem) for problem in caught.value.problems]


def test_a_login_needs_both_variables_and_starttls(tmp_path):
    assert config_problems(tmp_path, "delivery:\n  email: {smtp_host: smtp.example.com, sender: b@acme.example, "
                                     "starttls: false, username_env: SMTP_USER}\n") == [
        "billing.yaml: delivery.email.password_env: a login needs both username_env and password_env",
        "billing.yaml: delivery.email.starttls: must be true when the server needs a login: the password would be "
        "sent in clear"]


def test_delivery_settings_are_checked_by_shape(tmp_path):
    problems = config_problems(tmp_path, "delivery:\n  webhook: {url: 'ftp://x', secret_env: 'not a name', "
                                         "secret: abc}\n  max_attempts: 0\n")
    assert problems == [
        "billing.yaml: delivery.webhook.url: must be an http:// or https:// URL with a host",
        "billing.yaml: delivery.webhook.secret_env: must be the name of an environment variable (letters, digits, _), "
        "never the secret itself",
        "billing.yaml: delivery.webhook.secret: unknown key",       # a secret has no place in the file
        "billing.yaml: delivery.max_attempts: input should be greater than or equal to 1"]
