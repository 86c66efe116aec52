"""dbt in the pipeline's own process, on the manifest parsed at install time.

A `dbt build` subprocess costs a Python start, dbt's imports and a parse of the project every
time (the parse is invalidated by every new warehouse path and every new `--vars`): about ten
seconds per call, twice per run. Running dbt through `dbtRunner` with the parsed manifest loaded
once skips all three. The manifest names the warehouse's catalog (DuckDB's name for a database
file is its stem), so it is retargeted to the warehouse of the run when it is loaded.

dbt's results become Dagster events through dagster-dbt's own translation, so models are asset
materializations and dbt tests are asset checks exactly as with `DbtCliResource`. Nodes whose
inputs did not change since they were built are left out of the build (unchanged.py) and reported
as materialized (checks as passed) with `unchanged: true`.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtProject
from dagster_dbt.asset_utils import get_asset_check_key_for_test, get_subset_selection_for_context
from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage

from dagster_project import limits, warehouse
from dagster_project.defs.dbt import unchanged
from dagster_project.defs.dbt.project import TARGET_DIR, dbt_project, ensure_manifest, translator
from dagster_project.long_lived import long_lived_objects
from dagster_project.settings import duckdb_settings


@dataclass
class DbtBuildResult:
    success: bool
    failures: list[str] = field(default_factory=list)  # one readable line per failed node
    events: list = field(default_factory=list)         # Dagster events, in dependency order
    unchanged: int = 0                                 # nodes not built: nothing they read changed


@cache
def _parsed_manifest(path: str, modified: float):
    """dbt's Manifest object from the parse state (`partial_parse.msgpack`), read once per process."""
    from dbt.contracts.graph.manifest import Manifest
    from dbt.parser.manifest import extended_mashumuro_decoder

    with long_lived_objects():
        return Manifest.from_msgpack(Path(path).read_bytes(), decoder=extended_mashumuro_decoder)


@cache
def _manifest_json(path: str, modified: float) -> dict:
    return json.loads(Path(path).read_text())


def manifest_json() -> dict:
    """The project's manifest.json, read once per process (and again when it is parsed anew)."""
    return _manifest_json(str(dbt_project.manifest_path), dbt_project.manifest_path.stat().st_mtime)


def manifest_for(catalog: str, project: DbtProject = dbt_project):
    """The parsed manifest with its relations in the warehouse's catalog."""
    ensure_manifest(project)
    state = TARGET_DIR / "partial_parse.msgpack"
    manifest = _parsed_manifest(str(state), state.stat().st_mtime)
    for nodes in (manifest.nodes, manifest.sources, manifest.unit_tests):
        for node in nodes.values():
            current = getattr(node, "database", None)
            if current is None or current == catalog:
                continue
            node.database = catalog
            if getattr(node, "relation_name", None):
                node.relation_name = node.relation_name.replace(f'"{current}".', f'"{catalog}".', 1)
    return manifest


def run_target(warehouse: Path) -> Path:
    """Where dbt writes a run's compiled SQL and log: beside the warehouse, so runs on different
    warehouses never share it."""
    return warehouse.with_name(warehouse.name.removesuffix(".duckdb") + ".dbt")


def catalog_name(warehouse: Path) -> str:
    """DuckDB's catalog name for a database file, as dbt-duckdb derives it."""
    return warehouse.stem


