"""Which dbt nodes a run may leave out because nothing they read changed (defs/dbt/unchanged.py):
the fingerprints of a small dbt graph over a real DuckDB file, as its rows, vars, code and
relations change. That the pipeline's marts stay those of a full rebuild is tested in
test_incremental.py (daily runs that leave nodes out against one run that builds them all)."""
from __future__ import annotations

import copy
import json
import re

import duckdb
import pytest

from dagster_project import warehouse
from dagster_project.defs.dbt import unchanged
from dagster_project.defs.dbt.project import dbt_project, ensure_manifest


def _model(name: str, materialized: str, parents: list[str], code: str = "select 1", macros: list[str] = (),
           schema: str = "marts") -> dict:
    return {"resource_type": "model", "name": name, "schema": schema, "alias": name, "raw_code": code,
            "config": {"materialized": materialized}, "depends_on": {"nodes": parents, "macros": list(macros)},
            "description": "", "columns": {}}


def _test(name: str, parents: list[str], where: str | None = None) -> dict:
    return {"resource_type": "test", "name": name, "schema": "tests", "alias": name, "raw_code": "select 1",
            "config": {"where": where}, "depends_on": {"nodes": parents, "macros": []},
            "test_metadata": {"name": "not_null"}, "description": "", "columns": {}}


MANIFEST = {
    "metadata": {"project_name": "shop"},
    "macros": {
        "macro.shop.as_of_date": {"package_name": "shop", "name": "as_of_date", "depends_on": {"macros": []},
                                  "macro_sql": "{% macro as_of_date() %}'{{ var(\"as_of\") }}'::date{% endmacro %}"},
        "macro.shop.today": {"package_name": "shop", "name": "today", "depends_on": {"macros": []},
                             "macro_sql": "{% macro today() %}current_date{% endmacro %}"},
    },
    "sources": {"source.shop.raw.items": {"schema": "raw", "identifier": "items"}},
    "nodes": {
        "model.shop.stg_items": _model("stg_items", "view", ["source.shop.raw.items"], schema="staging"),
        "model.shop.fct_items": _model("fct_items", "table", ["model.shop.stg_items"]),
        "model.shop.fct_items_as_of": _model("fct_items_as_of", "table", ["model.shop.stg_items"],
                                             macros=["macro.shop.as_of_date"]),
        "model.shop.fct_items_today": _model("fct_items_today", "table", ["model.shop.stg_items"],
                                             macros=["macro.shop.today"]),
        "model.shop.int_items_appended": _model("int_items_appended", "incremental", ["model.shop.stg_items"]),
        "model.shop.fct_items_appended": _model("fct_items_appended", "table", ["model.shop.int_items_appended"]),
        "test.shop.not_null_fct_items_id": _test("not_null_fct_items_id", ["model.shop.fct_items"]),
        "test.shop.recent_items": _test("recent_items", ["model.shop.fct_items"], where="id > (select 1)"),
    },
}
ALL = set(MANIFEST["nodes"])
VARS = {"as_of": "2026-11-10", "metering_run": 3}


