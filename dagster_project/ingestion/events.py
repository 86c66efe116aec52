"""Load event files into raw.events: each line once, in file-name then line order.

Nothing is lost: a line that cannot be read becomes a row with a `parse_error` (its status will be
`invalid`), never an exception. Attribute values keep their exact decimal text: JSON is parsed
with numbers as strings, so 19.99 is never the nearest binary float.

A file is identified by its path and loaded once; a JSONL file that grew has its new lines
loaded (numbered on from where it stopped), while a file whose loaded part changed is refused.
JSONL is read in chunks, so memory holds one chunk, never a whole file; Parquet is read by DuckDB.

De-duplication happens here, once, against what is already loaded (the first occurrence of an
id wins), because de-duplicating every event on every run is the most expensive step at scale.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from dagster_project.warehouse import quoted_identifier, scalar

EVENT_FILE_SUFFIXES = (".jsonl", ".parquet")
CHUNK_LINES = 200_000
HASH_BLOCK = 1 << 20
_MAP = pa.map_(pa.string(), pa.string())
_INCOMING_SCHEMA = pa.schema([
    ("file_name", pa.string()), ("line_number", pa.int64()), ("event_id", pa.string()),
    ("schema_name", pa.string()), ("account_id", pa.string()), ("event_timestamp", pa.string()),
    ("event_timestamp_utc", pa.timestamp("us")), ("attributes", _MAP), ("dimensions", _MAP),
    ("parse_error", pa.string()), ("raw_line", pa.string()),
])


@dataclass
class FileLoad:
    """Lines first_line..last_line of one file, loaded in this batch (appended: the file grew)."""

    name: str
    first_line: int
    last_line: int
    events: int
    appended: bool


@dataclass
class LoadReport:
    batch_id: int | None
    loads: list[FileLoad] = field(default_factory=list)
    duplicates: int = 0
    problems: list[str] = field(default_factory=list)  # files not loaded, and why
    notes: list[str] = field(default_factory=list)     # incomplete last lines left for a later run

    @property
    def events_loaded(self) -> int:
        return sum(load.events for load in self.loads)

    @property
    def files(self) -> list[tuple[str, int]]:
        return [(load.name, load.events) for load in self.loads]


@dataclass(frozen=True)
class _Registered:
    """What was loaded of a file so far (a row of raw.event_files)."""

    loaded_bytes: int
    loaded_lines: int
    prefix_sha256: str
    file_size: int
    file_mtime_ns: int


@dataclass
class _Plan:
    """What to load of one file: from byte_start (line first_line) to its last complete line."""

    name: str
    path: Path
    byte_start: int
    first_line: int
    hasher: object  # sha256 of the bytes before byte_start, continued with the bytes loaded
    appended: bool


@dataclass(frozen=True)
class _Staged:
    """What is new of one file: its rows are `select(where)` (SQL, with `params`), read from the
    temp table incoming_file or from a Parquet file in place. `event_id` is the id as SQL over the
    relation read, so a filter on it drops rows before the select list converts them."""

    rows: int
    last_line: int
    byte_end: int
    columns: str = "*"
    relation: str = "incoming_file"
    event_id: str = "event_id"
    params: tuple = ()

    def select(self, where: str = "true") -> str:
        return f"select {self.columns} from {self.relation} where {where}"


def discover_event_files(events_dir: Path) -> list[str]:
    """Event files under events_dir as relative POSIX paths, in ingestion (name) order."""
    if not events_dir.is_dir():
        return []
    return sorted(p.relative_to(events_dir).as_posix() for p in events_dir.rglob("*")
                  if p.is_file() and p.suffix in EVENT_FILE_SUFFIXES)


def load_new_events(con: duckdb.DuckDBPyConnection, events_dir: Path, now: datetime | None = None) -> LoadReport:
    """Load new files and the lines appended to files loaded before, as one batch."""
    registry = {row[0]: _Registered(*row[1:]) for row in con.execute(
        "select file_name, loaded_bytes, loaded_lines, prefix_sha256, file_size, file_mtime_ns "
        "from raw.event_files").fetchall()}
    report = LoadReport(batch_id=None)
    plans = [plan for name in discover_event_files(events_dir)
             if (plan := _plan(events_dir / name, name, registry.get(name), report, con)) is not None
             and _readable(con, plan, report)]
    if not plans:
        return report
    batch_id = scalar(con, "select coalesce(max(batch_id), 0) + 1 from raw.event_file_loads")
    loaded_at = (now or datetime.now(UTC)).replace(tzinfo=None)
    con.execute("begin transaction")
    try:
        for plan in plans:
            staged = _stage(con, plan, report)
            if staged.byte_end == plan.byte_start:
                continue  # only an incomplete last line so far
            report.duplicates += _append(con, batch_id, staged, plan.first_line)
            stat = plan.path.stat()
            con.execute("insert or replace into raw.event_files (file_name, loaded_bytes, loaded_lines, "
                        "prefix_sha256, file_size, file_mtime_ns) values (?, ?, ?, ?, ?, ?)",
                        [plan.name, staged.byte_end, staged.last_line, plan.hasher.hexdigest(), stat.st_size,
                         stat.st_mtime_ns])
            con.execute("insert into raw.event_file_loads (file_name, batch_id, first_line, last_line, byte_start, "
                        "byte_end, loaded_at, event_count) values (?, ?, ?, ?, ?, ?, ?, ?)",
                        [plan.name, batch_id, plan.first_line, staged.last_line, plan.byte_start, staged.byte_end,
                         loaded_at, staged.rows])
            report.loads.append(FileLoad(plan.name, plan.first_line, staged.last_line, staged.rows, plan.appended))
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    report.batch_id = batch_id if report.loads else None
    return report


def _plan(path: Path, name: str, registered: _Registered | None, report: LoadReport,
          con: duckdb.DuckDBPyConnection) -> _Plan | None:
    """All of a new file, the tail of a grown one, nothing for one unchanged (or changed: refused)."""
    if registered is None:
        return _Plan(name, path, 0, 1, hashlib.sha256(), appended=False)
    stat = path.stat()
    if registered.loaded_bytes < 0:  # loaded by a version that kept no sizes: adopt it as loaded in full
        con.execute("update raw.event_files set loaded_bytes = ?, prefix_sha256 = ?, file_size = ?, "
                    "file_mtime_ns = ? where file_name = ?",
                    [stat.st_size, _hash_prefix(path, stat.st_size).hexdigest(), stat.st_size, stat.st_mtime_ns, name])
        return None
    if stat.st_size == registered.file_size and stat.st_mtime_ns == registered.file_mtime_ns:
        return None
    refused = (f"events/{name}: changed after it was loaded (its first {registered.loaded_bytes} bytes are not "
               f"what was loaded); nothing more is loaded from it: restore it, or put corrections in a new file")
    if stat.st_size < registered.loaded_bytes:
        report.problems.append(refused)
        return None
    hasher = _hash_prefix(path, registered.loaded_bytes)
    if hasher.hexdigest() != registered.prefix_sha256:
        report.problems.append(refused)
        return None
    if stat.st_size == registered.loaded_bytes or path.suffix == ".parquet":
        # the same bytes, touched (a Parquet file cannot grow by appending)
        con.execute("update raw.event_files set file_size = ?, file_mtime_ns = ? where file_name = ?",
                    [stat.st_size, stat.st_mtime_ns, name])
        return None
    return _Plan(name, path, registered.loaded_bytes, registered.loaded_lines + 1, hasher, appended=True)


def _readable(con: duckdb.DuckDBPyConnection, plan: _Plan, report: LoadReport) -> bool:
    """A Parquet file must have the event columns' types; one that does not is refused, not loaded."""
    if plan.path.suffix != ".parquet":
        return True
    try:
        _json_text_columns(_parquet_columns(con, plan.path), plan.path)
    except (ValueError, duckdb.Error) as exc:
        report.problems.append(f"events/{plan.name}: {exc}; nothing from it was loaded")
        return False
    return True


