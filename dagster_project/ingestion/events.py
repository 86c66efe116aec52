"""Load new event files into raw.events: each file once, in file-name then line order.

Nothing is lost: a line that cannot be read becomes a row with a `parse_error` (its status will be
`invalid`), never an exception. Attribute values keep their exact decimal text: JSON is parsed
with numbers as strings, so 19.99 is never the nearest binary float.

De-duplication happens here, once, against what is already loaded (the first occurrence of an
id wins), because de-duplicating every event on every run is the most expensive step at scale.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from dagster_project.warehouse import scalar

EVENT_FILE_SUFFIXES = (".jsonl", ".parquet")
_MAP = pa.map_(pa.string(), pa.string())
_INCOMING_SCHEMA = pa.schema([
    ("file_name", pa.string()), ("line_number", pa.int64()), ("event_id", pa.string()),
    ("schema_name", pa.string()), ("account_id", pa.string()), ("event_timestamp", pa.string()),
    ("attributes", _MAP), ("dimensions", _MAP), ("parse_error", pa.string()), ("raw_line", pa.string()),
])


@dataclass
class LoadReport:
    batch_id: int | None
    files: list[tuple[str, int]] = field(default_factory=list)
    duplicates: int = 0

    @property
    def events_loaded(self) -> int:
        return sum(count for _, count in self.files)


def discover_event_files(events_dir: Path) -> list[str]:
    """Event files under events_dir as relative POSIX paths, in ingestion (name) order."""
    if not events_dir.is_dir():
        return []
    return sorted(p.relative_to(events_dir).as_posix() for p in events_dir.rglob("*")
                  if p.is_file() and p.suffix in EVENT_FILE_SUFFIXES)


def new_event_files(con: duckdb.DuckDBPyConnection, events_dir: Path) -> list[str]:
    loaded = {row[0] for row in con.execute("select file_name from raw.event_files").fetchall()}
    return [name for name in discover_event_files(events_dir) if name not in loaded]


def load_new_events(con: duckdb.DuckDBPyConnection, events_dir: Path, now: datetime | None = None) -> LoadReport:
    files = new_event_files(con, events_dir)
    if not files:
        return LoadReport(batch_id=None)
    batch_id = scalar(con, "select coalesce(max(batch_id), 0) + 1 from raw.event_files")
    report = LoadReport(batch_id=batch_id)
    loaded_at = (now or datetime.now(UTC)).replace(tzinfo=None)
    con.execute("begin transaction")
    try:
        for name in files:
            rows = _stage_event_file(con, events_dir / name, name)
            report.duplicates += _append(con, batch_id)
            con.execute("insert into raw.event_files values (?, ?, ?, ?)", [name, batch_id, loaded_at, rows])
            report.files.append((name, rows))
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return report


def _append(con: duckdb.DuckDBPyConnection, batch_id: int) -> int:
    """Append the staged file's rows (temp table incoming_file), marking ids already seen (earlier
    files or earlier lines) as duplicates. Returns how many were duplicates.

    Repeated ids are found by hash aggregation, not by sorting every id, and payloads are compared
    only for the duplicates found: both stay cheap when duplicates are rare.
    """
    try:
        con.execute("""
            create or replace temp table incoming as
            select (select coalesce(max(load_seq), 0) from raw.events) + row_number() over (order by line_number)
                       as load_seq,
                   f.*
            from incoming_file f
        """)
        con.execute("""
            insert into raw.events (load_seq, batch_id, file_name, line_number, event_id, schema_name, account_id,
                                    event_timestamp, attributes, dimensions, parse_error, raw_line, is_duplicate,
                                    duplicate_payload_differs)
            with repeated as (
                select event_id, min(load_seq) as first_seq
                from incoming
                where event_id is not null
                group by event_id
                having count(*) > 1
            ),
            seen as (
                select distinct event_id from raw.events
                where not is_duplicate and event_id in (select event_id from incoming)
            )
            select i.load_seq, ?, i.file_name, i.line_number, i.event_id, i.schema_name, i.account_id,
                   i.event_timestamp, i.attributes, i.dimensions, i.parse_error, i.raw_line,
                   seen.event_id is not null or i.load_seq > coalesce(repeated.first_seq, i.load_seq),
                   false
            from incoming i
            left join seen on seen.event_id = i.event_id
            left join repeated on repeated.event_id = i.event_id
        """, [batch_id])
        con.execute("""
            update raw.events as duplicate
            set duplicate_payload_differs = true
            from raw.events as first
            where duplicate.load_seq in (select load_seq from incoming)
              and duplicate.is_duplicate
              and first.event_id = duplicate.event_id
              and not first.is_duplicate
              and (first.schema_name is distinct from duplicate.schema_name
                   or first.account_id is distinct from duplicate.account_id
                   or first.event_timestamp is distinct from duplicate.event_timestamp
                   or cast(first.attributes as varchar) is distinct from cast(duplicate.attributes as varchar)
                   or cast(first.dimensions as varchar) is distinct from cast(duplicate.dimensions as varchar))
        """)
        return scalar(con, "select count(*) from raw.events where load_seq in (select load_seq from incoming) "
                           "and is_duplicate")
    finally:
        con.execute("drop table if exists incoming_file")


def _stage_event_file(con: duckdb.DuckDBPyConnection, path: Path, name: str) -> int:
    """Read one file into the temp table incoming_file (the columns of _INCOMING_SCHEMA); its row count."""
    if path.suffix == ".parquet":
        select = _parquet_map_select(con, path)
        if select is not None:  # MAP columns: DuckDB reads the file straight into the table
            con.execute(f"create or replace temp table incoming_file as {select}", [name, str(path)])
            return scalar(con, "select count(*) from incoming_file")
        table = _read_parquet_json_text(con, path, name)
    else:
        table = _read_jsonl(path, name)
    con.register("incoming_arrow", table)
    try:
        con.execute("create or replace temp table incoming_file as select * from incoming_arrow")
    finally:
        con.unregister("incoming_arrow")
    return table.num_rows


# --- JSONL ---------------------------------------------------------------------------------------------

def _read_jsonl(path: Path, name: str) -> pa.Table:
    rows = _Columns()
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not text.strip():
                continue  # blank lines carry no event
            try:
                obj = json.loads(text, parse_float=str, parse_int=str)
            except ValueError:
                rows.add_unreadable(name, number, text, "unparseable JSON line")
                continue
            rows.add(name, number, obj, text)
    return rows.table()


class _Columns:
    """Column-wise accumulation of event rows (building an Arrow table once per file)."""

    def __init__(self) -> None:
        self.cols: dict[str, list] = {f.name: [] for f in _INCOMING_SCHEMA}

    def add_unreadable(self, file_name: str, line: int, raw_line: str, error: str) -> None:
        for key, value in (("file_name", file_name), ("line_number", line), ("parse_error", error),
                           ("raw_line", raw_line)):
            self.cols[key].append(value)
        for key in ("event_id", "schema_name", "account_id", "event_timestamp", "attributes", "dimensions"):
            self.cols[key].append(None)

    def add(self, file_name: str, line: int, obj, raw_line: str) -> None:
        if not isinstance(obj, dict):
            self.add_unreadable(file_name, line, raw_line, "line is not a JSON object")
            return
        attributes, attr_error = _as_text_map(obj.get("attributes"), "attributes")
        dimensions, dim_error = _as_text_map(obj.get("dimensions"), "dimensions")
        error = attr_error or dim_error
        self.cols["file_name"].append(file_name)
        self.cols["line_number"].append(line)
        self.cols["event_id"].append(_scalar_text(obj.get("id")))
        self.cols["schema_name"].append(_scalar_text(obj.get("schema")))
        self.cols["account_id"].append(_scalar_text(obj.get("account_id")))
        self.cols["event_timestamp"].append(_scalar_text(obj.get("timestamp")))
        self.cols["attributes"].append(attributes)
        self.cols["dimensions"].append(dimensions)
        self.cols["parse_error"].append(error)
        self.cols["raw_line"].append(raw_line if error else None)

    def table(self) -> pa.Table:
        return pa.table(self.cols, schema=_INCOMING_SCHEMA)


def _scalar_text(value) -> str | None:
    """Top-level fields as text; an empty string is as good as missing."""
    if value is None or isinstance(value, (dict, list)):
        return None if value is None else json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return text if text.strip() else None


def _as_text_map(value, field_name: str) -> tuple[list[tuple[str, str]] | None, str | None]:
    """A JSON object as sorted (key, text) pairs; numbers keep their decimal text; null means absent.

    Booleans and nested values keep their JSON text, which staging then reports as non-numeric.
    """
    if value is None:
        return [], None
    if not isinstance(value, dict):
        return None, f"{field_name} is not a JSON object"
    pairs = []
    for key in sorted(value):
        item = value[key]
        if item is None:
            continue
        if isinstance(item, bool):
            text = "true" if item else "false"
        elif isinstance(item, (dict, list)):
            text = json.dumps(item)
        else:
            text = str(item)
        pairs.append((str(key), text))
    return pairs, None


# --- Parquet ---------------------------------------------------------------------------------------------

_TEXT_COLUMNS = {"id": "event_id", "schema": "schema_name", "account_id": "account_id", "timestamp": "event_timestamp"}


def _parquet_columns(con: duckdb.DuckDBPyConnection, path: Path) -> dict[str, str]:
    described = con.execute("describe select * from read_parquet(?)", [str(path)]).fetchall()
    return {row[0]: row[1].upper() for row in described}


def _parquet_select(types: dict[str, str], json_columns: set[str]) -> list[str]:
    """Select expressions for the incoming columns; JSON text columns come out as <name>_json."""
    select = ["cast(? as varchar) as file_name", "cast(file_row_number + 1 as bigint) as line_number"]
    for column, alias in _TEXT_COLUMNS.items():
        select.append(f"nullif(trim(cast({_quote(column)} as varchar)), '') as {alias}" if column in types
                      else f"cast(null as varchar) as {alias}")
    for column in ("attributes", "dimensions"):
        kind = types.get(column)
        if kind is None:
            select.append(f"cast(map() as map(varchar, varchar)) as {column}")
        elif column in json_columns:
            select.append(f"cast({_quote(column)} as varchar) as {column}_json")
        else:
            # values to their exact text (DECIMAL and VARCHAR stay exact), nulls dropped, keys sorted
            select.append(
                f"map_from_entries(list_sort(list_transform("
                f"list_filter(map_entries({_quote(column)}), lambda e: e.value is not null), "
                f"lambda e: {{'key': cast(e.key as varchar), 'value': cast(e.value as varchar)}}))) as {column}")
    return select


def _json_text_columns(types: dict[str, str], path: Path) -> set[str]:
    json_columns = set()
    for column in ("attributes", "dimensions"):
        kind = types.get(column)
        if kind is None or kind.startswith("MAP("):
            continue
        if kind not in ("VARCHAR", "JSON"):
            raise ValueError(f"{path.name}: column {column} has type {kind}; expected a MAP or JSON object text")
        json_columns.add(column)
    return json_columns


def _parquet_map_select(con: duckdb.DuckDBPyConnection, path: Path) -> str | None:
    """The whole read as SQL when no column holds JSON text (parameters: file name, path)."""
    types = _parquet_columns(con, path)
    if _json_text_columns(types, path):
        return None
    return (f"select {', '.join(_parquet_select(types, set()))}, cast(null as varchar) as parse_error, "
            f"cast(null as varchar) as raw_line from read_parquet(?, file_row_number = true)")


def _read_parquet_json_text(con: duckdb.DuckDBPyConnection, path: Path, name: str) -> pa.Table:
    """Parquet whose attributes or dimensions are JSON object text: parsed by the same exact parser
    as JSONL lines, so numbers keep their decimal text."""
    types = _parquet_columns(con, path)
    json_columns = _json_text_columns(types, path)
    table = con.sql(f"select {', '.join(_parquet_select(types, json_columns))} "
                    f"from read_parquet(?, file_row_number = true) order by line_number",
                    params=[name, str(path)]).to_arrow_table()
    parsed: dict[str, list] = {c: [] for c in json_columns}
    errors: list[str | None] = []
    for row in range(table.num_rows):
        error = None
        for column in json_columns:
            text = table.column(f"{column}_json")[row].as_py()
            try:
                value = json.loads(text, parse_float=str, parse_int=str) if text is not None else None
            except ValueError:
                value = text
            pairs, problem = _as_text_map(value, column)
            parsed[column].append(pairs)
            error = error or problem
        errors.append(error)
    table = table.drop_columns([f"{c}_json" for c in json_columns])
    extra = {c: pa.array(v, type=_MAP) for c, v in parsed.items()}
    extra["parse_error"] = pa.array(errors, type=pa.string())
    extra["raw_line"] = pa.nulls(table.num_rows, pa.string())
    return _with_columns(table, extra)


def _with_columns(table: pa.Table, extra: dict[str, pa.Array]) -> pa.Table:
    columns = {f.name: extra[f.name] if f.name in extra else table.column(f.name) for f in _INCOMING_SCHEMA}
    return pa.table(columns, schema=_INCOMING_SCHEMA)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
