"""Reference CSVs (README): checked row by row, then written to raw.<table> as text.

A bad row must never stop anyone else's billing. A problem in a row that belongs to an account
(its accounts.csv row, its customer, its assignments, licenses, credit grants or top-ups) *holds*
that account: it is not billed in this run and keeps its last good reference rows, its invoices
and its published files until the row is fixed. A row naming an account that does not exist is
set aside. Every problem reads `file: line N: column: message`. Only what makes a whole file
unusable (not UTF-8, a missing column) or the data directory itself stops the run.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import duckdb
import pyarrow as pa

from dagster_project.catalog import Catalog
from dagster_project.catalog.models import MAX_PAYMENT_TERMS_DAYS
from dagster_project.limits import decimal_problem

REQUIRED_FILES = ("customers.csv", "accounts.csv", "plan_assignments.csv")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = "text"  # text | date | decimal | integer
    required: bool = True  # the value may not be blank
    optional_column: bool = False  # the header may leave the column out


TABLES: dict[str, tuple[Column, ...]] = {
    "customers": (Column("customer_id"), Column("name"), Column("email", required=False, optional_column=True),
                  Column("address", required=False, optional_column=True),
                  Column("tax_id", required=False, optional_column=True),
                  Column("payment_terms_days", "integer", required=False, optional_column=True)),
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
# Tables whose rows belong to one account (held accounts keep their previous rows in these).
ACCOUNT_TABLES = ("accounts", "plan_assignments", "license_updates", "credit_grants", "wallet_topups")

# An account id names the folder of its published invoices, so it must be a safe file name.
_SAFE_ID = re.compile(r"(?!\.)[\w.@+=-]{1,128}")
SAFE_ID_RULE = "letters, digits and . _ - @ + = only, at most 128 characters, not starting with '.'"


class DataDirectoryError(Exception):
    """The data directory itself is unusable: nothing is read, nothing changes."""


class ReferenceDataError(Exception):
    """Problems that stop the run (a file that cannot be read as a whole, a removed account)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    column: str | None
    message: str
    account_id: str | None = None  # the account it holds back, if any

    def __str__(self) -> str:
        where = [self.file] + ([f"line {self.line}"] if self.line else []) + ([self.column] if self.column else [])
        return ": ".join(where + [self.message])


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


@dataclass
class ReferenceData:
    tables: dict[str, Table]                     # every row as read (clean or not)
    problems: list[Problem] = field(default_factory=list)

    @property
    def held(self) -> dict[str, list[Problem]]:
        """Accounts held back by a problem, with their problems."""
        out: dict[str, list[Problem]] = {}
        for problem in self.problems:
            if problem.account_id is not None:
                out.setdefault(problem.account_id, []).append(problem)
        return out

    def clean_rows(self, name: str) -> list[dict]:
        """The rows of a table that can be billed: not set aside, not of a held account or customer."""
        held = self.held
        bad_customers = self._bad_customers()
        table = self.tables[name]
        set_aside = {(p.file, p.line) for p in self.problems if p.account_id is None}
        rows = []
        for row, line in table.numbered():
            if (table.file, line) in set_aside:
                continue
            if name == "customers" and row.get("customer_id") in bad_customers:
                continue
            if name in ACCOUNT_TABLES and row.get("account_id") in held:
                continue
            rows.append(row)
        return rows

    def _bad_customers(self) -> set[str]:
        return {row["customer_id"] for row, line in self.tables["customers"].numbered()
                if any(p.file == "customers.csv" and p.line == line for p in self.problems)
                and row.get("customer_id")}


def check_data_directory(data_dir: Path) -> None:
    """A data directory must exist and hold the three files every billing needs."""
    if not data_dir.is_dir():
        raise DataDirectoryError(f"data directory {data_dir} does not exist (--data / TALLY_DATA_DIR)")
    missing = [name for name in REQUIRED_FILES if not (data_dir / name).is_file()]
    if missing:
        raise DataDirectoryError(f"data directory {data_dir} has no {', '.join(missing)}: a data directory "
                                 f"needs {', '.join(REQUIRED_FILES)} (--data / TALLY_DATA_DIR)")


