"""End to end through `tally run`: the real Dagster job, dbt project and DuckDB file on disk."""
from __future__ import annotations

import json
import shutil

import duckdb

from tests.conftest import digests, query, recorded_runs, tally_run


def test_a_rerun_gives_byte_identical_invoices_and_one_with_nothing_new_stops_at_once(case_copy):
    workdir = case_copy("02_tiers_packages_volume")
    first = tally_run(workdir, "2026-11-20")
    assert first.returncode == 0, first.stdout + first.stderr
    invoices_before = digests(workdir / "invoices")
    rows_before = query(workdir, "select * exclude (computed_as_of) from billing.invoices order by invoice_id")
    # a new date and nothing else: the whole pipeline runs (no dbt parse), and changes nothing
    second = tally_run(workdir, "2026-11-21")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "events           nothing new (10 events loaded before)" in second.stdout
    assert "(incremental)" in second.stdout
    assert digests(workdir / "invoices") == invoices_before
    assert query(workdir, "select * exclude (computed_as_of) from billing.invoices order by invoice_id") == rows_before
    # the same inputs again: nothing to do, said in one line, no Dagster run started
    third = tally_run(workdir, "2026-11-21")
    assert third.returncode == 0, third.stdout + third.stderr
    assert third.stdout.startswith("tally run as of 2026-11-21: nothing new since run ")
    assert "event statuses: 9 metered, 1 no_plan" in third.stdout
    assert len(recorded_runs(workdir / ".dagster")[0]) == 2
    assert digests(workdir / "invoices") == invoices_before
    # the second run checked the first one's files and vouches for their folders from then on...
    folders = sorted(path.name for path in (workdir / "invoices").iterdir() if path.is_dir())
    assert [row[0] for row in query(workdir, "select account_id from billing.published_folders order by 1")] == folders
    # ...until a file in one goes: the same inputs again are no longer "nothing new", and the file is back
    lost = sorted((workdir / "invoices" / folders[0]).glob("*.json"))[0]
    lost.unlink()
    fourth = tally_run(workdir, "2026-11-21")
    assert fourth.returncode == 0, fourth.stdout + fourth.stderr
    assert "nothing new since run" not in fourth.stdout and "2 files written" in fourth.stdout
    assert digests(workdir / "invoices") == invoices_before


def test_a_fresh_warehouse_reproduces_the_same_documents(case_copy, tmp_path):
    workdir = case_copy("01_stripe_payments")
    assert tally_run(workdir, "2026-11-10").returncode == 0
    before = digests(workdir / "invoices")
    shutil.rmtree(workdir / "invoices")
    (workdir / "warehouse.duckdb").unlink()
    assert tally_run(workdir, "2026-11-10").returncode == 0
    assert digests(workdir / "invoices") == before


def test_every_event_gets_exactly_one_status_with_a_reason(case_copy):
    workdir = case_copy("01_stripe_payments")
    (workdir / "data" / "events" / "2026-10.jsonl").unlink()
    base = {"schema": "payment", "account_id": "acct_a", "timestamp": "2026-10-02T09:00:00Z",
            "attributes": {"transaction_amount": "10"}, "dimensions": {"payment_mode": "debit_card"}}
    lines = [
        {**base, "id": "ok"},
        {**base, "id": "ok"},
        {**base, "id": "changed", "attributes": {"transaction_amount": "1"}},
        {**base, "id": "changed", "attributes": {"transaction_amount": "2"}},
        {**base, "id": "no_timestamp", "timestamp": None},
        {**base, "id": "bad_timestamp", "timestamp": "yesterday"},
        {**base, "id": "extra_attribute", "attributes": {"transaction_amount": "1", "tip": "2"}},
        {**base, "id": "text_amount", "attributes": {"transaction_amount": "ten"}},
        {**base, "id": "extra_dimension", "dimensions": {"payment_mode": "ach", "country": "FR"}},
        {**base, "id": "no_amount", "attributes": {}},
        {**base, "id": "stranger", "account_id": "acct_zzz"},
        {**base, "id": "too_early", "timestamp": "2026-09-30T23:59:59Z"},
        {**base, "id": "wire", "dimensions": {"payment_mode": "wire"}},
    ]
    text = "\n".join(json.dumps(line) for line in lines) + "\n{broken\n"
    (workdir / "data" / "events" / "mixed.jsonl").write_text(text)
    proc = tally_run(workdir, "2026-11-10")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = query(workdir, "select event_id, status, reason from marts.event_pipeline_log order by event_row_id")
    assert log == [
        ("ok", "metered", None),
        ("ok", "duplicate", "duplicate id"),
        ("changed", "metered", None),
        ("changed", "duplicate", "duplicate id; its payload differs from the first occurrence"),
        ("no_timestamp", "invalid", "missing field: timestamp"),
        ("bad_timestamp", "invalid", "bad timestamp: yesterday"),
        ("extra_attribute", "invalid", "undeclared attribute: tip"),
        ("text_amount", "invalid", "non-numeric attribute: transaction_amount"),
        ("extra_dimension", "invalid", "undeclared dimension: country"),
        ("no_amount", "invalid", "missing required attribute: transaction_amount"),
        ("stranger", "unknown_account", "unknown account: acct_zzz"),
        ("too_early", "no_plan", "no plan assignment covers 2026-09-30T23:59:59Z"),
        ("wire", "unmatched", "no meter of plan payments_standard matches"),
        (None, "invalid", "unparseable JSON line"),
    ]
    metered = query(workdir, "select event_id, meter_names, invoice_number from marts.event_pipeline_log "
                             "where status = 'metered' order by event_row_id")
    assert metered == [("ok", ["debit_card_charges", "debit_card_volume"], "INV-2026-000001"),
                       ("changed", ["debit_card_charges", "debit_card_volume"], "INV-2026-000001")]
    invoice = json.loads((workdir / "invoices" / "acct_a" / "2026-10-01_cycle.json").read_text())
    assert [(line["quantity"], line["amount"]) for line in invoice["lines"]] == [("11", "0.32"), ("2", "0.60")]


