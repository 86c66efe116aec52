"""`tally demo` from an empty directory: the whole pricing model end to end, and entitlements."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dagster_project.defs.dbt.runner import manifest_json
from tests.conftest import ROOT, query_file, run_tally


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("demo")
    shutil.copytree(ROOT / "pricing_config", workdir / "pricing_config")
    proc = run_tally("demo", cwd=workdir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "generated the demo dataset" in proc.stdout
    return workdir


def query(workdir, sql):
    return query_file(workdir / "warehouse" / "tally.duckdb", sql)


def document(workdir, invoice_id):
    return json.loads((workdir / "invoices" / f"{invoice_id}.json").read_text())


def dbt(tmp_path, warehouse, *args: str):
    """The project's own dbt, on the given warehouse file."""
    return subprocess.run([str(Path(sys.executable).with_name("dbt")), *args,
                           "--project-dir", str(ROOT / "dbt_project"),
                           "--profiles-dir", str(ROOT / "dbt_project"), "--target-path", str(tmp_path / "target")],
                          capture_output=True, text=True, cwd=ROOT / "dbt_project", timeout=600,
                          env={**os.environ, "TALLY_WAREHOUSE": str(warehouse), "TALLY_TEMP_DIR": str(tmp_path)})


def test_every_event_has_one_status_and_every_problem_is_reported(demo):
    statuses = dict(query(demo, "select status, count(*) from marts.event_pipeline_log group by 1"))
    loaded = query(demo, "select count(*) from raw.events")[0][0]
    assert sum(statuses.values()) == loaded
    assert (statuses["duplicate"], statuses["invalid"], statuses["unknown_account"]) == (1, 1, 1)


def test_a_plan_change_with_fees_in_advance_a_commitment_and_a_discount(demo):
    opening = document(demo, "acct_stark_team/2026-08-10_opening")
    assert (opening["kind"], opening["status"], opening["issue_date"]) == ("opening", "final", "2026-08-10")
    # the first, partial cycle's platform fee in advance: 49 x 22 / 31
    assert [(line["billable_item"], line["amount"]) for line in opening["lines"]] == [("platform_fee", "34.77")]
    basic_last = document(demo, "acct_stark_team/2026-10-01_cycle")
    assert basic_last["period_end"] == "2026-10-16" and basic_last["price_plan"] == "team_seats"
    business = document(demo, "acct_stark_team/2026-10-16_cycle")
    kinds = {line["type"] for line in business["lines"]}
    assert {"license", "fixed_fee", "commitment_true_up"} <= kinds
    assert business["subtotal"] == "500.00"  # the commitment tops the cycle up to its minimum
    rules = query(demo, "select rule_name, condition_result from marts.pricing_rule_log "
                        "where invoice_id = 'acct_stark_team/2026-10-16_cycle'")
    assert rules == [("seat_volume_discount", True)]


def test_credits_wallets_and_their_ledgers_balance(demo):
    # the promo window (Sep 1, Oct 16] holds the first cycle's period end (Sep 15): it pays there
    umbrella = document(demo, "acct_umbrella_api/2026-08-15_cycle")
    assert umbrella["credits"] == [{"grant_id": "promo_umbrella_sept", "amount": "50.00"}]
    hooli = document(demo, "acct_hooli_pay/2026-09-10_cycle")
    assert hooli["wallet_applied"] == "200.00"
    assert query(demo, "select balance_amount from marts.fct_wallet_ledger where account_id = 'acct_hooli_pay' "
                       "order by entry_date, ledger_entry_id desc")[-1][0] == 0
    # grants: amount = draws + expiries + what remains, for every grant
    unbalanced = query(demo, """
        select g.grant_id from marts.dim_credit_grants g
        left join (select grant_id, sum(amount) as moved from marts.fct_credit_ledger
                   where entry_type <> 'grant' group by 1) l on l.grant_id = g.grant_id
        left join (select grant_id, arg_max(balance_amount, effective_date) as left_over
                   from marts.fct_credit_ledger group by 1) b on b.grant_id = g.grant_id
        where g.amount + coalesce(l.moved, 0) <> coalesce(b.left_over, g.amount)""")
    assert unbalanced == []


def test_a_metered_entitlement_is_exceeded_and_priced_by_its_rate_card(demo):
    september = query(demo, "select used, is_exceeded, exceeded_at is not null from marts.fct_entitlement_usage "
                            "where cycle_id = 'acct_wile_automation/2026-09-01'")
    used, exceeded, crossed = september[0]
    assert used > 10000 and exceeded and crossed
    invoice = document(demo, "acct_wile_automation/2026-09-01_cycle")
    operations = next(line for line in invoice["lines"] if line["billable_item"] == "operations")
    assert operations["amount"] != "0.00"
    proc = run_tally("entitlements", "acct_wile_automation", "--at", "2026-09-30T23:00:00Z",
                     "--warehouse", str(demo / "warehouse" / "tally.duckdb"))
    assert proc.returncode == 0
    assert "operations_allowance  denied" in proc.stdout and "premium_support       allowed" in proc.stdout
    early = run_tally("entitlements", "acct_wile_automation", "--at", "2026-09-02T00:00:00Z",
                      "--warehouse", str(demo / "warehouse" / "tally.duckdb"))
    assert "operations_allowance  allowed" in early.stdout
    unknown = run_tally("entitlements", "acct_nobody", "--warehouse", str(demo / "warehouse" / "tally.duckdb"))
    assert unknown.returncode == 1 and "unknown account 'acct_nobody'" in unknown.stderr