def dbt_build(context: dg.AssetExecutionContext, warehouse_path: Path, dbt_vars: dict, select: str | None,
              exclude: str | None, target_path: Path, full_refresh: bool = False, build_all: bool = False,
              verbose: bool = False, on_node_done: Callable[[str, str], None] | None = None) -> DbtBuildResult:
    """`dbt build` of the selection (subsetted as Dagster asks) on the warehouse, in this process,
    leaving out the nodes whose inputs did not change since they were built (unchanged.py) unless
    build_all or full_refresh."""
    from dbt.cli.main import dbtRunner
    from dbt_common.events.functions import msg_to_dict

    manifest = manifest_json()
    dbt_vars = {**dbt_vars, **limits.dbt_vars()}
    candidates = _selected_nodes(context)
    with warehouse.connect(warehouse_path) as con:
        build = unchanged.plan(con, manifest, set(candidates), dbt_vars, build_all=build_all or full_refresh)
        unchanged.forget(con, build.to_build)
        if not build.to_build:
            unchanged.record(con, build)  # the views left standing: what they read now
    result = DbtBuildResult(success=False, unchanged=len(build.unchanged))
    # (unique id, event): Dagster takes a step's assets in dependency order, built or not
    node_events = [(unique_id, _unchanged_event(candidates[unique_id])) for unique_id in build.unchanged
                   if candidates[unique_id] is not None]
    for _ in build.unchanged:
        if on_node_done is not None:
            on_node_done("", "unchanged")
    if not build.to_build:
        result.success = True
        result.events = _in_dependency_order(node_events)
        return result
    if build.unchanged:
        # every node to build named, tests too: indirect selection would bring back tests left out
        names = [manifest["nodes"][unique_id]["name"] for unique_id in build.to_build]
        selection, indirect = ["--select", *names], "empty"
    else:
        selection, indirect = get_subset_selection_for_context(
            context, manifest, select, exclude, None, translator, os.getenv("DBT_INDIRECT_SELECTION"))
    users_indirect = os.environ.get("DBT_INDIRECT_SELECTION")
    if indirect is not None:
        os.environ["DBT_INDIRECT_SELECTION"] = indirect
    # profiles.yml reads the warehouse path and DuckDB's settings from the environment
    os.environ["TALLY_WAREHOUSE"] = str(warehouse_path)
    os.environ.update(duckdb_settings(warehouse_path).environment())
    raw_events: list[dict] = []

    def collect(message) -> None:
        name = message.info.name
        if name in ("LogModelResult", "LogTestResult", "LogSeedResult", "LogSnapshotResult"):
            raw = msg_to_dict(message)
            raw_events.append(raw)
            if on_node_done is not None:
                node = raw["data"].get("node_info", {})
                on_node_done(node.get("node_name", ""), raw["data"].get("status", ""))

    args = ["build", "--project-dir", str(dbt_project.project_dir), "--profiles-dir", str(dbt_project.profiles_dir),
            "--target-path", str(target_path), "--log-path", str(target_path), "--no-write-json",
            "--vars", json.dumps(dbt_vars), *selection,
            # unit tests check SQL logic, not data: the test suite runs them (tests/test_demo.py)
            "--exclude-resource-type", "unit_test"]
    if full_refresh:
        args.append("--full-refresh")
    if not verbose:
        args += ["--log-level", "none"]
    try:
        outcome = dbtRunner(manifest=manifest_for(catalog_name(warehouse_path)), callbacks=[collect]).invoke(args)
    finally:
        _release_warehouse()
        if users_indirect is None:
            os.environ.pop("DBT_INDIRECT_SELECTION", None)
        else:
            os.environ["DBT_INDIRECT_SELECTION"] = users_indirect
    for raw in raw_events:
        message = DbtCoreCliEventMessage(raw_event=raw, event_history_metadata={})
        unique_id = raw["data"].get("node_info", {}).get("unique_id", "")
        node_events += [(unique_id, event) for event in message.to_default_asset_events(
            manifest=manifest, dagster_dbt_translator=translator, context=context, target_path=target_path,
            project=dbt_project)]
    result.events = _in_dependency_order(node_events)
    result.success = outcome.success
    node_results = getattr(outcome.result, "results", None) or []
    result.failures = [_failure_line(r) for r in node_results if str(r.status) in ("error", "fail")]
    if not outcome.success and not result.failures:
        text = str(outcome.exception or "").strip()
        result.failures.append(text.splitlines()[0] if text else "dbt build failed")
    if result.success:
        with warehouse.connect(warehouse_path) as con:
            unchanged.record(con, build)
    return result