def read_reference_data(data_dir: Path, catalog: Catalog) -> ReferenceData:
    """Read and check every reference CSV; absent optional files are empty tables."""
    check_data_directory(data_dir)
    fatal: list[str] = []
    data = ReferenceData(tables={})
    for name, columns in TABLES.items():
        data.tables[name] = _read_csv(data_dir / f"{name}.csv", name, columns, data.problems, fatal)
    if fatal:
        raise ReferenceDataError(fatal)
    _check_rows(data, catalog)
    return data


def safe_identifier_problem(value: str) -> str | None:
    if _SAFE_ID.fullmatch(value):
        return None
    return f"{shown(value)} cannot name a folder of invoices: use {SAFE_ID_RULE}"


def shown(value: str) -> str:
    """A value quoted for a message, control characters escaped (a NUL byte shows as \\x00)."""
    return "'" + value.encode("unicode_escape").decode("ascii").replace("'", "\\'") + "'"


def _read_csv(path: Path, name: str, columns: tuple[Column, ...], problems: list[Problem],
              fatal: list[str]) -> Table:
    expected = [c.name for c in columns]
    file = f"{name}.csv"
    if not path.exists():
        return Table(name, expected, [], [])
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        fatal.append(f"{file}: line {line}: not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8")
        return Table(name, expected, [], [])
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(reader, [])]
    missing = [c.name for c in columns if not c.optional_column and c.name not in header]
    if missing:
        fatal.append(f"{file}: line 1: missing column(s) {', '.join(missing)}")
        return Table(name, expected, [], [])
    if len(set(header)) != len(header):
        fatal.append(f"{file}: line 1: duplicate column names")
        return Table(name, expected, [], [])
    full_header = header + [c.name for c in columns if c.name not in header]
    owner = "account_id" if "account_id" in header else None
    rows, lines = [], []
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        row = {h: (v.strip() or None) for h, v in zip(header, values, strict=False)}
        for column in full_header:
            row.setdefault(column, None)
        rows.append(row)
        lines.append(line)
        if len(values) != len(header):
            problems.append(Problem(file, line, None, f"has {len(values)} fields, the header has {len(header)}",
                                    row.get(owner) if owner else None))
            continue
        for column in columns:
            problem = _value_problem(column, row[column.name])
            if problem:
                problems.append(Problem(file, line, column.name, problem, row.get(owner) if owner else None))
    return Table(name, full_header, rows, lines)


def _value_problem(column: Column, value: str | None) -> str | None:
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
            return decimal_problem(value)
        elif column.kind == "integer":
            int(value)
    except (ValueError, InvalidOperation):
        expected = {"date": "a date (YYYY-MM-DD)", "decimal": "a decimal number", "integer": "an integer"}
        return f"{shown(value)} is not {expected[column.kind]}"
    return None


