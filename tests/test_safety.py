"""Hostile and sloppy input, end to end through `tally run`: a bad id, a huge number, a mistyped
path or a failed step never stops anyone else's billing, never leaves a number given, and is
fixed by fixing the input and running again."""
from __future__ import annotations

import hashlib
import json

from dagster_project import run_lock
from tests.conftest import digests, query, recorded_runs, run_tally, tally_pdfs, tally_run


def payment(event_id, account, amount, day="02"):
    return json.dumps({"id": event_id, "schema": "payment", "account_id": account,
                       "timestamp": f"2026-10-{day}T09:00:00Z", "attributes": {"transaction_amount": amount},
                       "dimensions": {"payment_mode": "debit_card"}}) + "\n"


def add_accounts(workdir, accounts):
    data = workdir / "data"
    with (data / "accounts.csv").open("a") as handle:
        handle.writelines(f"{account},cus_1,{account!r},\n" for account in accounts)
    with (data / "plan_assignments.csv").open("a") as handle:
        handle.writelines(f"{account},payments_standard,2026-10-01,\n" for account in accounts)


def test_bad_ids_hold_back_only_their_own_accounts_and_nothing_leaves_the_invoices_dir(case_copy):
    workdir = case_copy("01_stripe_payments")
    add_accounts(workdir, ["..", "acct_c/evil", "acct_nul\x00", "acct_c"])
    (workdir / "data" / "events" / "more.jsonl").write_text(
        payment("x1", "..", "10") + payment("x2", "acct_c/evil", "10") + payment("x3", "acct_c", "10"))
    proc = tally_run(workdir, "2026-11-10")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "held back, not billed in this run (3 account(s))" in proc.stderr
    assert "..: accounts.csv: line 4: account_id: '..' cannot name a folder of invoices" in proc.stderr
    assert "acct_c/evil: accounts.csv: line 5: account_id: 'acct_c/evil' cannot name a folder" in proc.stderr
    assert "accounts.csv: line 6: account_id: 'acct_nul\\x00' cannot name a folder" in proc.stderr
    assert "Traceback" not in proc.stderr
    # everyone else is billed, with gapless numbers; no file anywhere but under invoices/<account>/,
    # their PDFs included
    assert sorted(digests(workdir / "invoices")) == [f"{account}/2026-10-01_cycle{suffix}"
                                                     for account in ("acct_a", "acct_b", "acct_c")
                                                     for suffix in (".html", ".json")]
    assert "pdfs: 3 document(s) without an up-to-date PDF; `tally pdfs` typesets them" in proc.stdout
    pdfs = tally_pdfs(workdir)
    assert pdfs.returncode == 0, pdfs.stdout + pdfs.stderr
    published = sorted(digests(workdir / "invoices"))
    assert published == [f"{account}/2026-10-01_cycle{suffix}" for account in ("acct_a", "acct_b", "acct_c")
                         for suffix in (".html", ".json", ".pdf")]
    assert sorted(p.name for p in workdir.iterdir()) == sorted(
        ["config", "data", "invoices", "warehouse.duckdb", "warehouse.duckdb.lock", ".dagster",
         "warehouse.published", "warehouse.published.duckdb", "warehouse.dbt"])
    numbers = query(workdir, "select account_id, invoice_number from marts.fct_invoices order by 2")
    assert numbers == [("acct_a", "INV-2026-000001"), ("acct_b", "INV-2026-000002"), ("acct_c", "INV-2026-000003")]
    reasons = dict(query(workdir, "select event_id, reason from marts.event_pipeline_log where event_id like 'x%'"))
    assert reasons["x1"].startswith("account '..' is held back: accounts.csv: line 4: account_id:")
    assert reasons["x3"] is None

    # the rows are fixed: the run is clean again, and nothing already final changes
    finals = digests(workdir / "invoices")
    text = (workdir / "data" / "accounts.csv").read_text()
    (workdir / "data" / "accounts.csv").write_text(
        "\n".join(line for line in text.splitlines() if line.startswith(("account_id", "acct_a", "acct_b",
                                                                          "acct_c,"))) + "\n")
    text = (workdir / "data" / "plan_assignments.csv").read_text()
    (workdir / "data" / "plan_assignments.csv").write_text(
        "\n".join(line for line in text.splitlines() if not line.startswith(("..", "acct_c/", "acct_nul"))) + "\n")
    again = tally_run(workdir, "2026-11-10")
    assert again.returncode == 0, again.stdout + again.stderr
    assert digests(workdir / "invoices") == finals


