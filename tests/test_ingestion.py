"""Event loading: exact decimals, nothing lost, each file once, first occurrence of an id wins."""
from __future__ import annotations

import json
from datetime import datetime

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dagster_project.ingestion.events import load_new_events
from dagster_project.warehouse import connect, ensure_tables


@pytest.fixture
def warehouse(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        ensure_tables(con)
        yield con


def event(event_id, amount, **extra):
    return json.dumps({"id": event_id, "schema": "s", "account_id": "a", "timestamp": "2026-10-01T00:00:00Z",
                       "attributes": {"amount": amount}, **extra})


def rows(con, columns="event_id, parse_error, is_duplicate, duplicate_payload_differs"):
    return con.execute(f"select {columns} from raw.events order by load_seq").fetchall()


def test_numbers_keep_their_exact_decimal_text(tmp_path, warehouse):
    events = tmp_path / "events"
    events.mkdir()
    (events / "a.jsonl").write_text('{"id": "e1", "attributes": {"x": 123456789.123456789, "y": 0.1, "z": "19.99", '
                                    '"n": 12345678901234567890, "b": true, "o": {"k": 1}, "gone": null}}\n')
    load_new_events(warehouse, events)
    [(attributes,)] = rows(warehouse, "attributes")
    assert attributes == {"b": "true", "n": "12345678901234567890", "o": '{"k": "1"}', "x": "123456789.123456789",
                          "y": "0.1", "z": "19.99"}


def test_unreadable_lines_are_kept_with_a_reason(tmp_path, warehouse):
    events = tmp_path / "events"
    events.mkdir()
    (events / "a.jsonl").write_text(event("e1", 1) + "\n{not json\n\n[1, 2]\n"
                                    + json.dumps({"id": "e2", "attributes": [1]}) + "\n")
    report = load_new_events(warehouse, events)
    assert report.events_loaded == 4  # the blank line carries no event
    assert rows(warehouse, "line_number, event_id, parse_error") == [
        (1, "e1", None), (2, None, "unparseable JSON line"), (4, None, "line is not a JSON object"),
        (5, "e2", "attributes is not a JSON object")]


def test_each_file_is_loaded_once_in_name_order_and_the_first_id_wins(tmp_path, warehouse):
    events = tmp_path / "events"
    events.mkdir()
    (events / "b.jsonl").write_text(event("e1", 2) + "\n" + event("e2", 1) + "\n")
    (events / "a.jsonl").write_text(event("e1", 1) + "\n" + event("e1", 1) + "\n")
    first = load_new_events(warehouse, events)
    assert [name for name, _ in first.files] == ["a.jsonl", "b.jsonl"]
    assert rows(warehouse) == [("e1", None, False, False), ("e1", None, True, False),
                               ("e1", None, True, True), ("e2", None, False, False)]
    assert load_new_events(warehouse, events).batch_id is None  # nothing new: nothing loaded
    (events / "c.jsonl").write_text(event("e2", 1) + "\n" + event("e3", 1) + "\n")
    third = load_new_events(warehouse, events)
    assert third.batch_id == 2 and third.duplicates == 1
    assert rows(warehouse)[-2:] == [("e2", None, True, False), ("e3", None, False, False)]


def test_parquet_with_map_columns_and_with_json_text(tmp_path, warehouse):
    events = tmp_path / "events"
    events.mkdir()
    duckdb.sql(f"""copy (select 'p1' as id, 's' as schema, 'a' as account_id,
                              timestamptz '2026-10-05 10:30:00+02' as timestamp,
                              map(['amount'], [cast('19.99' as decimal(10, 2))]) as attributes,
                              map(['mode'], ['card']) as dimensions)
                   to '{events / "m.parquet"}' (format parquet)""")
    table = pa.table({"id": ["p2"], "schema": ["s"], "account_id": ["a"], "timestamp": ["2026-10-05T10:30:00Z"],
                      "attributes": ['{"amount": 0.1000000000000000055511151231257827}'],
                      "dimensions": ['{"mode": "ach"}']})
    pq.write_table(table, events / "t.parquet")
    load_new_events(warehouse, events)
    # a typed timestamp is kept as its instant in UTC; text as it was sent
    assert rows(warehouse, "event_id, event_timestamp, event_timestamp_utc, attributes, dimensions") == [
        ("p1", None, datetime(2026, 10, 5, 8, 30), {"amount": "19.99"}, {"mode": "card"}),
        ("p2", "2026-10-05T10:30:00Z", None, {"amount": "0.1000000000000000055511151231257827"}, {"mode": "ach"}),
    ]


def test_parquet_timestamps_without_a_zone_are_utc_and_other_types_stay_text(tmp_path, warehouse):
    events = tmp_path / "events"
    events.mkdir()
    duckdb.sql(f"""copy (select * from (values ('n1', timestamp '2026-10-05 10:30:00.123456'),
                                                ('n2', null)) as t(id, timestamp))
                   to '{events / "a.parquet"}' (format parquet)""")
    duckdb.sql(f"""copy (select 'd1' as id, date '2026-10-05' as timestamp)
                   to '{events / "b.parquet"}' (format parquet)""")
    load_new_events(warehouse, events)
    assert rows(warehouse, "event_id, event_timestamp, event_timestamp_utc") == [
        ("n1", None, datetime(2026, 10, 5, 10, 30, 0, 123456)), ("n2", None, None), ("d1", "2026-10-05", None)]


def test_duplicates_in_parquet_are_compared_with_the_first_occurrence_within_and_across_loads(tmp_path, warehouse):
    events = tmp_path / "events"
    events.mkdir()
    duckdb.sql(f"""copy (select id, 's' as schema, 'a' as account_id, '2026-10-01T00:00:00Z' as timestamp,
                               map(['amount'], [amount]) as attributes, map()::map(varchar, varchar) as dimensions
                        from (values ('p1', '1'), ('p2', '5'), ('p1', '1'), ('p2', '6'), ('p3', '7'), ('p1', '2'))
                             as t(id, amount))
                   to '{events / "a.parquet"}' (format parquet)""")
    first = load_new_events(warehouse, events)
    assert first.duplicates == 3
    # p1 again with its payload, p2 again with another; p3 is new
    assert rows(warehouse, "line_number, event_id, is_duplicate, duplicate_payload_differs") == [
        (1, "p1", False, False), (2, "p2", False, False), (3, "p1", True, False), (4, "p2", True, True),
        (5, "p3", False, False), (6, "p1", True, True)]
    (events / "b.jsonl").write_text(event("p3", "7") + "\n" + event("p2", "5") + "\n" + event("p3", "8") + "\n")
    second = load_new_events(warehouse, events)
    assert second.duplicates == 3
    assert rows(warehouse, "event_id, is_duplicate, duplicate_payload_differs")[-3:] == [
        ("p3", True, False), ("p2", True, False), ("p3", True, True)]


def test_a_byte_order_mark_and_a_line_that_is_not_utf8(tmp_path, warehouse):
    events = tmp_path / "events"
    events.mkdir()
    (events / "a.jsonl").write_bytes(b"\xef\xbb\xbf" + event("e1", 1).encode() + b"\n"
                                     + event("e2", 2).encode().replace(b'"s"', b'"caf\xe9"') + b"\n")
    load_new_events(warehouse, events)
    assert rows(warehouse, "line_number, event_id, parse_error") == [
        (1, "e1", None), (2, None, "line is not valid UTF-8")]


def test_a_file_that_grew_has_its_new_lines_loaded_once_numbered_on(tmp_path, warehouse):
    events = tmp_path / "events"
    events.mkdir()
    path = events / "live.jsonl"
    path.write_text(event("e1", 1) + "\n" + event("e2", 2) + "\n")
    assert load_new_events(warehouse, events).events_loaded == 2
    with path.open("a") as handle:
        handle.write(event("e3", 3) + "\n" + event("e1", 9) + "\n")
    grown = load_new_events(warehouse, events)
    assert [(load.name, load.first_line, load.last_line, load.appended) for load in grown.loads] == [
        ("live.jsonl", 3, 4, True)]
    assert grown.duplicates == 1
    assert rows(warehouse, "line_number, event_id, is_duplicate") == [
        (1, "e1", False), (2, "e2", False), (3, "e3", False), (4, "e1", True)]
    assert load_new_events(warehouse, events).batch_id is None  # each line once


def test_an_incomplete_last_line_waits_until_it_is_complete(tmp_path, warehouse):
    events = tmp_path / "events"
    events.mkdir()
    path = events / "live.jsonl"
    path.write_text(event("e1", 1) + "\n" + event("e2", 2)[:20])
    first = load_new_events(warehouse, events)
    assert first.events_loaded == 1
    assert first.notes == ["events/live.jsonl: line 2 is not complete yet; it will be loaded once it is"]
    path.write_text(event("e1", 1) + "\n" + event("e2", 2) + "\n")
    assert [(load.first_line, load.last_line) for load in load_new_events(warehouse, events).loads] == [(2, 2)]
    assert rows(warehouse, "event_id") == [("e1",), ("e2",)]


def test_a_file_whose_loaded_part_changed_is_refused_and_nothing_of_it_loads(tmp_path, warehouse):
    events = tmp_path / "events"
    events.mkdir()
    path = events / "a.jsonl"
    path.write_text(event("e1", 1) + "\n")
    load_new_events(warehouse, events)
    path.write_text(event("e1", 5) + "\n" + event("e2", 2) + "\n")
    report = load_new_events(warehouse, events)
    assert report.batch_id is None
    assert report.problems == [
        "events/a.jsonl: changed after it was loaded (its first 113 bytes are not what was loaded); nothing more is "
        "loaded from it: restore it, or put corrections in a new file"]
    assert rows(warehouse, "event_id") == [("e1",)]


def test_a_touched_file_is_not_read_again(tmp_path, warehouse):
    events = tmp_path / "events"
    events.mkdir()
    path = events / "a.jsonl"
    path.write_text(event("e1", 1) + "\n")
    load_new_events(warehouse, events)
    path.write_text(path.read_text())  # same bytes, new mtime
    report = load_new_events(warehouse, events)
    assert (report.batch_id, report.problems) == (None, [])
