"""Reference data: a bad row holds back its own account and nobody else; ids that name folders are
safe; the data directory is checked before anything happens."""
from __future__ import annotations

import shutil

import pytest

from dagster_project.catalog import load_catalog
from dagster_project.ingestion.reference_data import (
    DataDirectoryError,
    ReferenceDataError,
    read_reference_data,
    safe_identifier_problem,
    write_reference_data,
)
from dagster_project.warehouse import connect, ensure_tables
from tests.conftest import CASES

CASE = CASES / "04_credits_commitment_tax"


@pytest.fixture
def data(tmp_path):
    target = tmp_path / "data"
    shutil.copytree(CASE / "data", target, ignore=shutil.ignore_patterns("events"))
    return target


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(CASE / "pricing_config")


def append(path, text):
    path.write_text(path.read_text() + text)


@pytest.mark.parametrize("account_id", ["..", "a/b", "a\x00b", ".hidden", "x" * 129, "a b", "a\\b"])
def test_an_id_that_cannot_name_a_folder_is_refused(account_id):
    assert safe_identifier_problem(account_id) is not None


@pytest.mark.parametrize("account_id", ["acct_42", "ACME-EU.2", "kunde_müller", "a@b+c=d", "x" * 128])
def test_ordinary_ids_are_safe(account_id):
    assert safe_identifier_problem(account_id) is None


def test_bad_rows_hold_back_their_own_accounts_only(data, catalog):
    append(data / "customers.csv", "cus_x,Customer X,x@example.com,\n")
    append(data / "accounts.csv", "..,cus_x,Dot dot,\nacct_nul\x00,cus_x,Nul,\nacct_tax,cus_x,Tax,abc\n"
                                  "acct_ok,cus_x,Fine,\n")
    append(data / "plan_assignments.csv", "acct_tax,committed,2026-10-01,\nacct_ok,committed,2026-10-01,\n"
                                          "acct_ghost,committed,2026-10-01,\n")
    loaded = read_reference_data(data, catalog)
    lines = [str(problem) for problem in loaded.problems]
    assert "accounts.csv: line 4: account_id: '..' cannot name a folder of invoices: use letters, digits and " \
           ". _ - @ + = only, at most 128 characters, not starting with '.'" in lines
    assert any(line.startswith("accounts.csv: line 5: account_id: 'acct_nul\\x00' cannot name") for line in lines)
    assert "accounts.csv: line 6: tax_rate: 'abc' is not a decimal number" in lines
    assert "plan_assignments.csv: line 6: account_id: unknown account 'acct_ghost'; the row is set aside" in lines
    assert sorted(loaded.held) == ["..", "acct_nul\x00", "acct_tax"]
    billed = [row["account_id"] for row in loaded.clean_rows("accounts")]
    assert "acct_ok" in billed and "acct_a" in billed and "acct_tax" not in billed
    assert [row["account_id"] for row in loaded.clean_rows("plan_assignments")].count("acct_ok") == 1
    assert "acct_ghost" not in [row["account_id"] for row in loaded.clean_rows("plan_assignments")]


def test_a_held_account_keeps_its_last_good_rows(tmp_path, data, catalog):
    with connect(tmp_path / "w.duckdb") as con:
        ensure_tables(con)
        write_reference_data(con, read_reference_data(data, catalog))
        before = con.execute("select * from raw.accounts where account_id = 'acct_b'").fetchall()
        (data / "accounts.csv").write_text((data / "accounts.csv").read_text().replace("Initech Main,0.10",
                                                                                       "Initech Main,-1"))
        held = read_reference_data(data, catalog)
        assert list(held.held) == ["acct_b"]
        write_reference_data(con, held)
        assert con.execute("select * from raw.accounts where account_id = 'acct_b'").fetchall() == before
        assert con.execute("select problem, account_id from raw.reference_problems").fetchall() == [
            ("accounts.csv: line 3: tax_rate: must not be negative", "acct_b")]


def test_a_duplicate_grant_holds_the_accounts_of_both_rows(data, catalog):
    text = (data / "credit_grants.csv").read_text()
    first_grant = text.splitlines()[1]
    append(data / "credit_grants.csv", first_grant.replace("acct_a", "acct_b") + "\n")
    assert sorted(read_reference_data(data, catalog).held) == ["acct_a", "acct_b"]


def test_the_data_directory_must_exist_and_hold_the_three_files(tmp_path, catalog):
    with pytest.raises(DataDirectoryError, match=f"data directory {tmp_path / 'nope'} does not exist"):
        read_reference_data(tmp_path / "nope", catalog)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataDirectoryError, match="has no customers.csv, accounts.csv, plan_assignments.csv"):
        read_reference_data(tmp_path / "empty", catalog)


def test_a_csv_that_is_not_utf8_stops_the_run_naming_the_file(data, catalog):
    (data / "customers.csv").write_bytes("customer_id,name\ncus_a,Caf\xe9\n".encode("latin-1"))
    with pytest.raises(ReferenceDataError) as caught:
        read_reference_data(data, catalog)
    assert caught.value.problems == ["customers.csv: line 2: not valid UTF-8 (byte 0xe9); save the file as UTF-8"]


def test_a_byte_order_mark_opens_a_csv_without_harm(data, catalog):
    path = data / "accounts.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    loaded = read_reference_data(data, catalog)
    assert loaded.problems == []
    assert [row["account_id"] for row in loaded.clean_rows("accounts")] == ["acct_a", "acct_b"]