def _hash_prefix(path: Path, length: int):
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        remaining = length
        while remaining > 0:
            block = handle.read(min(HASH_BLOCK, remaining))
            if not block:
                break
            hasher.update(block)
            remaining -= len(block)
    return hasher


def _append(con: duckdb.DuckDBPyConnection, batch_id: int, staged: _Staged, first_line: int) -> int:
    """Append a file's new rows in one pass, marking ids already seen (earlier files or earlier
    lines) as duplicates, and whether each duplicate's payload differs from the first occurrence's.
    Returns how many were duplicates.

    Rows are numbered on from the last load_seq by their line, so no sort is needed. Repeated ids
    are found by aggregating their 8-byte hashes first (at 100M events the aggregate of the id
    strings peaked at 5.2 GB, of the hashes 3.5 GB); only the rows whose id hash repeats are read
    again, converted and compared, so the first occurrence's payload comes along with the few
    repeated ids and the duplicates are compared in the same pass (a separate update of them
    afterwards took 45 s at 100M events). An id loaded before is compared with the payload stored
    for it: the stored payloads are read only when the file holds such ids (a first scan of the
    stored ids alone finds them), so a file of new ids never reads the stored attributes.
    """
    base = scalar(con, "select coalesce(max(load_seq), 0) from raw.events") - (first_line - 1)
    try:
        con.execute(f"""
            insert into raw.events (load_seq, batch_id, file_name, line_number, event_id, schema_name, account_id,
                                    event_timestamp, event_timestamp_utc, attributes, dimensions, parse_error,
                                    raw_line, is_duplicate, duplicate_payload_differs)
            with incoming as not materialized ({staged.select()}),
            repeated_hashes as (
                select hash(event_id) as id_hash
                from incoming
                where event_id is not null
                group by id_hash
                having count(*) > 1
            ),
            repeated as (
                select event_id, min(line_number) as first_line, arg_min({_payload("rows")}, line_number) as payload
                from ({staged.select(f"hash({staged.event_id}) in (select id_hash from repeated_hashes)")}) as rows
                where event_id is not null
                group by event_id
                having count(*) > 1
            ),
            seen_ids as (
                select distinct event_id from raw.events
                where not is_duplicate and event_id in (select event_id from incoming)
            ),
            seen as (
                select event_id, arg_min({_payload("events")}, load_seq) as payload
                from raw.events as events
                where not is_duplicate and event_id in (select event_id from seen_ids)
                group by event_id
            ),
            with_first as (
                -- the payload of the id's first occurrence when this row is not it, else NULL
                select i.*, coalesce(seen.payload, case when i.line_number > repeated.first_line
                                                        then repeated.payload end) as first_payload
                from incoming i
                left join seen on seen.event_id = i.event_id
                left join repeated on repeated.event_id = i.event_id
            )
            select ? + line_number, ?, file_name, line_number, event_id, schema_name, account_id,
                   event_timestamp, event_timestamp_utc, attributes, dimensions, parse_error, raw_line,
                   first_payload is not null,
                   -- a CASE builds the payload of the few duplicates only: an AND built it for every row
                   case when first_payload is not null then first_payload is distinct from {_payload("with_first")}
                        else false end
            from with_first
        """, [*staged.params, *staged.params, base, batch_id])
        return scalar(con, "select count(*) from raw.events where load_seq >= ? and is_duplicate", [base + first_line])
    finally:
        con.execute("drop table if exists incoming_file")


