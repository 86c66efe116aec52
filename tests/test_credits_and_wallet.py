"""Credits and wallets (README): draw order, windows, scoping, and conservation of money."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from dagster_project.invoicing.credits import draw_credits, draw_wallet
from dagster_project.money import WORK

GRANT_SCHEMA = {"grant_id": pl.String, "account_id": pl.String, "amount": WORK, "applies_to": pl.String,
                "granted_date": pl.Date, "expiry_date": pl.Date, "priority": pl.Int32}
NOTHING_DRAWN = pl.DataFrame(schema={"grant_id": pl.String, "amount": WORK})


def invoices(*rows) -> pl.DataFrame:
    """rows: (invoice_id, account_id, period_end_date); issued on the period end, kind cycle."""
    return pl.DataFrame([{"invoice_id": i, "account_id": a, "kind": "cycle", "issue_date": end, "period_end_date": end}
                         for i, a, end in rows])


def lines(*rows) -> pl.DataFrame:
    """rows: (invoice_id, line_number, billable_item, amount)."""
    return pl.DataFrame([{"invoice_id": i, "line_number": n, "billable_item": item, "amount": Decimal(amount)}
                         for i, n, item, amount in rows], schema_overrides={"amount": WORK})


def grants(*rows) -> pl.DataFrame:
    """rows: (grant_id, account_id, amount, applies_to, granted_date, expiry_date, priority)."""
    return pl.DataFrame([dict(zip(GRANT_SCHEMA, (g, a, Decimal(amt), to, start, end, prio), strict=True))
                         for g, a, amt, to, start, end, prio in rows], schema=GRANT_SCHEMA)


def drawn(result) -> list[tuple[str, str, Decimal]]:
    return [(i, g, a.normalize()) for i, g, a in result.draws.select("invoice_id", "grant_id", "amount").iter_rows()]


OCT, NOV, DEC = date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1)


def test_priority_first_then_carry_the_rest_into_the_next_invoice():
    # case 04: promo (priority 1, api_calls only) before welcome (priority 2, all)
    result = draw_credits(
        invoices(("oct", "a", NOV), ("nov", "a", DEC)),
        lines(("oct", 1, "api_calls", "120"), ("nov", 1, "api_calls", "50"), ("nov", 2, None, "50")),
        grants(("welcome", "a", "130", "all", date(2026, 9, 20), None, 2),
               ("promo", "a", "15", "api_calls", OCT, NOV, 1)),
        NOTHING_DRAWN)
    assert drawn(result) == [("oct", "promo", Decimal(15)), ("oct", "welcome", Decimal(105)),
                             ("nov", "welcome", Decimal(25))]


def test_a_grant_pays_for_a_period_ending_exactly_on_its_expiry_but_not_after():
    window = grants(("g", "a", "100", "all", OCT, NOV, 0))
    on_expiry = draw_credits(invoices(("oct", "a", NOV)), lines(("oct", 1, "x", "10")), window, NOTHING_DRAWN)
    assert drawn(on_expiry) == [("oct", "g", Decimal(10))]
    after = draw_credits(invoices(("nov", "a", NOV + timedelta(days=1))), lines(("nov", 1, "x", "10")), window,
                         NOTHING_DRAWN)
    assert drawn(after) == []
    # the granted date itself is excluded: (granted_date, expiry_date]
    on_grant_day = draw_credits(invoices(("x", "a", OCT)), lines(("x", 1, "x", "10")), window, NOTHING_DRAWN)
    assert drawn(on_grant_day) == []


def test_credits_larger_than_the_invoice_pay_it_all_and_keep_the_rest():
    result = draw_credits(invoices(("oct", "a", NOV)), lines(("oct", 1, "x", "40"), ("oct", 2, "y", "2.50")),
                          grants(("big", "a", "1000", "all", OCT, None, 0)), NOTHING_DRAWN)
    assert drawn(result) == [("oct", "big", Decimal("42.5"))]
    assert result.lines_remaining["remaining"].sum() == 0


def test_a_scoped_grant_pays_only_its_lines_and_never_more_than_the_invoice():
    result = draw_credits(invoices(("oct", "a", NOV)),
                          lines(("oct", 1, "seats", "30"), ("oct", 2, "fee", "20"), ("oct", 3, None, "-45")),
                          grants(("seats_only", "a", "100", "seats", OCT, None, 0),
                                 ("anything", "a", "100", "all", OCT, None, 1)),
                          NOTHING_DRAWN)
    # seats_only pays the 30 of seats but the invoice only owes 5 after the -45 rule line
    assert drawn(result) == [("oct", "seats_only", Decimal(5))]


def test_ties_break_on_expiry_then_grant_date_then_id():
    result = draw_credits(invoices(("oct", "a", NOV)), lines(("oct", 1, "x", "10")),
                          grants(("b_never", "a", "5", "all", OCT - timedelta(days=9), None, 0),
                                 ("c_soon", "a", "5", "all", OCT - timedelta(days=1), NOV, 0),
                                 ("a_soon_older", "a", "5", "all", OCT - timedelta(days=5), NOV, 0)),
                          NOTHING_DRAWN)
    assert drawn(result) == [("oct", "a_soon_older", Decimal(5)), ("oct", "c_soon", Decimal(5))]


def test_draws_made_by_final_invoices_are_spent():
    result = draw_credits(invoices(("nov", "a", DEC)), lines(("nov", 1, "x", "80")),
                          grants(("g", "a", "100", "all", OCT, None, 0)),
                          pl.DataFrame({"grant_id": ["g"], "amount": [Decimal(70)]}, schema_overrides={"amount": WORK}))
    assert drawn(result) == [("nov", "g", Decimal(30))]


def test_the_wallet_pays_from_top_ups_made_by_the_issue_date():
    bills = invoices(("oct", "a", NOV), ("nov", "a", DEC)).with_columns(
        pl.Series("total_amount", [Decimal(150), Decimal(150)], dtype=WORK))
    topups = pl.DataFrame({"account_id": ["a", "a"], "amount": [Decimal(100), Decimal(100)],
                           "topup_date": [NOV, NOV + timedelta(days=10)]}, schema_overrides={"amount": WORK})
    applied = draw_wallet(bills, topups, pl.DataFrame(schema={"account_id": pl.String, "amount": WORK}))
    assert dict(applied.iter_rows()) == {"oct": Decimal(100), "nov": Decimal(100)}


# --- conservation: hypothesis ---------------------------------------------------------------------

money = st.decimals(min_value=0, max_value=500, places=2)
day = st.integers(min_value=0, max_value=120).map(lambda n: date(2026, 8, 1) + timedelta(days=n))


@st.composite
def credit_scenarios(draw):
    accounts = ["a", "b"]
    invoice_rows, line_rows = [], []
    for n in range(draw(st.integers(min_value=1, max_value=6))):
        invoice_id = f"inv{n}"
        invoice_rows.append((invoice_id, draw(st.sampled_from(accounts)), draw(day)))
        for line_number in range(1, draw(st.integers(min_value=1, max_value=3)) + 1):
            amount = draw(st.decimals(min_value=-50, max_value=300, places=2))
            line_rows.append((invoice_id, line_number, draw(st.sampled_from(["x", "y", None])), str(amount)))
    grant_rows = []
    for n in range(draw(st.integers(min_value=0, max_value=5))):
        start = draw(day)
        expiry = draw(st.one_of(st.none(), st.integers(min_value=1, max_value=90).map(
            lambda d, s=start: s + timedelta(days=d))))
        grant_rows.append((f"g{n}", draw(st.sampled_from(accounts)), str(draw(money.filter(lambda m: m > 0))),
                           draw(st.sampled_from(["all", "x", "y", "x;y"])), start, expiry,
                           draw(st.integers(min_value=0, max_value=3))))
    return invoices(*invoice_rows), lines(*line_rows), grants(*grant_rows)


@settings(max_examples=60, deadline=None)
@given(credit_scenarios())
def test_credits_neither_create_nor_lose_money(scenario):
    bills, bill_lines, granted = scenario
    result = draw_credits(bills, bill_lines, granted, NOTHING_DRAWN)
    by_grant = result.draws.group_by("grant_id").agg(pl.col("amount").sum())
    for grant_id, total in by_grant.iter_rows():
        assert total <= granted.filter(pl.col("grant_id") == grant_id)["amount"].item()
    # what each invoice drew, plus what its lines still owe, is what its lines owed
    owed = bill_lines.group_by("invoice_id").agg(pl.col("amount").sum().alias("owed"))
    credited = result.draws.group_by("invoice_id").agg(pl.col("amount").sum().alias("credited"))
    left = result.lines_remaining.group_by("invoice_id").agg(pl.col("remaining").sum().alias("left"))
    check = owed.join(credited, on="invoice_id", how="left").join(left, on="invoice_id", how="left")
    for _, owed_amount, credited_amount, left_amount in check.iter_rows():
        credited_amount = credited_amount or Decimal(0)
        assert credited_amount + left_amount == owed_amount
        assert Decimal(0) <= credited_amount <= max(owed_amount, Decimal(0))
    assert (result.draws["amount"] > 0).all()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), day, money), min_size=1, max_size=6),
       st.lists(st.tuples(st.sampled_from(["a", "b"]), day, money), max_size=5))
def test_the_wallet_never_pays_more_than_was_topped_up(bill_rows, topup_rows):
    bills = pl.DataFrame([{"invoice_id": f"i{n}", "account_id": a, "kind": "cycle", "issue_date": d,
                           "total_amount": t} for n, (a, d, t) in enumerate(bill_rows)],
                         schema_overrides={"total_amount": WORK})
    topups = pl.DataFrame([{"account_id": a, "amount": m, "topup_date": d} for a, d, m in topup_rows],
                          schema={"account_id": pl.String, "amount": WORK, "topup_date": pl.Date})
    applied = draw_wallet(bills, topups, pl.DataFrame(schema={"account_id": pl.String, "amount": WORK}))
    joined = bills.join(applied, on="invoice_id")
    assert (joined["wallet_applied_amount"] <= joined["total_amount"]).all()
    assert (joined["wallet_applied_amount"] >= 0).all()
    for account in ("a", "b"):
        paid = joined.filter(pl.col("account_id") == account)
        # in issue order, what the wallet paid so far never exceeds what was topped up by then
        for issue_date in paid["issue_date"].unique().to_list():
            so_far = paid.filter(pl.col("issue_date") <= issue_date)["wallet_applied_amount"].sum()
            topped = topups.filter((pl.col("account_id") == account) & (pl.col("topup_date") <= issue_date))
            assert so_far <= (topped["amount"].sum() if topped.height else 0)
