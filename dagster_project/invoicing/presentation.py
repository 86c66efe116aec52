"""What an invoice or note shows a customer: the document (its JSON) as text for one locale.

The HTML and the PDF templates both show this view and compute nothing themselves, so the two
always agree. Money is formatted by Babel for the document's currency and the configured locale,
with exactly the currency's minor-unit digits and never as -0.00; breakdown figures (tier
quantities, prorated amounts, prices per token) are rounded for display, where the JSON keeps
them exact. Documents written by older versions lack some fields (due_date, units): the view
leaves out what they do not have.
"""
from __future__ import annotations

import copy
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cache, lru_cache

from babel import Locale
from babel.dates import format_date
from babel.numbers import NumberPattern, get_currency_symbol

from dagster_project.money import minor_unit_digits

TITLES = {"credit_note": "Credit note", "debit_note": "Debit note"}
# quantities are shown with at most this many decimals, prices with at least this many significant digits
QUANTITY_DECIMALS = 4
PRICE_SIGNIFICANT_DIGITS = 4
# a line needs no breakdown when its unit price column already explains its amount
_SELF_EXPLAINED = frozenset({"per_unit", "percentage", "license_peak"})


@cache
def locale_of(name: str) -> Locale:
    """A Babel locale from its name, once: billing.yaml's locale is checked when it loads (money.is_known_locale)."""
    return Locale.parse(name)


def due_date(issue_date: date, payment_terms_days: int) -> date:
    return issue_date + timedelta(days=payment_terms_days)


# Documents repeat most of their texts (zero, prices, fees, dates): each is made once per process.
_TEXTS = 1 << 16


@cache
def _currency_pattern(currency: str, locale: str) -> NumberPattern:
    """The locale's currency pattern with the currency's symbol and minor-unit digits filled in:
    what babel.numbers.format_currency applies to every amount, read from CLDR once rather than
    each time (format_currency takes 120 microseconds an amount, this pattern 20)."""
    pattern = copy.copy(locale_of(locale).currency_formats["standard"])
    symbol = get_currency_symbol(currency, locale_of(locale))
    pattern.prefix = tuple(part.replace("¤", symbol) for part in pattern.prefix)
    pattern.suffix = tuple(part.replace("¤", symbol) for part in pattern.suffix)
    digits = minor_unit_digits(currency)
    pattern.frac_prec = (digits, digits)
    return pattern


@lru_cache(maxsize=_TEXTS)
def _currency_text(value: Decimal, currency: str, locale: str, exact: bool) -> str:
    """format_currency's text: the value rounded to the currency's digits, or all of its own when exact."""
    return _currency_pattern(currency, locale).apply(value, locale_of(locale), decimal_quantization=not exact)


@lru_cache(maxsize=_TEXTS)
def _decimal_text(value: Decimal, locale: str) -> str:
    return locale_of(locale).decimal_formats[None].apply(value, locale_of(locale), decimal_quantization=False)


@lru_cache(maxsize=_TEXTS)
def _percent_text(rate: Decimal, locale: str) -> str:
    return locale_of(locale).percent_formats[None].apply(rate, locale_of(locale), decimal_quantization=False)


@lru_cache(maxsize=_TEXTS)
def _date_text(day: str, locale: str) -> str:
    return format_date(date.fromisoformat(day), format="medium", locale=locale_of(locale))


class _Formats:
    """Number, money and date text in one locale and currency."""

    def __init__(self, locale: str, currency: str):
        self.locale, self.currency = locale, currency
        self.digits = minor_unit_digits(currency)
        self.quantum = Decimal(1).scaleb(-self.digits)

    def money(self, value) -> str:
        """An amount in the currency's minor units, rounded half up: 1234.5 USD as $1,234.50."""
        amount = _unsigned_zero(Decimal(value).quantize(self.quantum, rounding=ROUND_HALF_UP))
        return _currency_text(amount, self.currency, self.locale, False)

    def deduction(self, value) -> str:
        """An amount taken off a total, shown negative (-$50.00), or zero."""
        return self.money(-Decimal(value))

    def price(self, value) -> str:
        """A unit price: at least the currency's digits, more where a price is finer ($0.000003 a token)."""
        price = Decimal(value)
        if price == 0:
            return self.money(0)
        places = max(self.digits, PRICE_SIGNIFICANT_DIGITS - 1 - price.adjusted())
        rounded = _unsigned_zero(price.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP).normalize())
        return _currency_text(rounded, self.currency, self.locale, True)

    def quantity(self, value) -> str:
        rounded = Decimal(value).quantize(Decimal(1).scaleb(-QUANTITY_DECIMALS), rounding=ROUND_HALF_UP)
        return _decimal_text(_unsigned_zero(rounded.normalize()), self.locale)

    def percent(self, rate) -> str:
        """A rate as a percentage: 0.19 as 19%, 0.0825 as 8.25%."""
        return _percent_text(_unsigned_zero(Decimal(rate).normalize()), self.locale)

    def day(self, text: str) -> str:
        return _date_text(text, self.locale)

    def span(self, start: str, end_exclusive: str) -> str:
        """A period as its first and last day (periods are stored with an exclusive end)."""
        first, last = date.fromisoformat(start), date.fromisoformat(end_exclusive) - timedelta(days=1)
        if last <= first:
            return self.day(start)
        return f"{self.day(start)} – {self.day(last.isoformat())}"