def test_a_typed_parquet_timestamp_is_metered_as_the_instant_it_is(case_copy):
    workdir = case_copy("01_stripe_payments")
    events = workdir / "data" / "events"
    (events / "2026-10.jsonl").unlink()
    base = {"schema": "payment", "account_id": "acct_a", "attributes": {"transaction_amount": "10"},
            "dimensions": {"payment_mode": "debit_card"}}
    (events / "a.jsonl").write_text(json.dumps({**base, "id": "text", "timestamp": "2026-10-02T09:00:00Z"}) + "\n")
    columns = ("'payment' as schema, 'acct_a' as account_id, map {'transaction_amount': '10'} as attributes, "
               "map {'payment_mode': 'debit_card'} as dimensions")
    duckdb.sql(f"""copy (select id, timestamp, {columns} from (values
                            ('zoned', timestamptz '2026-10-02 11:00:00+02'),
                            ('zoned', timestamptz '2026-10-02 09:00:00+00'),
                            ('no_timestamp', null),
                            ('too_early', timestamptz '2026-10-01 01:59:59+02')) as t(id, timestamp))
                   to '{events / "b.parquet"}' (format parquet)""")
    duckdb.sql(f"""copy (select 'naive' as id, timestamp '2026-10-31 23:59:59.999999' as timestamp, {columns})
                   to '{events / "c.parquet"}' (format parquet)""")
    proc = tally_run(workdir, "2026-11-10")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = query(workdir, "select event_id, status, reason, strftime(event_at, '%Y-%m-%d %H:%M:%S.%f') "
                         "from marts.event_pipeline_log order by event_row_id")
    assert log == [
        ("text", "metered", None, "2026-10-02 09:00:00.000000"),
        ("zoned", "metered", None, "2026-10-02 09:00:00.000000"),
        ("zoned", "duplicate", "duplicate id", "2026-10-02 09:00:00.000000"),  # the same instant: the same payload
        ("no_timestamp", "invalid", "missing field: timestamp", None),
        ("too_early", "no_plan", "no plan assignment covers 2026-09-30T23:59:59Z", "2026-09-30 23:59:59.000000"),
        ("naive", "metered", None, "2026-10-31 23:59:59.999999"),
    ]
    invoice = json.loads((workdir / "invoices" / "acct_a" / "2026-10-01_cycle.json").read_text())
    assert [line["quantity"] for line in invoice["lines"]][:2] == ["30", "3"]


def test_bad_reference_rows_hold_back_their_account_naming_file_line_and_column(case_copy):
    workdir = case_copy("01_stripe_payments")
    (workdir / "data" / "plan_assignments.csv").write_text(
        "account_id,price_plan,start_date,end_date\n"
        "acct_a,payments_standard,2026-10-01,\n"
        "acct_a,payments_standard,2026-10-15,2026-11-01\n"
        "acct_b,gold,2026-13-01,\n")
    proc = tally_run(workdir, "2026-11-10")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    output = proc.stdout + proc.stderr
    assert "plan_assignments.csv: line 4: start_date: '2026-13-01' is not a date (YYYY-MM-DD)" in output
    assert "acct_b: plan_assignments.csv: line 4: price_plan: unknown price plan 'gold'" in output
    assert "acct_a: plan_assignments.csv: line 3: start_date: overlaps the assignment of account 'acct_a' on " \
           "line 2" in output
    # both accounts are held back (their rows are wrong), so nothing is billed, nothing published
    assert not list((workdir / "invoices").rglob("*.json"))