def _payload(alias: str) -> str:
    """What a duplicate is compared on with its first occurrence: everything but its id and line."""
    return (f"{{'schema_name': {alias}.schema_name, 'account_id': {alias}.account_id, "
            f"'event_timestamp': {alias}.event_timestamp, 'event_timestamp_utc': {alias}.event_timestamp_utc, "
            f"'attributes': cast({alias}.attributes as varchar), "
            f"'dimensions': cast({alias}.dimensions as varchar)}}")


def _stage(con: duckdb.DuckDBPyConnection, plan: _Plan, report: LoadReport) -> _Staged:
    """Read what is new of one file into the temp table incoming_file (the columns of _INCOMING_SCHEMA)."""
    con.execute("drop table if exists incoming_file")
    if plan.path.suffix == ".parquet":
        size = plan.path.stat().st_size
        plan.hasher = _hash_prefix(plan.path, size)
        return _stage_parquet(con, plan.path, plan.name, size)
    return _stage_jsonl(con, plan, report)


def _insert_chunk(con: duckdb.DuckDBPyConnection, table: pa.Table, first: bool) -> None:
    con.register("incoming_arrow", table)
    try:
        if first:
            con.execute("create temp table incoming_file as select * from incoming_arrow")
        else:
            con.execute("insert into incoming_file select * from incoming_arrow")
    finally:
        con.unregister("incoming_arrow")