def _unsigned_zero(value: Decimal) -> Decimal:
    return Decimal(0) if value == 0 else value


def humanized(name: str) -> str:
    """A configuration name as words, for the rare line without a name of its own: seat_discount as Seat discount."""
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def present(document: dict, locale: str) -> dict:
    """Everything a template shows of a document, as text."""
    shown = _Formats(locale, document["currency"])
    kind = document["kind"]
    title = TITLES.get(kind, "Invoice")
    is_draft = document["status"] == "draft"
    number = document.get("invoice_number")
    facts = []
    if number:
        facts.append({"label": f"{title} number", "value": number})
    facts.append({"label": "Issue date", "value": shown.day(document["issue_date"])})
    if kind != "credit_note" and document.get("due_date"):
        facts.append({"label": "Due date", "value": shown.day(document["due_date"])})
        facts.append({"label": "Payment terms", "value": _terms(document["payment_terms_days"])})
    facts.append({"label": "Period", "value": shown.span(document["period_start"], document["period_end"])})
    facts.append({"label": "Account", "value": document["account_id"]})
    return {
        "heading": f"{title} {number}" if number else f"Draft {title.lower()}",
        "is_draft": is_draft,
        "references": _references(document),
        "issuer": _party(document["issuer"], document["issuer"]["name"]),
        "customer": _party(document["customer"], document["customer"]["customer_id"]),
        "facts": facts,
        "currency": document["currency"],
        "lines": [_line(line, shown) for line in document["lines"]],
        "totals": _totals(document, shown),
    }


def _terms(days: int) -> str:
    return "Due on receipt" if days == 0 else f"Net {days} days"


def _references(document: dict) -> list[str]:
    """What a note corrects, and why; what an invoice issued in place of a voided one replaces."""
    references = []
    if document.get("adjusts_invoice_number"):
        references.append(f"Adjusts invoice {document['adjusts_invoice_number']}")
    if document.get("replaces_invoice_number"):
        references.append(f"Replaces invoice {document['replaces_invoice_number']}, voided")
    if document.get("reason"):
        references.append(f"Reason: {document['reason']}")
    return references


def _party(party: dict, fallback_name: str) -> dict:
    lines = [party[key] for key in ("address", "email") if party.get(key)]
    if party.get("tax_id"):
        lines.append(f"Tax ID {party['tax_id']}")
    return {"name": party.get("name") or fallback_name, "lines": lines}


def _line(line: dict, shown: _Formats) -> dict:
    details = line["details"]
    kinds = {detail["kind"] for detail in details}
    quantity = ""
    if line["quantity"] is not None:
        quantity = shown.quantity(line["quantity"])
        if line.get("unit"):
            quantity += f" {line['unit']}"
    breakdown = [row for detail in details for row in _breakdown_rows(detail, shown)]
    if len(details) == 1 and (details[0]["kind"] in _SELF_EXPLAINED or _is_whole_interval(details[0])):
        breakdown = []
    return {"name": line["description"] or _fallback_name(line), "quantity": quantity,
            "unit_price": _unit_price(details, kinds, shown), "amount": shown.money(line["amount"]),
            "breakdown": breakdown}


def _fallback_name(line: dict) -> str:
    rules = [detail["rule"] for detail in line["details"] if detail.get("rule")]
    return humanized(rules[0] if rules else line["billable_item"] or line["type"])


def _is_whole_interval(detail: dict) -> bool:
    return detail["kind"] == "license_interval" and detail.get("days") == detail.get("full_days")


def _unit_price(details: list[dict], kinds: set[str], shown: _Formats) -> str:
    if "tier" in kinds:
        return "tiered"
    if "package" in kinds:
        return "package"
    if "percentage" in kinds:
        return next(shown.percent(d["rate"]) for d in details if d["kind"] == "percentage")
    if "fixed_fee" in kinds:
        return next(shown.money(d["amount"]) for d in details if d["kind"] == "fixed_fee")
    prices = {d["unit_price"] for d in details
              if d["kind"] in ("per_unit", "volume_tier", "license_interval", "license_peak") and "unit_price" in d}
    return shown.price(prices.pop()) if len(prices) == 1 else ""