def test_named_licenses_count_unique_users_over_the_whole_cycle_and_runs(case_copy):
    """A UNIQUE_COUNT cycle counts the distinct values of its days (a user seen on two days counts
    once), also when a later run adds a user to a day it counted before and a day of a user seen
    already: it recounts those days, keeps the others, and never sums the daily counts."""
    workdir = case_copy("01_stripe_payments")
    config = workdir / "config"
    (config / "event_schemas.yaml").write_text(
        "event_schemas:\n  - {name: login, attributes: [], dimensions: [user_id]}\n")
    (config / "usage_meters.yaml").write_text(
        "usage_meters:\n  - {name: active_users, event_schema: login, aggregation: UNIQUE_COUNT, unique_by: user_id}\n")
    (config / "billable_items.yaml").write_text(
        "billable_items:\n  - {name: active_users, billable_name: Active users, type: named_license, "
        "usage_meter: active_users}\n")
    (config / "price_plans" / "payments_standard.yaml").write_text(
        "name: payments_standard\ncurrency: USD\nbilling_cycle: {interval: month, anchor: calendar}\n"
        "grace_period_days: 3\nrate_cards:\n  usage:\n"
        '    - {billable_item: active_users, model: per_unit, unit_price: "8"}\n')
    events = workdir / "data" / "events"

    def write(name: str, logins: list[tuple[str, str]]) -> None:
        (events / name).write_text("".join(
            json.dumps({"id": f"{name}-{n}", "schema": "login", "account_id": "acct_a",
                        "timestamp": f"2026-10-{day}T09:00:00Z", "dimensions": {"user_id": user}}) + "\n"
            for n, (day, user) in enumerate(logins)))

    def usage() -> list[tuple]:
        return query(workdir, "select quantity, event_count from marts.fct_meter_usage "
                              "where cycle_id = 'acct_a/2026-10-01'")

    write("first.jsonl", [("02", "u1"), ("03", "u2"), ("20", "u1")])
    assert tally_run(workdir, "2026-10-21").returncode == 0
    assert usage() == [(2, 3)]
    write("second.jsonl", [("03", "u3"), ("31", "u3"), ("31", "u3"), ("31", "u1")])
    proc = tally_run(workdir, "2026-11-10")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert usage() == [(3, 7)]
    invoice = json.loads((workdir / "invoices" / "acct_a" / "2026-10-01_cycle.json").read_text())
    assert [(line["type"], line["quantity"], line["amount"]) for line in invoice["lines"]] == [
        ("named_license", "3", "24.00")]
    values = query(workdir, "select strftime(usage_date, '%d'), distinct_value "
                            "from intermediate.int_distinct_values_daily order by 1, 2")
    assert values == [("02", "u1"), ("03", "u2"), ("03", "u3"), ("20", "u1"), ("31", "u1"), ("31", "u3")]
    days = query(workdir, "select strftime(usage_date, '%d'), quantity, event_count, metered_run "
                          "from intermediate.int_usage_daily order by 1")
    # the days' counts add up to 7: the cycle has three users
    assert [(day, int(quantity), count, run) for day, quantity, count, run in days] == [
        ("02", 1, 1, 1), ("03", 2, 2, 2), ("20", 1, 1, 1), ("31", 2, 3, 2)]


def test_a_change_to_the_metering_of_most_accounts_plans_re_meters_by_a_full_refresh(case_copy):
    """A plan change re-meters every event of the accounts on the plan; when those are most accounts,
    the run rebuilds metering from raw events, which costs less than replacing most rows one
    account at a time, and says why. The quantities follow the new configuration."""
    workdir = case_copy("01_stripe_payments")
    assert tally_run(workdir, "2026-10-20").returncode == 0
    meters = workdir / "config" / "usage_meters.yaml"
    # the transaction fee now counts ACH payments
    meters.write_text(meters.read_text().replace(
        "aggregation: COUNT\n    filter:\n      all:\n        - {dimension: payment_mode, op: eq, value: debit_card}",
        "aggregation: COUNT\n    filter:\n      all:\n        - {dimension: payment_mode, op: eq, value: ach}"))
    proc = tally_run(workdir, "2026-11-10")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(full refresh: the metering of plan(s) payments_standard changed, 2 of 2 accounts)" in proc.stdout
    events = [json.loads(line) for line in (workdir / "data" / "events" / "2026-10.jsonl").read_text().splitlines()]
    ach = {account: len({e["id"] for e in events if e.get("schema") == "payment" and e["account_id"] == account
                         and e.get("dimensions", {}).get("payment_mode") == "ach"}) for account in ("acct_a", "acct_b")}
    assert ach["acct_a"] > 0
    counted = dict(query(workdir, "select account_id, event_count from marts.fct_meter_usage "
                                  "where meter_name = 'debit_card_charges' and period_start_date = '2026-10-01'"))
    assert counted == ach
    proc = tally_run(workdir, "2026-11-11")
    assert "dbt metering" in proc.stdout and "(incremental)" in proc.stdout, proc.stdout