def _in_dependency_order(node_events: list[tuple[str, object]]) -> list:
    rank = _dependency_rank(str(dbt_project.manifest_path), dbt_project.manifest_path.stat().st_mtime)
    return [event for _, event in sorted(node_events, key=lambda pair: rank.get(pair[0], len(rank)))]


@cache
def _dependency_rank(path: str, modified: float) -> dict[str, int]:
    """Every node's place in one order of the dbt graph where each node comes after what it reads."""
    nodes = _manifest_json(path, modified)["nodes"]
    rank: dict[str, int] = {}
    for start in sorted(nodes):
        stack = [(start, False)]
        while stack:
            unique_id, expanded = stack.pop()
            if unique_id in rank or unique_id not in nodes:
                continue
            if expanded:
                rank[unique_id] = len(rank)
                continue
            stack.append((unique_id, True))
            stack += [(parent, False) for parent in nodes[unique_id]["depends_on"]["nodes"] if parent not in rank]
    return rank


def _selected_nodes(context: dg.AssetExecutionContext) -> dict[str, dg.AssetKey | dg.AssetCheckKey | None]:
    """The dbt nodes (unique id: Dagster key) of the assets and checks this step materializes,
    and the tests that are no asset check (key None) on them: dbt's eager selection runs those too."""
    manifest_path = dbt_project.manifest_path
    models, checks, loose_tests = _keys_by_node(str(manifest_path), manifest_path.stat().st_mtime)
    selected_assets, selected_checks = set(context.selected_asset_keys), set(context.selected_asset_check_keys)
    nodes = {unique_id: key for unique_id, key in models.items() if key in selected_assets}
    nodes |= {unique_id: key for unique_id, key in checks.items() if key in selected_checks}
    for unique_id, (parents, key) in loose_tests.items():
        if parents & nodes.keys():
            nodes[unique_id] = key
    return nodes


@cache
def _keys_by_node(path: str, modified: float):
    manifest = _manifest_json(path, modified)
    models, checks, loose_tests = {}, {}, {}
    for unique_id, node in manifest["nodes"].items():
        if node["resource_type"] in ("model", "seed", "snapshot"):
            models[unique_id] = translator.get_asset_spec(manifest, unique_id, dbt_project).key
        elif node["resource_type"] == "test":
            key = get_asset_check_key_for_test(manifest, translator, unique_id, dbt_project)
            if key is None:
                loose_tests[unique_id] = (set(node["depends_on"]["nodes"]), None)
            else:
                checks[unique_id] = key
    return models, checks, loose_tests


def _unchanged_event(key: dg.AssetKey | dg.AssetCheckKey):
    """A node left out of the build: its asset is as it was built (the check as it passed),
    since nothing it reads changed."""
    metadata = {"unchanged": True}
    if isinstance(key, dg.AssetCheckKey):
        return dg.AssetCheckResult(asset_key=key.asset_key, check_name=key.name, passed=True, metadata=metadata)
    return dg.Output(value=None, output_name=key.to_python_identifier(), metadata=metadata)


def _release_warehouse() -> None:
    """Close the DuckDB database dbt-duckdb keeps open between invocations in a process, so the
    pipeline's next step can open the file with its own settings (read-only, for one)."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    environment = DuckDBConnectionManager._ENV
    if environment is not None:
        environment.close()
    DuckDBConnectionManager.close_all_connections()


def _failure_line(node_result) -> str:
    """What failed, where, in one line: a test with its failing row count, a model (or a test that
    could not run) with its error."""
    node = node_result.node
    if node.resource_type == "test" and str(node_result.status) == "fail":
        return f"dbt test {node.name} failed: {node_result.failures or 'some'} row(s) break it"
    lines = [line.strip() for line in (node_result.message or "").splitlines() if line.strip()]
    # dbt's message opens with "Runtime Error in model <name> (<path>)"; what went wrong follows
    detail = next((line for line in lines if " Error in " not in line and not line.startswith("compiled")),
                  lines[0] if lines else "error")
    return f"dbt {node.resource_type} {node.name}: {detail}"