def _check_rows(data: ReferenceData, catalog: Catalog) -> None:
    tables, problems = data.tables, data.problems

    def add(table: Table, line: int, column: str | None, message: str, account: str | None) -> None:
        problems.append(Problem(table.file, line, column, message, account))

    customers = tables["customers"]
    _check_unique(customers, "customer_id", lambda row: None, add)
    for row, line in customers.numbered():
        if _outside_payment_terms(row["payment_terms_days"]):
            add(customers, line, "payment_terms_days", f"{shown(row['payment_terms_days'])} is not a number of "
                                                       f"days from 0 to {MAX_PAYMENT_TERMS_DAYS}", None)
    known_customers = {row["customer_id"] for row in customers.rows if row["customer_id"]}

    accounts = tables["accounts"]
    for row, line in accounts.numbered():
        account = row["account_id"]
        if account is None:
            continue  # reported as required; a row without an id holds nobody
        problem = safe_identifier_problem(account)
        if problem:
            add(accounts, line, "account_id", problem, account)
        if row["customer_id"] and row["customer_id"] not in known_customers:
            add(accounts, line, "customer_id", f"unknown customer {shown(row['customer_id'])}", account)
        if _below(row["tax_rate"], 0):
            add(accounts, line, "tax_rate", "must not be negative", account)
    _check_unique(accounts, "account_id", lambda row: row["account_id"], add)
    known_accounts = {row["account_id"] for row in accounts.rows if row["account_id"]}
    # an account whose customer row is bad is held too
    for row, line in customers.numbered():
        bad = [p for p in problems if p.file == "customers.csv" and p.line == line]
        if bad:
            for account_row, account_line in accounts.numbered():
                if account_row["customer_id"] == row["customer_id"] and account_row["account_id"]:
                    add(accounts, account_line, "customer_id",
                        f"its customer {shown(row['customer_id'])} has a bad row (customers.csv line {line})",
                        account_row["account_id"])

    def owner(table: Table, row: dict, line: int) -> str | None:
        """The row's account, or None (and the row set aside) when no such account exists."""
        account = row["account_id"]
        if account is None:
            return None
        if account not in known_accounts:
            add(table, line, "account_id", f"unknown account {shown(account)}; the row is set aside", None)
            return None
        return account

    assignments = tables["plan_assignments"]
    spans: dict[str, list[tuple[date, date | None, int]]] = {}
    for row, line in assignments.numbered():
        account = owner(assignments, row, line)
        if account is None:
            continue
        if row["price_plan"] and row["price_plan"] not in catalog.price_plans:
            add(assignments, line, "price_plan", f"unknown price plan {shown(row['price_plan'])}", account)
        if _value_problem(Column("start_date", "date"), row["start_date"]) or \
                _value_problem(Column("end_date", "date", required=False), row["end_date"]):
            continue
        start = date.fromisoformat(row["start_date"])
        end = date.fromisoformat(row["end_date"]) if row["end_date"] else None
        if end is not None and end <= start:
            add(assignments, line, "end_date", f"must be after start_date ({start})", account)
            continue
        spans.setdefault(account, []).append((start, end, line))
    for account, account_spans in spans.items():
        account_spans.sort()
        for (_, end_a, line_a), (start_b, _, line_b) in zip(account_spans, account_spans[1:], strict=False):
            if end_a is None or end_a > start_b:
                add(assignments, line_b, "start_date",
                    f"overlaps the assignment of account {shown(account)} on line {line_a}", account)

    licenses = tables["license_updates"]
    for row, line in licenses.numbered():
        account = owner(licenses, row, line)
        if account is None:
            continue
        item = catalog.billable_items.get(row["billable_item"] or "")
        if item is None or item.type != "license":
            add(licenses, line, "billable_item", f"{shown(row['billable_item'] or '')} is not a license billable item",
                account)
        if _below(row["quantity"], 0):
            add(licenses, line, "quantity", "must not be negative", account)

    grants = tables["credit_grants"]
    _check_unique(grants, "grant_id", lambda row: row["account_id"], add)
    for row, line in grants.numbered():
        account = owner(grants, row, line)
        if account is None:
            continue
        applies_to = row["applies_to"] or "all"
        if applies_to != "all":
            for item in applies_to.split(";"):
                if item.strip() not in catalog.billable_items:
                    add(grants, line, "applies_to", f"unknown billable item {shown(item)}", account)
        if _below(row["amount"], 0, or_equal=True):
            add(grants, line, "amount", "must be greater than 0", account)

    topups = tables["wallet_topups"]
    _check_unique(topups, "topup_id", lambda row: row["account_id"], add)
    for row, line in topups.numbered():
        account = owner(topups, row, line)
        if account is None:
            continue
        if _below(row["amount"], 0, or_equal=True):
            add(topups, line, "amount", "must be greater than 0", account)


def _check_unique(table: Table, key: str, account_of, add) -> None:
    first_line: dict[str, int] = {}
    for row, line in table.numbered():
        value = row[key]
        if value is None:
            continue
        if value in first_line:
            add(table, line, key, f"duplicate {shown(value)} (also on line {first_line[value]})", account_of(row))
            first = table.rows[table.lines.index(first_line[value])]
            add(table, first_line[value], key, f"duplicate {shown(value)} (also on line {line})", account_of(first))
        else:
            first_line[value] = line


def _outside_payment_terms(value: str | None) -> bool:
    """An integer that is not a whole number of days in range (one that is no integer at all is
    reported when the file is read)."""
    if value is None or _value_problem(Column("payment_terms_days", "integer"), value) is not None:
        return False
    return not re.fullmatch(r"[0-9]+", value) or int(value) > MAX_PAYMENT_TERMS_DAYS


def _below(value: str | None, bound: int, or_equal: bool = False) -> bool:
    """True when value is a number below bound (or equal to it); unparseable values are reported elsewhere."""
    try:
        number = Decimal(value) if value is not None else None
    except InvalidOperation:
        return False
    if number is None or not number.is_finite():
        return False
    return number < bound or (or_equal and number == bound)


# --- the warehouse -----------------------------------------------------------------------------------