# --- JSONL ---------------------------------------------------------------------------------------------

def _stage_jsonl(con: duckdb.DuckDBPyConnection, plan: _Plan, report: LoadReport) -> _Staged:
    """JSONL from plan.byte_start, chunk by chunk. Only whole lines are loaded: a last line without
    its newline is loaded if it is complete JSON, otherwise left for a later run (its writer may
    not have finished it)."""
    rows, staged, chunks = _Columns(), 0, 0
    position, number = plan.byte_start, plan.first_line - 1
    with plan.path.open("rb") as handle:
        handle.seek(plan.byte_start)
        for raw in handle:
            if not raw.endswith(b"\n") and not _is_json(raw):
                report.notes.append(f"events/{plan.name}: line {number + 1} is not complete yet; it will be loaded "
                                    f"once it is")
                break
            plan.hasher.update(raw)
            position += len(raw)
            number += 1
            rows.add_line(plan.name, number, raw, first=number == 1)
            if len(rows) >= CHUNK_LINES:
                _insert_chunk(con, rows.table(), first=chunks == 0)
                staged, chunks, rows = staged + len(rows), chunks + 1, _Columns()
    _insert_chunk(con, rows.table(), first=chunks == 0)
    return _Staged(rows=staged + len(rows), last_line=number, byte_end=position)


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


class _Columns:
    """Column-wise accumulation of event rows (building an Arrow table once per file)."""

    def __init__(self) -> None:
        self.cols: dict[str, list] = {f.name: [] for f in _INCOMING_SCHEMA if f.name != "event_timestamp_utc"}

    def __len__(self) -> int:
        return len(self.cols["file_name"])

    def add_line(self, file_name: str, number: int, raw: bytes, first: bool) -> None:
        """One line of a JSONL file; blank lines carry no event."""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.add_unreadable(file_name, number, raw.decode("utf-8", errors="replace").rstrip("\r\n"),
                                "line is not valid UTF-8")
            return
        if first:
            text = text.removeprefix("\ufeff")  # a byte-order mark opens the file, not the event
        text = text.rstrip("\r\n")
        if not text.strip():
            return
        try:
            obj = json.loads(text, parse_float=str, parse_int=str)
        except ValueError:
            self.add_unreadable(file_name, number, text, "unparseable JSON line")
            return
        self.add(file_name, number, obj, text)

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
        # a JSON line's timestamp is text, parsed in staging: none is typed
        typed = pa.nulls(len(self), _INCOMING_SCHEMA.field("event_timestamp_utc").type)
        return pa.table({**self.cols, "event_timestamp_utc": typed}, schema=_INCOMING_SCHEMA)


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

_TEXT_COLUMNS = {"id": "event_id", "schema": "schema_name", "account_id": "account_id"}
# A timestamp column of these types is kept as the instant it is (in UTC), not as text to be parsed
# back: at 100M events the round trip through text cost about 25 s. Other types (text, dates,
# nanoseconds) keep their text, parsed in staging as a JSON line's is.
_TYPED_TIMESTAMPS = {"TIMESTAMP WITH TIME ZONE": "timezone('UTC', {column})", "TIMESTAMP": "{column}",
                     "TIMESTAMP_MS": "{column}", "TIMESTAMP_S": "{column}"}


