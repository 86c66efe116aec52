"""Reference CSVs (SPEC 3.1): checked row by row, then written to raw.<table> as text.

Unlike events, bad reference data cannot be given a status and set aside: an account with an
unparseable tax rate or overlapping plan assignments would produce a wrong invoice. So it stops
the run with every problem listed as `file: line N: column: message`.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import duckdb
import pyarrow as pa

from dagster_project.catalog import Catalog


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = "text"  # text | date | decimal | integer
    required: bool = True  # the value may not be blank
    optional_column: bool = False  # the header may leave the column out


TABLES: dict[str, tuple[Column, ...]] = {
    "customers": (Column("customer_id"), Column("name"), Column("email", required=False, optional_column=True),
                  Column("address", required=False, optional_column=True)),
    "accounts": (Column("account_id"), Column("customer_id"), Column("name", required=False),
                 Column("tax_rate", "decimal", required=False, optional_column=True)),
    "plan_assignments": (Column("account_id"), Column("price_plan"), Column("start_date", "date"),
                         Column("end_date", "date", required=False, optional_column=True)),
    "license_updates": (Column("account_id"), Column("billable_item"), Column("quantity", "decimal"),
                        Column("effective_date", "date")),
    "credit_grants": (Column("grant_id"), Column("account_id"), Column("amount", "decimal"),
                      Column("applies_to", required=False, optional_column=True), Column("granted_date", "date"),
                      Column("expiry_date", "date", required=False, optional_column=True),
                      Column("priority", "integer", required=False, optional_column=True)),
    "wallet_topups": (Column("topup_id"), Column("account_id"), Column("amount", "decimal"), Column("date", "date")),
}
_KEYS = {"customers": "customer_id", "accounts": "account_id", "credit_grants": "grant_id", "wallet_topups": "topup_id"}


class ReferenceDataError(Exception):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid reference data:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass
class Table:
    name: str
    header: list[str]
    rows: list[dict[str, str | None]]
    lines: list[int]

    @property
    def file(self) -> str:
        return f"{self.name}.csv"

    def numbered(self):
        """(row, line number in the file) pairs."""
        return zip(self.rows, self.lines, strict=True)


def read_reference_data(data_dir: Path, catalog: Catalog) -> dict[str, Table]:
    """Read and check every reference CSV; absent files are empty tables."""
    problems: list[str] = []
    tables = {name: _read_csv(data_dir / f"{name}.csv", name, columns, problems) for name, columns in TABLES.items()}
    _check_references(tables, catalog, problems)
    if problems:
        raise ReferenceDataError(problems)
    return tables


def write_reference_data(con: duckdb.DuckDBPyConnection, tables: dict[str, Table]) -> None:
    for name, table in tables.items():
        arrow = pa.table({col: pa.array([row.get(col) for row in table.rows], type=pa.string())
                          for col in table.header})
        con.register("reference_rows", arrow)
        try:
            con.execute(f"create or replace table raw.{name} as select * from reference_rows")
        finally:
            con.unregister("reference_rows")


def _read_csv(path: Path, name: str, columns: tuple[Column, ...], problems: list[str]) -> Table:
    expected = [c.name for c in columns]
    if not path.exists():
        return Table(name, expected, [], [])
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        file = f"{name}.csv"
        missing = [c.name for c in columns if not c.optional_column and c.name not in header]
        if missing:
            problems.append(f"{file}: header: missing column(s) {', '.join(missing)}")
            return Table(name, expected, [], [])
        if len(set(header)) != len(header):
            problems.append(f"{file}: header: duplicate column names")
            return Table(name, expected, [], [])
        full_header = header + [c.name for c in columns if c.name not in header]
        rows, lines = [], []
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                problems.append(f"{file}: line {line}: has {len(values)} fields, the header has {len(header)}")
                continue
            row = {h: (v.strip() or None) for h, v in zip(header, values, strict=True)}
            for column in columns:
                row.setdefault(column.name, None)
                problem = _check_value(column, row[column.name])
                if problem:
                    problems.append(f"{file}: line {line}: {column.name}: {problem}")
            rows.append(row)
            lines.append(line)
    return Table(name, full_header, rows, lines)


def _check_value(column: Column, value: str | None) -> str | None:
    if value is None:
        return "is required" if column.required else None
    try:
        if column.kind == "date":
            date.fromisoformat(value)
            if len(value) != 10:
                raise ValueError
        elif column.kind == "decimal":
            if not Decimal(value).is_finite():
                raise InvalidOperation
        elif column.kind == "integer":
            int(value)
    except (ValueError, InvalidOperation):
        expected = {"date": "a date (YYYY-MM-DD)", "decimal": "a decimal number", "integer": "an integer"}
        return f"'{value}' is not {expected[column.kind]}"
    return None


def _below(value: str | None, bound: int, or_equal: bool = False) -> bool:
    """True when value is a number below bound (or equal to it); unparseable values are reported elsewhere."""
    try:
        number = Decimal(value) if value is not None else None
    except InvalidOperation:
        return False
    if number is None or not number.is_finite():
        return False
    return number < bound or (or_equal and number == bound)


def _check_references(tables: dict[str, Table], catalog: Catalog, problems: list[str]) -> None:
    for name, key in _KEYS.items():
        table, seen = tables[name], set()
        for row, line in table.numbered():
            if row[key] in seen:
                problems.append(f"{table.file}: line {line}: {key}: duplicate '{row[key]}'")
            seen.add(row[key])
    customers = {r["customer_id"] for r in tables["customers"].rows}
    accounts = {r["account_id"] for r in tables["accounts"].rows}

    def check_account(table: Table, row: dict, line: int) -> None:
        if row["account_id"] not in accounts:
            problems.append(f"{table.file}: line {line}: account_id: unknown account '{row['account_id']}'")

    for row, line in tables["accounts"].numbered():
        if row["customer_id"] not in customers:
            problems.append(f"accounts.csv: line {line}: customer_id: unknown customer '{row['customer_id']}'")
        if _below(row["tax_rate"], 0):
            problems.append(f"accounts.csv: line {line}: tax_rate: must not be negative")

    assignments = tables["plan_assignments"]
    by_account: dict[str, list[tuple[date, date | None, int]]] = {}
    for row, line in assignments.numbered():
        check_account(assignments, row, line)
        if row["price_plan"] not in catalog.price_plans:
            problems.append(f"plan_assignments.csv: line {line}: price_plan: unknown price plan '{row['price_plan']}'")
        if _check_value(Column("start_date", "date"), row["start_date"]) or \
                _check_value(Column("end_date", "date", required=False), row["end_date"]):
            continue
        start = date.fromisoformat(row["start_date"])
        end = date.fromisoformat(row["end_date"]) if row["end_date"] else None
        if end is not None and end <= start:
            problems.append(f"plan_assignments.csv: line {line}: end_date: must be after start_date ({start})")
            continue
        by_account.setdefault(row["account_id"], []).append((start, end, line))
    for account, spans in by_account.items():
        spans.sort()
        for (_, end_a, line_a), (start_b, _, line_b) in zip(spans, spans[1:], strict=False):
            if end_a is None or end_a > start_b:
                problems.append(f"plan_assignments.csv: line {line_b}: start_date: overlaps the assignment of "
                                f"account '{account}' on line {line_a}")

    licenses = tables["license_updates"]
    for row, line in licenses.numbered():
        check_account(licenses, row, line)
        item = catalog.billable_items.get(row["billable_item"])
        if item is None or item.type != "license":
            problems.append(f"license_updates.csv: line {line}: billable_item: '{row['billable_item']}' is not a "
                            f"license billable item")
        if _below(row["quantity"], 0):
            problems.append(f"license_updates.csv: line {line}: quantity: must not be negative")

    grants = tables["credit_grants"]
    for row, line in grants.numbered():
        check_account(grants, row, line)
        applies_to = row["applies_to"] or "all"
        if applies_to != "all":
            for item in applies_to.split(";"):
                if item.strip() not in catalog.billable_items:
                    problems.append(f"credit_grants.csv: line {line}: applies_to: unknown billable item '{item}'")
        if _below(row["amount"], 0, or_equal=True):
            problems.append(f"credit_grants.csv: line {line}: amount: must be greater than 0")

    topups = tables["wallet_topups"]
    for row, line in topups.numbered():
        check_account(topups, row, line)
        if _below(row["amount"], 0, or_equal=True):
            problems.append(f"wallet_topups.csv: line {line}: amount: must be greater than 0")
