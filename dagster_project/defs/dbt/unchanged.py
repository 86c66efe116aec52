"""dbt nodes whose inputs did not change since they were built are not built again.

A daily run rebuilt every table of the billing marts and every reference-data view and dimension,
about 4 s at 100k accounts, although invoices change when a cycle closes and reference data when
its files do. A node's fingerprint is its code (SQL, config, descriptions; every macro of the
project; dbt's version), the values of the vars its code reads, and the fingerprints of what it
reads: the nodes upstream, and each source's rows (their count and a sum of their hashes, less
the columns no model reads, such as billing.invoices' commit flag), whatever their number. A
model or test whose fingerprint is the one recorded when it was last built, and whose relation
is there, is left out of the build.

Some nodes are built every time, and so is everything that reads them: incremental models (they
build on their own previous rows), seeds and snapshots; code that reads the clock, the
environment or the warehouse while compiling (`current_date`, `env_var`, `run_query`); tests with
a `where` (it may read any table); and the sources marked `meta: {fingerprinted: false}`
(raw.events, which every run that loads events changes and which only incremental models read:
hashing its rows would cost seconds for nothing). A node upstream that this build does not
cover counts with its recorded fingerprint, or as changed when it has none.

A view holds no rows, only its query: it is created again when its code changes, not when what
it reads does (DuckDB binds a view's query when it is read). Its fingerprint still
follows those rows, so what reads it is built when they change.

A build's fingerprints are deleted before it starts and written only after it succeeded, so a
failed or killed build leaves its nodes unrecorded and the next run builds them. A relation
changed by hand (dbt run from a shell, SQL in a notebook) is not seen: `tally run --full-refresh`
builds every node.
"""
from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from importlib.metadata import version

import duckdb

from dagster_project.warehouse import quoted_identifier

# read while compiling or running, not declared as a dependency: such a node is built every time
_VOLATILE_CODE = re.compile(r"run_query|statement\(|load_result|env_var\(|run_started_at|invocation_id"
                            r"|modules\.datetime|current_date|current_timestamp|\bnow\(\)|random\(\)", re.IGNORECASE)
_VAR_NAMED = re.compile(r"""\bvar\(\s*['"]([A-Za-z_]\w*)['"]""")
_VAR_ANY = re.compile(r"\bvar\(")
_DISPATCH_PREFIXES = ("duckdb__", "default__")
_ALWAYS_BUILT = {"seed", "snapshot"}


@dataclass(frozen=True)
class BuildPlan:
    fingerprints: dict[str, str]   # every candidate node: what it is built from now
    definitions: dict[str, str]    # every candidate view: what its definition is made from now
    unchanged: frozenset[str]      # the candidates that need no build

    @property
    def to_build(self) -> list[str]:
        return sorted(set(self.fingerprints) - self.unchanged)