@pytest.fixture
def con(tmp_path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    warehouse.ensure_tables(con)  # the pipeline's tables, billing.dbt_node_builds among them
    con.execute("create schema staging; create schema marts")
    con.execute("create table raw.items as select range as id from range(5)")
    con.execute("create view staging.stg_items as select * from raw.items")
    for node in MANIFEST["nodes"].values():
        if node["resource_type"] == "model" and node["schema"] == "marts":
            con.execute(f"create table marts.{node['name']} as select 1 as id")
    yield con
    con.close()


def built_after_a_first_build(con, manifest=MANIFEST, dbt_vars=VARS) -> list[str]:
    """What a second build builds (with this manifest and these vars) after a first one of MANIFEST."""
    unchanged.record(con, unchanged.plan(con, MANIFEST, ALL, VARS))
    return [unique_id.split(".")[-1] for unique_id in unchanged.plan(con, manifest, ALL, dbt_vars).to_build]


ALWAYS_BUILT = ["fct_items_appended", "fct_items_today", "int_items_appended", "recent_items"]


def test_a_first_build_builds_everything_and_a_second_only_what_must_always_be_built(con):
    assert unchanged.plan(con, MANIFEST, ALL, VARS).to_build == sorted(ALL)
    # incremental models and what reads them, code that reads the clock, a test with a where
    assert built_after_a_first_build(con) == ALWAYS_BUILT


def test_a_var_counts_only_for_the_nodes_whose_code_reads_it(con):
    assert built_after_a_first_build(con, dbt_vars={**VARS, "metering_run": 4}) == ALWAYS_BUILT
    assert built_after_a_first_build(con, dbt_vars={**VARS, "as_of": "2026-11-11"}) == sorted(
        ALWAYS_BUILT + ["fct_items_as_of"])


def test_a_changed_row_of_a_source_rebuilds_everything_downstream_of_it_but_the_view_over_it(con):
    unchanged.record(con, unchanged.plan(con, MANIFEST, ALL, VARS))
    con.execute("update raw.items set id = 10 where id = 4")  # same count, other rows
    # the view stg_items is a query: the rows it reads changed, not what it is
    assert sorted(unchanged.plan(con, MANIFEST, ALL, VARS).to_build) == sorted(ALL - {"model.shop.stg_items"})


def test_a_view_is_created_again_when_its_code_changes_not_when_what_it_reads_does(con):
    edited = copy.deepcopy(MANIFEST)
    edited["nodes"]["model.shop.stg_items"]["raw_code"] = "select id from {{ source('raw', 'items') }}"
    assert "stg_items" in built_after_a_first_build(con, manifest=edited)
    unchanged.record(con, unchanged.plan(con, MANIFEST, ALL, VARS))
    # DuckDB binds a view's query when it is read: the view standing reads the new column and type
    con.execute("create or replace table raw.items as select range::varchar as id, 2 as price from range(5)")
    assert "model.shop.stg_items" not in unchanged.plan(con, MANIFEST, ALL, VARS).to_build
    assert con.execute("select * from staging.stg_items order by id limit 1").fetchall() == [("0", 2)]


def test_a_renamed_warehouse_file_builds_everything(con, tmp_path):
    unchanged.record(con, unchanged.plan(con, MANIFEST, ALL, VARS))
    con.close()
    (tmp_path / "warehouse.duckdb").rename(tmp_path / "renamed.duckdb")
    with duckdb.connect(str(tmp_path / "renamed.duckdb")) as renamed:
        assert unchanged.plan(renamed, MANIFEST, ALL, VARS).to_build == sorted(ALL)


def test_what_reads_a_view_left_standing_in_another_build_sees_the_rows_it_reads_change(con):
    unchanged.record(con, unchanged.plan(con, MANIFEST, ALL, VARS))
    con.execute("update raw.items set id = 10 where id = 4")
    upstream = unchanged.plan(con, MANIFEST, {"model.shop.stg_items"}, VARS)
    assert upstream.to_build == []
    unchanged.record(con, upstream)  # the view's build, with nothing to build
    downstream = {"model.shop.fct_items", "test.shop.not_null_fct_items_id"}
    assert unchanged.plan(con, MANIFEST, downstream, VARS).to_build == sorted(downstream)


def test_changed_code_or_a_missing_relation_rebuilds_the_node_and_what_reads_it(con):
    edited = copy.deepcopy(MANIFEST)
    edited["nodes"]["model.shop.fct_items"]["raw_code"] = "select 2"
    assert built_after_a_first_build(con, manifest=edited) == sorted(
        ALWAYS_BUILT + ["fct_items", "not_null_fct_items_id"])
    con.execute("drop table marts.fct_items_as_of")
    assert [u.split(".")[-1] for u in unchanged.plan(con, MANIFEST, ALL, VARS).to_build] == sorted(
        ALWAYS_BUILT + ["fct_items_as_of"])


def test_a_build_that_did_not_succeed_leaves_its_nodes_to_the_next(con):
    unchanged.record(con, unchanged.plan(con, MANIFEST, ALL, VARS))
    unchanged.forget(con, ["model.shop.fct_items"])  # its build began and never recorded an end
    assert "model.shop.fct_items" in unchanged.plan(con, MANIFEST, ALL, VARS).to_build
    assert unchanged.plan(con, MANIFEST, ALL, VARS, build_all=True).to_build == sorted(ALL)


def test_a_node_upstream_outside_the_build_counts_with_what_it_was_built_from(con):
    unchanged.record(con, unchanged.plan(con, MANIFEST, ALL, VARS))
    downstream = {"model.shop.fct_items", "test.shop.not_null_fct_items_id"}
    assert unchanged.plan(con, MANIFEST, downstream, VARS).to_build == []
    unchanged.forget(con, ["model.shop.stg_items"])  # built elsewhere, not recorded: changed
    assert unchanged.plan(con, MANIFEST, downstream, VARS).to_build == sorted(downstream)


def test_a_column_no_model_reads_is_left_out_of_its_sources_fingerprint(con):
    manifest = copy.deepcopy(MANIFEST)
    manifest["sources"]["source.shop.raw.items"]["columns"] = {"is_checked": {"meta": {"fingerprinted": False}}}
    con.execute("alter table raw.items add column is_checked boolean default false")
    unchanged.record(con, unchanged.plan(con, manifest, ALL, VARS))
    con.execute("update raw.items set is_checked = true")  # bookkeeping: no mart can differ
    assert [u.split(".")[-1] for u in unchanged.plan(con, manifest, ALL, VARS).to_build] == ALWAYS_BUILT
    con.execute("update raw.items set id = 10 where id = 4")
    assert sorted(unchanged.plan(con, manifest, ALL, VARS).to_build) == sorted(ALL - {"model.shop.stg_items"})


def test_a_source_is_hashed_whatever_its_size_unless_it_is_marked_never_to_be(con):
    # billing.invoice_lines grows by 400k rows a month at 100k accounts: past 1M rows it was no
    # longer hashed, and every run from the third month rebuilt every billing mart
    con.execute("create or replace table raw.items as select range as id from range(1_200_000)")
    assert built_after_a_first_build(con) == ALWAYS_BUILT
    never_hashed = copy.deepcopy(MANIFEST)
    never_hashed["sources"]["source.shop.raw.items"]["meta"] = {"fingerprinted": False}
    assert sorted(unchanged.plan(con, never_hashed, ALL, VARS).to_build) == sorted(ALL - {"model.shop.stg_items"})
    assert dbt_project_source_meta("source.tally.raw.events") == {"dagster": {"asset_key": ["raw_events"]},
                                                                  "fingerprinted": False}


def dbt_project_source_meta(unique_id: str) -> dict:
    ensure_manifest(dbt_project)
    return json.loads(dbt_project.manifest_path.read_text())["sources"][unique_id]["meta"]


def test_every_model_reading_a_source_excludes_the_columns_left_out_of_its_fingerprint():
    """The pipeline's own project: a column marked `fingerprinted: false` must be excluded by
    every node that reads its source, or a mart could keep a value that changed."""
    ensure_manifest(dbt_project)
    manifest = json.loads(dbt_project.manifest_path.read_text())
    unread = {unique_id: names for unique_id, source in manifest["sources"].items()
              if (names := unchanged.unfingerprinted_columns(source))}
    assert unread == {"source.tally.billing.invoices": ["is_committed", "document_json"]}
    for unique_id, names in unread.items():
        readers = [node for node in manifest["nodes"].values() if unique_id in node["depends_on"]["nodes"]]
        assert [node["name"] for node in readers] == ["stg_billing__invoices"]
        for node in readers:
            excluded = re.search(r"select \* exclude \(([^)]*)\)", node["raw_code"])
            assert excluded and set(names) <= {name.strip() for name in excluded.group(1).split(",")}, node["name"]


def test_the_incremental_models_code_covers_them_what_they_read_and_their_macros_and_nothing_after():
    """A change here makes metering rebuild from raw events (metering_state.full_refresh_reason)."""
    def after(edit) -> bool:
        edited = copy.deepcopy(MANIFEST)
        edit(edited)
        return unchanged.incremental_code_fingerprint(edited) != unchanged.incremental_code_fingerprint(MANIFEST)

    def set_code(name: str, code: str):
        return lambda manifest: manifest["nodes"][f"model.shop.{name}"].update(raw_code=code)

    def call_macro(manifest) -> None:
        manifest["nodes"]["model.shop.int_items_appended"]["depends_on"]["macros"] = ["macro.shop.as_of_date"]

    assert after(set_code("int_items_appended", "select 2"))   # the incremental model
    assert after(set_code("stg_items", "select 2"))            # what it reads
    assert after(lambda manifest: manifest["nodes"]["model.shop.int_items_appended"]["config"].update(
        pre_hook="delete from {{ this }}"))
    assert after(call_macro)
    edited = copy.deepcopy(MANIFEST)
    call_macro(edited)
    edited_macro = copy.deepcopy(edited)
    edited_macro["macros"]["macro.shop.as_of_date"]["macro_sql"] = "{% macro as_of_date() %}null{% endmacro %}"
    assert unchanged.incremental_code_fingerprint(edited_macro) != unchanged.incremental_code_fingerprint(edited)
    # what reads the incremental model, or nothing of it, is rebuilt as a table every time anyway
    assert not after(set_code("fct_items_appended", "select 2"))
    assert not after(set_code("fct_items", "select 2"))