def accounts_with_billing_history(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Accounts that committed billing history belongs to: final invoices, credit draws, wallet draws."""
    if not _table_exists(con, "billing", "invoices"):
        return {}
    rows = con.execute("""
        select account_id, 'final invoices' from billing.invoices where status = 'final' and is_committed
        union all
        select d.account_id, 'credit draws' from billing.credit_draws d
        join billing.invoices i using (invoice_id) where i.status = 'final' and i.is_committed
        union all
        select account_id, 'wallet entries' from billing.wallet_draws
    """).fetchall()
    history: dict[str, list[str]] = {}
    for account, kind in rows:
        if kind not in history.setdefault(account, []):
            history[account].append(kind)
    return history


def check_no_account_removed(con: duckdb.DuckDBPyConnection, data: ReferenceData) -> None:
    """An account with committed billing history may not vanish from accounts.csv: its final
    invoices, credit draws and wallet entries would lose their account."""
    listed = {row["account_id"] for row in data.tables["accounts"].rows if row["account_id"]}
    removed = [(account, kinds) for account, kinds in sorted(accounts_with_billing_history(con).items())
               if account not in listed]
    if removed:
        raise ReferenceDataError([
            f"accounts.csv: account {shown(account)} was removed but has {' and '.join(kinds)}; restore its row "
            f"(to stop billing it, end its plan with an end_date in plan_assignments.csv)"
            for account, kinds in removed])


def write_reference_data(con: duckdb.DuckDBPyConnection, data: ReferenceData) -> None:
    """Replace raw.<table> with the clean rows, keeping the previous rows of held accounts (and of
    customers with a bad row), and record every problem in raw.reference_problems."""
    held = sorted(data.held)
    bad_customers = sorted(data._bad_customers())
    for name, table in data.tables.items():
        rows = data.clean_rows(name)
        arrow = pa.table({col: pa.array([row.get(col) for row in rows], type=pa.string()) for col in table.header})
        con.register("reference_rows", arrow)
        try:
            kept = _previous_rows(con, name, held, bad_customers)
            if kept is None:
                con.execute(f"create or replace table raw.{name} as select * from reference_rows")
            else:
                con.execute(f"create or replace temp table kept_rows as {kept}")
                con.execute(f"create or replace table raw.{name} as "
                            f"select * from reference_rows union all by name select * from kept_rows")
                con.execute("drop table kept_rows")
        finally:
            con.unregister("reference_rows")
    problems = pa.table({
        "file_name": pa.array([p.file for p in data.problems], pa.string()),
        "line_number": pa.array([p.line for p in data.problems], pa.int64()),
        "column_name": pa.array([p.column for p in data.problems], pa.string()),
        "message": pa.array([p.message for p in data.problems], pa.string()),
        "account_id": pa.array([p.account_id for p in data.problems], pa.string()),
        "problem": pa.array([str(p) for p in data.problems], pa.string()),
    })
    con.register("problem_rows", problems)
    try:
        con.execute("create or replace table raw.reference_problems as select * from problem_rows")
    finally:
        con.unregister("problem_rows")


def _previous_rows(con: duckdb.DuckDBPyConnection, name: str, held: Iterable[str],
                   bad_customers: Iterable[str]) -> str | None:
    if not _table_exists(con, "raw", name):
        return None
    if name == "customers":
        keys, column = list(bad_customers), "customer_id"
    elif name in ACCOUNT_TABLES:
        keys, column = list(held), "account_id"
    else:
        return None
    if not keys:
        return None
    quoted = ", ".join("'" + key.replace("'", "''") + "'" for key in keys)
    return f"select * from raw.{name} where {column} in ({quoted})"


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(con.execute("select count(*) from information_schema.tables where table_schema = ? "
                            "and table_name = ?", [schema, table]).fetchall()[0][0])


def reference_fingerprint(data_dir: Path, catalog_fingerprint: str) -> str:
    """What the reference tables are computed from: the CSV files' bytes and the catalog. Equal to
    the last load's, the tables would come out the same, so the load can be skipped (100k accounts
    take seconds to check row by row)."""
    digest = hashlib.sha256(catalog_fingerprint.encode())
    for name in TABLES:
        path = data_dir / f"{name}.csv"
        digest.update(f"\0{name}\0".encode() + (path.read_bytes() if path.is_file() else b"-"))
    return digest.hexdigest()