def plan(con: duckdb.DuckDBPyConnection, manifest: dict, candidates: set[str], dbt_vars: dict,
         build_all: bool = False) -> BuildPlan:
    """Which of the candidate nodes (dbt unique ids) must be built, and their fingerprints
    (billing.dbt_node_builds holds what they were last built from)."""
    rows = con.execute("select unique_id, fingerprint, definition from billing.dbt_node_builds").fetchall()
    recorded = {unique_id: fingerprint for unique_id, fingerprint, _ in rows}
    recorded_definitions = {unique_id: definition for unique_id, _, definition in rows}
    fingerprints = _Fingerprints(con, manifest, candidates, dbt_vars, recorded)
    current = {unique_id: fingerprints.of(unique_id) for unique_id in sorted(candidates)}
    definitions = {unique_id: fingerprints.definition_of(unique_id) for unique_id in sorted(candidates)
                   if _is_view(manifest["nodes"][unique_id])}
    if build_all:
        return BuildPlan(current, definitions, frozenset())
    present = {(schema, name) for schema, name in con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_catalog = current_database()").fetchall()}
    unchanged = set()
    for unique_id, fingerprint in current.items():
        node = manifest["nodes"][unique_id]
        has_relation = node["resource_type"] == "test" or (node["schema"], node["alias"]) in present
        same = (recorded_definitions.get(unique_id) == definitions[unique_id] if unique_id in definitions
                else recorded.get(unique_id) == fingerprint)
        if same and has_relation:
            unchanged.add(unique_id)
    return BuildPlan(current, definitions, frozenset(unchanged))


def _is_view(node: dict) -> bool:
    return node["resource_type"] == "model" and node["config"].get("materialized") == "view"


def is_fingerprinted(source: dict) -> bool:
    """Whether a source's rows are hashed: not when it is marked `meta: {fingerprinted: false}`,
    and what reads it is then built every time. Once a size decided (more than 1M rows: not
    hashed), and billing.invoice_lines, 400k rows a month at 100k accounts, crossed it in the
    third month: from then on every run rebuilt every billing mart."""
    return source.get("meta", {}).get("fingerprinted") is not False


def unfingerprinted_columns(source: dict) -> list[str]:
    """A source's columns no model reads (`meta: {fingerprinted: false}`), left out of its rows'
    hash: bookkeeping that changes without changing any mart. tests/test_unchanged_nodes.py holds
    every reader of the source to excluding them."""
    return [name for name, column in source.get("columns", {}).items()
            if column.get("meta", {}).get("fingerprinted") is False]


def forget(con: duckdb.DuckDBPyConnection, unique_ids: list[str]) -> None:
    """Before a build: its nodes are unrecorded until it succeeds."""
    con.execute("delete from billing.dbt_node_builds where list_contains(?, unique_id)", [unique_ids])


def record(con: duckdb.DuckDBPyConnection, build: BuildPlan) -> None:
    """After a successful build: what its nodes were built from, and what the views it left
    standing now read (what reads them compares with that)."""
    nodes = [*build.to_build, *(unique_id for unique_id in build.unchanged if unique_id in build.definitions)]
    con.execute("begin transaction")
    con.execute("delete from billing.dbt_node_builds where list_contains(?, unique_id)", [nodes])
    con.executemany("insert into billing.dbt_node_builds (unique_id, fingerprint, definition) values (?, ?, ?)",
                    [(unique_id, build.fingerprints[unique_id], build.definitions.get(unique_id))
                     for unique_id in nodes])
    con.execute("commit")


class _Fingerprints:
    def __init__(self, con, manifest: dict, candidates: set[str], dbt_vars: dict, recorded: dict[str, str]):
        self.con, self.manifest, self.candidates = con, manifest, candidates
        self.vars, self.recorded = dbt_vars, recorded
        self.volatile = f"changed:{uuid.uuid4().hex}"
        self.memo: dict[str, str] = {}
        project = manifest["metadata"]["project_name"]
        macros = sorted((key, macro["macro_sql"]) for key, macro in manifest["macros"].items()
                        if macro["package_name"] == project)
        # compiled SQL names relations with the warehouse's catalog, its file's stem: a renamed file
        # holds views of relations that are no longer there
        catalog = con.execute("select current_database()").fetchone()[0]
        self.code_base = _digest([version("dbt-core"), version("dbt-duckdb"), macros, catalog])

    def of(self, unique_id: str) -> str:
        if unique_id not in self.memo:
            self.memo[unique_id] = self._compute(unique_id)
        return self.memo[unique_id]

    def definition_of(self, unique_id: str) -> str:
        """What a view's definition follows from: its own code. DuckDB binds a view's query each
        time it is read, so a view stands as long as its SQL does, whatever the columns and rows of
        what it reads (tests/test_unchanged_nodes.py holds DuckDB to that)."""
        code = self._code(self.manifest["nodes"][unique_id])
        return self.volatile if code is None else _digest(code)

    def _compute(self, unique_id: str) -> str:
        if unique_id in self.manifest["sources"]:
            return self._source(self.manifest["sources"][unique_id])
        node = self.manifest["nodes"].get(unique_id)
        if node is None:
            return self.volatile
        if unique_id not in self.candidates:
            return self.recorded.get(unique_id, self.volatile)
        if node["config"].get("materialized") == "incremental" or (
                node["resource_type"] == "test" and node["config"].get("where")):
            return self.volatile
        code = self._code(node)
        if code is None:
            return self.volatile
        upstream = sorted((dependency, self.of(dependency)) for dependency in node["depends_on"].get("nodes", []))
        return _digest([code, upstream])

    def _code(self, node: dict) -> list | None:
        """A node's own code, with the macros it calls and the vars it reads; None when it is
        always built (it may compile to something else each time)."""
        code = node.get("raw_code") or ""
        macro_code = _macro_code(self.manifest, node["depends_on"].get("macros", []))
        if (node["resource_type"] in _ALWAYS_BUILT
                or _VOLATILE_CODE.search(code) or _VOLATILE_CODE.search(macro_code)):
            return None
        var_names = set(_VAR_NAMED.findall(code + macro_code))
        if len(_VAR_ANY.findall(code + macro_code)) > len(_VAR_NAMED.findall(code + macro_code)):
            var_names = set(self.vars)  # a var named by an expression: every var counts
        return [self.code_base, code, node["config"], node.get("test_metadata"), node.get("description"),
                node.get("columns"), {name: self.vars.get(name) for name in sorted(var_names)}]

    def _source(self, source: dict) -> str:
        schema, table = source["schema"], source["identifier"]
        is_table = self.con.execute("select count(*) from duckdb_tables() where database_name = current_database() "
                                    "and schema_name = ? and table_name = ?", [schema, table]).fetchone()[0]
        if not is_table or not is_fingerprinted(source):
            return self.volatile  # a view, a missing table, or a source marked as never hashed
        relation = f'"{schema}"."{table}"'
        if unread := unfingerprinted_columns(source):
            relation = f"(select * exclude ({', '.join(map(quoted_identifier, unread))}) from {relation})"
        rows, total = self.con.execute(f"select count(*), sum(hash(t)::hugeint) from {relation} as t").fetchone()
        columns = self.con.execute("select column_name, data_type from information_schema.columns "
                                   "where table_catalog = current_database() and table_schema = ? and table_name = ? "
                                   "order by ordinal_position", [schema, table]).fetchall()
        return _digest([rows, str(total), columns])

def incremental_code_fingerprint(manifest: dict) -> str:
    """The code the incremental models' kept rows were computed with: their SQL and config and
    that of every model upstream of them, the macros those call, and dbt's version. When it
    changes (an upgrade of Tally, an edited metering model), rows kept from earlier runs may no
    longer be what the code computes, or lack a column it adds: metering_state then rebuilds
    metering from raw events."""
    nodes = manifest["nodes"]
    pending = [unique_id for unique_id, node in nodes.items() if node["config"].get("materialized") == "incremental"]
    covered: set[str] = set()
    while pending:
        unique_id = pending.pop()
        if unique_id in covered or unique_id not in nodes:
            continue  # a source: its rows are the input, not code
        covered.add(unique_id)
        pending += nodes[unique_id]["depends_on"].get("nodes", [])
    code = [(unique_id, nodes[unique_id].get("raw_code"), nodes[unique_id]["config"],
             _macro_code(manifest, nodes[unique_id]["depends_on"].get("macros", []))) for unique_id in sorted(covered)]
    return _digest([version("dbt-core"), version("dbt-duckdb"), code])


def _macro_code(manifest: dict, macro_ids: list[str]) -> str:
    """The text of the macros a node calls, and of the macros they call and dispatch to."""
    macros = manifest["macros"]
    seen, pending, texts = set(), list(macro_ids), []
    while pending:
        macro_id = pending.pop()
        if macro_id in seen or macro_id not in macros:
            continue
        seen.add(macro_id)
        macro = macros[macro_id]
        texts.append(macro["macro_sql"])
        pending += macro["depends_on"].get("macros", [])
        package = macro_id.rsplit(".", 1)[0]
        pending += [f"{package}.{prefix}{macro['name']}" for prefix in _DISPATCH_PREFIXES]
    return "\n".join(texts)


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