def test_tokens_are_priced_per_model(demo):
    llm = document(demo, "acct_cyberdyne_llm/2026-10-01_cycle")
    items = {line["billable_item"] for line in llm["lines"] if line["type"] == "usage"}
    assert items == {"large_input_tokens", "large_output_tokens", "small_input_tokens", "small_output_tokens"}


def test_every_model_is_described_and_dbt_docs_generate_works(demo, tmp_path):
    # every model is described; the marts' and staging's descriptions are comments in the warehouse,
    # which the publication's views carry for BI tools (intermediate tables are published nowhere)
    models = [node for node in manifest_json()["nodes"].values() if node["resource_type"] == "model"]
    assert len(models) > 40 and [node["name"] for node in models if not node["description"].strip()] == []
    undocumented = query(demo, "select schema_name || '.' || table_name from duckdb_tables() where comment is null "
                               "and schema_name in ('staging', 'marts') union all "
                               "select schema_name || '.' || view_name from duckdb_views() where comment is null "
                               "and schema_name in ('staging', 'marts')")
    assert undocumented == []
    assert query(demo, "select count(*) from duckdb_tables() where schema_name = 'intermediate'")[0][0] > 10
    proc = dbt(tmp_path, demo / "warehouse" / "tally.duckdb", "docs", "generate")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    catalog = json.loads((tmp_path / "target" / "catalog.json").read_text())
    invoices = catalog["nodes"]["model.tally.fct_invoices"]
    assert invoices["metadata"]["comment"].startswith("One row per invoice")
    assert (tmp_path / "target" / "index.html").exists()


def test_bi_tools_read_the_publication_through_sqlalchemy_with_the_documented_string(demo):
    import sqlalchemy

    publication = demo / "warehouse" / "tally.published.duckdb"
    engine = sqlalchemy.create_engine(f"duckdb:///{publication}?access_mode=read_only")  # as in the README
    try:
        with engine.connect() as connection:
            invoices = connection.execute(sqlalchemy.text(
                "select count(*), count(invoice_number) from marts.fct_invoices")).one()
            assert tuple(invoices) == query(demo, "select count(*), count(invoice_number) from marts.fct_invoices")[0]
            # what the warehouse's columns say, the publication's say, for the tool to show
            described = connection.execute(sqlalchemy.text(
                "select column_name, comment from duckdb_columns() where schema_name = 'marts' "
                "and table_name = 'fct_invoices' order by column_index")).all()
            assert [tuple(row) for row in described] == query(
                demo, "select column_name, comment from duckdb_columns() where schema_name = 'marts' "
                      "and table_name = 'fct_invoices' order by column_index")
            assert described[0][1].startswith("Primary key")
            undescribed = connection.execute(sqlalchemy.text(
                "select view_name from duckdb_views() where not internal and comment is null")).all()
            assert undescribed == []
            with pytest.raises(sqlalchemy.exc.DBAPIError, match="read-only"):
                connection.execute(sqlalchemy.text("create table marts.scratch (x integer)"))
    finally:
        engine.dispose()


def test_the_dbt_unit_tests_pass(demo, tmp_path):
    import re

    # unit tests build their inputs from fixtures, but dbt reads the upstream models' columns: a
    # copy of the demo's warehouse has them
    warehouse = tmp_path / "unit.duckdb"
    shutil.copy(demo / "warehouse" / "tally.duckdb", warehouse)
    proc = dbt(tmp_path, warehouse, "test", "--select", "test_type:unit")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    passed = re.search(r"PASS=(\d+) WARN=0 ERROR=0 SKIP=0", proc.stdout)
    assert passed and int(passed.group(1)) >= 3, proc.stdout  # cycles: anchors, month ends, calendar, ends


def test_the_primary_key_test_finds_a_repeated_and_a_missing_key(demo, tmp_path):
    import duckdb

    warehouse = tmp_path / "keys.duckdb"
    shutil.copy(demo / "warehouse" / "tally.duckdb", warehouse)
    select = ["--select", "fct_invoices,test_name:primary_key"]
    passed = dbt(tmp_path, warehouse, "test", *select)
    assert passed.returncode == 0 and "PASS=1 " in passed.stdout, passed.stdout + passed.stderr
    with duckdb.connect(str(warehouse)) as con:
        # one invoice twice, and one row without an id: two failing keys
        con.execute("insert into marts.fct_invoices select * from marts.fct_invoices order by invoice_id limit 1")
        con.execute("insert into marts.fct_invoices select * replace (null as invoice_id) from marts.fct_invoices "
                    "order by invoice_id limit 1")
    failed = dbt(tmp_path, warehouse, "test", *select)
    assert failed.returncode == 1 and "Got 2 results" in failed.stdout, failed.stdout + failed.stderr