def _parquet_columns(con: duckdb.DuckDBPyConnection, path: Path) -> dict[str, str]:
    described = con.execute("describe select * from read_parquet(?)", [str(path)]).fetchall()
    return {row[0]: row[1].upper() for row in described}


def _parquet_select(types: dict[str, str], json_columns: set[str]) -> list[str]:
    """Select expressions for the incoming columns; JSON text columns come out as <name>_json."""
    select = ["cast(? as varchar) as file_name", "cast(file_row_number + 1 as bigint) as line_number"]
    for column, alias in _TEXT_COLUMNS.items():
        select.append(f"{_parquet_text(types, column)} as {alias}")
    typed = _TYPED_TIMESTAMPS.get(types.get("timestamp", ""))
    if typed:
        select += ["cast(null as varchar) as event_timestamp",
                   f"cast({typed.format(column=quoted_identifier('timestamp'))} as timestamp) as event_timestamp_utc"]
    else:
        select += [f"{_parquet_text(types, 'timestamp')} as event_timestamp",
                   "cast(null as timestamp) as event_timestamp_utc"]
    for column in ("attributes", "dimensions"):
        kind = types.get(column)
        if kind is None:
            select.append(f"cast(map() as map(varchar, varchar)) as {column}")
        elif column in json_columns:
            select.append(f"cast({quoted_identifier(column)} as varchar) as {column}_json")
        else:
            # values to their exact text (DECIMAL and VARCHAR stay exact), nulls dropped, keys sorted;
            # a map of text that is so already (the usual case) is taken as it is
            quoted = quoted_identifier(column)
            converted = (f"map_from_entries(list_sort(list_transform("
                         f"list_filter(map_entries({quoted}), lambda e: e.value is not null), "
                         f"lambda e: {{'key': cast(e.key as varchar), 'value': cast(e.value as varchar)}})))")
            if kind == "MAP(VARCHAR, VARCHAR)":
                converted = (f"case when map_keys({quoted}) = list_sort(map_keys({quoted})) and "
                             f"list_aggregate(map_values({quoted}), 'count') = cardinality({quoted}) "
                             f"then {quoted} else {converted} end")
            select.append(f"{converted} as {column}")
    return select


def _parquet_text(types: dict[str, str], column: str) -> str:
    """A text column of the file as trimmed text, NULL when empty or absent."""
    if column not in types:
        return "cast(null as varchar)"
    return f"nullif(trim(cast({quoted_identifier(column)} as varchar)), '')"


def _json_text_columns(types: dict[str, str], path: Path) -> set[str]:
    json_columns = set()
    for column in ("attributes", "dimensions"):
        kind = types.get(column)
        if kind is None or kind.startswith("MAP("):
            continue
        if kind not in ("VARCHAR", "JSON"):
            raise ValueError(f"column {column} has type {kind}; expected a MAP or JSON object text")
        json_columns.add(column)
    return json_columns


def _stage_parquet(con: duckdb.DuckDBPyConnection, path: Path, name: str, size: int) -> _Staged:
    """Parquet with MAP columns is read in place by the load's one INSERT; Parquet whose columns
    hold JSON text goes through the exact JSON parser into incoming_file."""
    rows = scalar(con, "select count(*) from read_parquet(?)", [str(path)])
    types = _parquet_columns(con, path)
    if not _json_text_columns(types, path):
        return _Staged(rows=rows, last_line=rows, byte_end=size,
                       columns=", ".join([*_parquet_select(types, set()), "cast(null as varchar) as parse_error",
                                          "cast(null as varchar) as raw_line"]),
                       relation="read_parquet(?, file_row_number = true)",
                       event_id=_parquet_text(types, "id"), params=(name, str(path)))
    _insert_chunk(con, _read_parquet_json_text(con, path, name), first=True)
    return _Staged(rows=rows, last_line=rows, byte_end=size)


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