def test_sum_max_and_latest_meters_of_a_cycle_over_days_and_runs(case_copy):
    """SUM, MAX and LATEST quantities are merged from the cycle's days (a LATEST day keeps the key
    of its latest event): the same quantities as over the events themselves, also when a later run
    adds a day, or events to a day it aggregated before, which it aggregates again over all of
    them; the days it brought nothing to are kept as they were."""
    workdir = case_copy("01_stripe_payments")
    config = workdir / "config"
    (config / "event_schemas.yaml").write_text(
        "event_schemas:\n  - {name: storage, attributes: [{name: gb, required: true}], dimensions: []}\n")
    (config / "usage_meters.yaml").write_text(
        "usage_meters:\n"
        "  - {name: gb_written, event_schema: storage, aggregation: SUM, attribute: gb}\n"
        "  - {name: peak_gb, event_schema: storage, aggregation: MAX, attribute: gb}\n"
        "  - {name: last_gb, event_schema: storage, aggregation: LATEST, attribute: gb}\n")
    (config / "billable_items.yaml").write_text("billable_items:\n" + "".join(
        f"  - {{name: {meter}, billable_name: {meter}, type: usage, usage_meter: {meter}}}\n"
        for meter in ("gb_written", "peak_gb", "last_gb")))
    (config / "price_plans" / "payments_standard.yaml").write_text(
        "name: payments_standard\ncurrency: USD\nbilling_cycle: {interval: month, anchor: calendar}\n"
        "grace_period_days: 3\nrate_cards:\n  usage:\n" + "".join(
            f'    - {{billable_item: {meter}, model: per_unit, unit_price: "1"}}\n'
            for meter in ("gb_written", "peak_gb", "last_gb")))
    events = workdir / "data" / "events"

    def write(name: str, readings: list[tuple[str, str]]) -> None:
        (events / name).write_text("".join(
            json.dumps({"id": f"{name}-{n}", "schema": "storage", "account_id": "acct_a",
                        "timestamp": f"2026-10-{day}Z", "attributes": {"gb": gb}}) + "\n"
            for n, (day, gb) in enumerate(readings)))

    def quantities() -> dict[str, tuple[str, int]]:
        rows = query(workdir, "select meter_name, quantity, event_count from marts.fct_meter_usage "
                              "where cycle_id = 'acct_a/2026-10-01'")
        return {meter: (f"{quantity.normalize():f}", count) for meter, quantity, count in rows}

    write("first.jsonl", [("02T08:00:00", "5"), ("02T09:00:00", "7.5"), ("10T12:00:00", "12"), ("20T00:00:00", "3")])
    assert tally_run(workdir, "2026-10-21").returncode == 0
    assert quantities() == {"gb_written": ("27.5", 4), "peak_gb": ("12", 4), "last_gb": ("3", 4)}
    write("second.jsonl", [("24T10:00:00", "20"), ("15T00:00:00", "1")])  # a new peak; an older reading
    assert tally_run(workdir, "2026-10-25").returncode == 0
    assert quantities() == {"gb_written": ("48.5", 6), "peak_gb": ("20", 6), "last_gb": ("20", 6)}
    # two later readings of the 24th, at one moment: the greater id is the latest
    write("third.jsonl", [("24T11:00:00", "8"), ("24T11:00:00", "9")])
    proc = tally_run(workdir, "2026-11-10")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert quantities() == {"gb_written": ("65.5", 8), "peak_gb": ("20", 8), "last_gb": ("9", 8)}
    days = query(workdir, "select strftime(usage_date, '%d'), quantity, event_count, metered_run "
                          "from intermediate.int_usage_daily where meter_name = 'gb_written' order by 1")
    assert [(day, f"{quantity.normalize():f}", count, run) for day, quantity, count, run in days] == [
        ("02", "12.5", 2, 1), ("10", "12", 1, 1), ("15", "1", 1, 2), ("20", "3", 1, 1), ("24", "37", 3, 3)]
    invoice = json.loads((workdir / "invoices" / "acct_a" / "2026-10-01_cycle.json").read_text())
    assert sorted((line["quantity"], line["amount"]) for line in invoice["lines"]) == [
        ("20", "20.00"), ("65.5", "65.50"), ("9", "9.00")]