def _row(label: str, quantity: str = "", unit_price: str = "", amount: str = "") -> dict:
    return {"label": label, "quantity": quantity, "unit_price": unit_price, "amount": amount}


def _breakdown_rows(detail: dict, shown: _Formats) -> list[dict]:
    """A breakdown row (label, quantity, unit price, amount) per part of a line worth showing."""
    kind, amount = detail["kind"], shown.money(detail["amount"]) if "amount" in detail else ""
    if kind in ("tier", "volume_tier"):
        if "tier" not in detail:
            return [_row("No usage", amount=amount)]
        if kind == "tier" and Decimal(detail["quantity"]) == 0:
            return []  # a tier no unit reached
        upper = shown.quantity(detail["up_to"]) if "up_to" in detail else "∞"
        label = f"{'Tier' if kind == 'tier' else 'Volume tier'} {detail['tier']}: " \
                f"{shown.quantity(detail['from'])} – {upper}"
        if Decimal(detail.get("flat_fee", "0")) != 0:
            label += f", flat fee {shown.money(detail['flat_fee'])}"
        return [_row(label, shown.quantity(detail["quantity"]), shown.price(detail["unit_price"]), amount)]
    if kind == "package":
        label = f"{shown.quantity(detail['packages'])} × {shown.quantity(detail['package_size'])} units"
        if Decimal(detail["free_units"]) != 0:
            label += f", {shown.quantity(detail['free_units'])} units free"
        return [_row(label, shown.quantity(detail["billable_units"]), f"{shown.price(detail['unit_price'])} / package",
                     amount)]
    if kind == "percentage":
        return [_row("Share", shown.quantity(detail["quantity"]), shown.percent(detail["rate"]), amount)]
    if kind == "per_event_fee":
        return [_row("Per event", shown.quantity(detail["quantity"]), shown.price(detail["unit_price"]), amount)]
    if kind in ("per_unit", "license_peak"):
        label = "Highest quantity held" if kind == "license_peak" else "Usage"
        return [_row(label, shown.quantity(detail["quantity"]), shown.price(detail["unit_price"]), amount)]
    if kind == "license_interval":
        if "from_date" not in detail:
            return [_row("None held", amount=amount)]
        label = f"{shown.span(detail['from_date'], detail['to_date'])}, {detail['days']}/{detail['full_days']} days"
        return [_row(label, shown.quantity(detail["quantity"]), shown.price(detail["unit_price"]), amount)]
    if kind == "fixed_fee":
        return [_row(f"For {shown.span(detail['from_date'], detail['to_date'])}", amount=amount)]
    if kind == "proration":
        return [_row(f"Prorated {detail['days']}/{detail['full_days']} days", amount=amount)]
    if kind in ("minimum_amount", "maximum_amount"):
        return [_row("Minimum charge" if kind == "minimum_amount" else "Maximum charge", amount=amount)]
    if kind == "pricing_rule":
        return [_row(humanized(detail["rule"]), amount=amount)]
    if kind == "commitment":
        return [_row(f"Minimum commitment {amount}; the lines it covers come to {shown.money(detail['quantity'])}")]
    if kind == "adjustment":
        return [_row(label, shown.quantity(detail[quantity]) if detail.get(quantity) is not None else "",
                     amount=shown.money(detail[money]) if detail.get(money) is not None else "")
                for label, quantity, money in (("Billed", "billed_quantity", "billed_amount"),
                                               ("Re-rated", "restated_quantity", "restated_amount"))]
    return [_row(humanized(kind), amount=amount)]


def _totals(document: dict, shown: _Formats) -> list[dict]:
    """Subtotal, credits, each custom charge with its rate and base, total, wallet, amount due. A
    credit note gives back: its credits and wallet money are returned, its amount is credited."""
    credit_note = document["kind"] == "credit_note"
    base = Decimal(document["subtotal"]) - Decimal(document["credits_applied"])
    rows = [{"label": "Subtotal", "amount": shown.money(document["subtotal"])},
            {"label": "Credits returned" if credit_note else "Credits applied",
             "amount": shown.deduction(document["credits_applied"])}]
    rows += [{"label": f"{charge['name']} {shown.percent(charge['rate'])} of {shown.money(base)}",
              "amount": shown.money(charge["amount"])} for charge in document["custom_charges"]]
    rows += [{"label": "Total", "amount": shown.money(document["total"])},
             {"label": "Returned to wallet" if credit_note else "Paid from wallet",
              "amount": shown.deduction(document["wallet_applied"])},
             {"label": f"{'Amount credited' if credit_note else 'Amount due'} ({document['currency']})",
              "amount": shown.money(document["amount_due"])}]
    return rows