def test_huge_and_over_precise_numbers_are_invalid_events_or_a_held_account_never_a_failed_run(case_copy):
    workdir = case_copy("01_stripe_payments")
    add_accounts(workdir, ["acct_big"])
    (workdir / "data" / "events" / "numbers.jsonl").write_text(
        payment("n1", "acct_a", "12345678901234567890")
        + payment("n2", "acct_a", "12345678901234567890")
        + payment("n3", "acct_a", "0.0000000000000000001")
        + payment("n4", "acct_a", "1" + "0" * 39)
        + payment("n5", "acct_big", "900000000000000000")
        + payment("n6", "acct_big", "900000000000000000"))
    proc = tally_run(workdir, "2026-11-10")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    reasons = dict(query(workdir, "select event_id, reason from marts.event_pipeline_log where event_id like 'n%'"))
    assert reasons["n1"] == ("attribute out of range: transaction_amount = 12345678901234567890 has 20 digits before "
                             "the decimal point; the supported range is 18")
    assert reasons["n3"] == ("attribute out of range: transaction_amount = 0.0000000000000000001 has 19 decimal "
                             "places; the supported scale is 9")
    assert reasons["n4"].endswith("has 40 digits before the decimal point; the supported range is 18")
    assert reasons["n5"] is None  # valid: its sum is exact in the warehouse ...
    usage = query(workdir, "select quantity from marts.fct_meter_usage where account_id = 'acct_big' "
                           "and meter_name = 'debit_card_volume'")
    assert str(usage[0][0]) == "1800000000000000000.000000000"
    # ... but too large to rate: the account is held back, with the reason, and everyone else billed
    assert ("acct_big: meter debit_card_volume measured 1800000000000000000.000000000 in cycle "
            "acct_big/2026-10-01: amounts of 10^18 or more cannot be rated exactly") in proc.stderr
    invoice = json.loads((workdir / "invoices" / "acct_a" / "2026-10-01_cycle.json").read_text())
    assert invoice["invoice_number"] == "INV-2026-000001"
    assert not (workdir / "invoices" / "acct_big").exists()


def test_a_mistyped_data_directory_changes_nothing(case_copy, tmp_path):
    workdir = case_copy("07_grace_and_late_events")
    first = run_tally("run", "--config", str(workdir / "config"), "--data", str(workdir / "data"),
                      "--warehouse", str(workdir / "warehouse.duckdb"), "--invoices", str(workdir / "invoices"),
                      "--as-of", "2026-11-02", "-v", home=workdir / ".dagster")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Running with dbt=" in first.stdout  # -v shows dbt's own log
    drafts = digests(workdir / "invoices")
    assert drafts  # the October draft
    warehouse = hashlib.sha256((workdir / "warehouse.duckdb").read_bytes()).hexdigest()
    (tmp_path / "empty").mkdir()
    for wrong, says in ((tmp_path / "nope", "does not exist"), (tmp_path / "empty", "has no customers.csv")):
        proc = run_tally("run", "--config", str(workdir / "config"), "--data", str(wrong),
                         "--warehouse", str(workdir / "warehouse.duckdb"), "--invoices", str(workdir / "invoices"),
                         "--as-of", "2026-11-03", home=workdir / ".dagster")
        assert proc.returncode == 1
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"tally: data directory {wrong} {says}")
        assert lines[0].endswith("; nothing was run")
        assert digests(workdir / "invoices") == drafts
        assert hashlib.sha256((workdir / "warehouse.duckdb").read_bytes()).hexdigest() == warehouse


def test_a_removed_account_with_final_invoices_is_named(case_copy):
    workdir = case_copy("01_stripe_payments")
    assert tally_run(workdir, "2026-11-10").returncode == 0
    published = digests(workdir / "invoices")
    accounts = workdir / "data" / "accounts.csv"
    accounts.write_text("\n".join(line for line in accounts.read_text().splitlines()
                                  if not line.startswith("acct_b")) + "\n")
    proc = tally_run(workdir, "2026-11-10")
    assert proc.returncode == 1
    assert ("accounts.csv: account 'acct_b' was removed but has final invoices; restore its row (to stop billing "
            "it, end its plan with an end_date in plan_assignments.csv)") in proc.stderr
    assert "overdrawn" not in proc.stderr and "Traceback" not in proc.stderr
    assert digests(workdir / "invoices") == published


def test_a_new_number_prefix_applies_to_new_numbers_only_and_runs_are_recorded(case_copy):
    workdir = case_copy("03_licenses_and_fixed_fees")
    assert tally_run(workdir, "2026-11-10").returncode == 0
    october = digests(workdir / "invoices")
    billing = workdir / "config" / "billing.yaml"
    billing.write_text(billing.read_text().replace("prefix: INV", "prefix: BILL"))
    proc = tally_run(workdir, "2026-12-05")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    numbers = query(workdir, "select invoice_number from marts.fct_invoices where status = 'final' order by 1")
    assert [n for (n,) in numbers] == ["BILL-2026-000003", "BILL-2026-000004", "INV-2026-000001", "INV-2026-000002"]
    assert all(digests(workdir / "invoices")[name] == digest for name, digest in october.items())
    # both runs are in the project's Dagster instance, where `make dev` shows them
    runs, months = recorded_runs(workdir / ".dagster")
    assert len(runs) == 2 and all(run.is_success for run in runs)
    assert months == ["2026-10", "2026-11", "2026-12"]


def test_a_run_that_fails_before_publishing_gives_no_number(case_copy):
    workdir = case_copy("01_stripe_payments")
    blocked = workdir / "not_a_directory"
    blocked.write_text("a file where the invoices should go")
    proc = run_tally("run", "--config", str(workdir / "config"), "--data", str(workdir / "data"),
                     "--warehouse", str(workdir / "warehouse.duckdb"), "--invoices", str(blocked),
                     "--as-of", "2026-11-10", home=workdir / ".dagster")
    assert proc.returncode == 1
    assert f"tally: published_invoices failed: cannot write invoices to {blocked}" in proc.stderr
    assert "nothing was committed or published" in proc.stderr
    assert query(workdir, "select count(*) from billing.invoices where is_committed and status = 'final'") == [(0,)]
    fixed = tally_run(workdir, "2026-11-10")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "2 final invoice(s) of a failed run discarded" in fixed.stdout
    assert query(workdir, "select invoice_number from billing.invoices order by 1") == [
        ("INV-2026-000001",), ("INV-2026-000002",)]


def test_a_second_run_on_a_busy_warehouse_says_who_holds_it(case_copy):
    workdir = case_copy("01_stripe_payments")
    run_lock.acquire(workdir / "warehouse.duckdb", "tally run --as-of 2026-11-10 (the first)")
    try:
        proc = tally_run(workdir, "2026-11-10")
    finally:
        run_lock.release(workdir / "warehouse.duckdb")
    assert proc.returncode == 4
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "another run holds the warehouse" in lines[0] and "(the first)" in lines[0]
    assert not (workdir / "invoices").exists()


def test_the_command_line_explains_itself():
    version = run_tally("--version")
    assert version.returncode == 0 and version.stdout.startswith("tally 0.2.0 (dagster ")
    usage = run_tally("run", "--as-of", "yesterday")
    assert usage.returncode == 2
    helped = run_tally("--help")
    assert "exit codes: 0 done, 1 failed" in helped.stdout
