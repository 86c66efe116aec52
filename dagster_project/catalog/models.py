"""Pydantic models of pricing_config/ (see the README): the shape of each file.

Shape and types live here; rules that span fields or files (tiers increasing, references that
must exist, types that must match) live in `validation.py`, so every message can name the exact
path of the offending field.
"""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from email.utils import parseaddr
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from dagster_project.money import is_iso_currency, is_known_locale

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]


def _iso_currency(code: str) -> str:
    if not is_iso_currency(code):
        raise ValueError("must be an ISO 4217 currency code (USD, EUR, JPY, KWD, ...)")
    return code


Currency = Annotated[str, AfterValidator(_iso_currency)]


def _known_locale(name: str) -> str:
    if not is_known_locale(name):
        raise ValueError(f"'{name}' is not a locale Babel knows: use a CLDR identifier such as en_US, en_GB, "
                         "de_DE, fr_CH, ja_JP")
    return name


LocaleName = Annotated[str, AfterValidator(_known_locale)]
# net payment terms: a due date at most ten years after the issue date (a typo, not terms, beyond that)
MAX_PAYMENT_TERMS_DAYS = 3650
PaymentTermsDays = Annotated[int, Field(ge=0, le=MAX_PAYMENT_TERMS_DAYS, strict=True)]


class Strict(BaseModel):
    """Unknown keys are errors; parsed configuration never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- event_schemas.yaml -------------------------------------------------------------------------

class Attribute(Strict):
    name: Name
    unit: str | None = None
    required: bool = False
    description: str | None = None


class EventSchema(Strict):
    name: Name
    description: str | None = None
    attributes: list[Attribute] = []
    dimensions: list[Name] = []


class EventSchemasFile(Strict):
    event_schemas: list[EventSchema] = []


# --- usage_meters.yaml ----------------------------------------------------------------------------

Aggregation = Literal["COUNT", "SUM", "UNIQUE_COUNT", "MAX", "LATEST"]


class UsageMeter(Strict):
    name: Name
    description: str | None = None
    event_schema: Name
    aggregation: Aggregation
    attribute: Name | None = None
    unique_by: Name | None = None
    # A tree of all/any/not over conditions; parsed by filters.parse_filter so that its messages
    # can point inside the tree.
    filter: dict[str, Any] | None = None


class UsageMetersFile(Strict):
    usage_meters: list[UsageMeter] = []


# --- billable_items.yaml ----------------------------------------------------------------------------

ItemType = Literal["usage", "license", "named_license", "fixed_fee", "feature"]


class BillableItem(Strict):
    name: Name
    billable_name: str
    type: ItemType
    usage_meter: Name | None = None
    description: str | None = None


class BillableItemsFile(Strict):
    billable_items: list[BillableItem] = []


# --- price_plans/<plan>.yaml ---------------------------------------------------------------------------

class BillingCycle(Strict):
    interval: Literal["day", "week", "month", "quarter", "year"]
    interval_count: int = Field(default=1, ge=1)
    anchor: Literal["assignment", "calendar"] = "calendar"


class Tier(Strict):
    up_to: Decimal | None
    unit_price: Decimal
    flat_fee: Decimal = Decimal(0)


class _UsageRateCardBase(Strict):
    billable_item: Name
    minimum_amount: Decimal | None = None
    maximum_amount: Decimal | None = None


class PerUnitRateCard(_UsageRateCardBase):
    model: Literal["per_unit"]
    unit_price: Decimal


class TieredRateCard(_UsageRateCardBase):
    model: Literal["tiered"]
    tiers: list[Tier]


class VolumeRateCard(_UsageRateCardBase):
    model: Literal["volume"]
    tiers: list[Tier]


class PackageRateCard(_UsageRateCardBase):
    model: Literal["package"]
    package_size: Decimal
    package_price: Decimal
    free_units: Decimal = Decimal(0)


class PercentageRateCard(_UsageRateCardBase):
    model: Literal["percentage"]
    rate: Decimal
    fixed_fee_per_event: Decimal = Decimal(0)


UsageRateCard = Annotated[
    PerUnitRateCard | TieredRateCard | VolumeRateCard | PackageRateCard | PercentageRateCard,
    Field(discriminator="model"),
]
USAGE_MODELS = ("per_unit", "tiered", "volume", "package", "percentage")


class LicenseRateCard(Strict):
    billable_item: Name
    unit_price: Decimal
    proration: Literal["daily", "none"] = "daily"


class FixedFeeRateCard(Strict):
    billable_item: Name
    amount: Decimal
    recurrence: Literal["recurring", "one_time"] = "recurring"
    timing: Literal["in_arrears", "in_advance"] = "in_arrears"
    prorate: bool = False


class RateCards(Strict):
    usage: list[UsageRateCard] = []
    licenses: list[LicenseRateCard] = []
    fixed_fees: list[FixedFeeRateCard] = []


# `all` or a list of billable item names; checked in validation.py for one clear message.
AppliesTo = Any


class PlanCredit(Strict):
    amount: Decimal
    applies_to: AppliesTo = "all"
    expires: Literal["end_of_cycle", "never"] = "end_of_cycle"
    priority: int = 0


class MinimumCommitment(Strict):
    amount: Decimal
    applies_to: AppliesTo = "all"


class Entitlement(Strict):
    feature: Name
    limit: Decimal | None = None


class RuleAction(Strict):
    type: Literal["set_amount", "add_to_amount", "add_line"]
    target: Name | None = None


class PricingRule(Strict):
    name: Name
    order: int
    condition: Any = None
    compute: Any
    action: RuleAction
    description: str | None = None


class PricePlan(Strict):
    name: Name
    description: str | None = None
    currency: Currency
    billing_cycle: BillingCycle
    grace_period_days: int = Field(default=0, ge=0)
    rate_cards: RateCards = RateCards()
    credits: list[PlanCredit] = []
    minimum_commitment: MinimumCommitment | None = None
    entitlements: list[Entitlement] = []
    pricing_rules: list[PricingRule] = []


# --- billing.yaml ----------------------------------------------------------------------------------------

class Issuer(Strict):
    name: str
    address: str | None = None
    tax_id: str | None = None
    email: str | None = None


class InvoiceNumbering(Strict):
    prefix: str = "INV"
    padding: int = Field(default=6, ge=1, le=12)
    reset: Literal["yearly", "monthly", "never"] = "yearly"


class CustomCharge(Strict):
    name: str
    type: Literal["percentage"]
    rate: Decimal


_ENVIRONMENT_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _environment_variable(name: str) -> str:
    if not _ENVIRONMENT_VARIABLE.fullmatch(name):
        raise ValueError("must be the name of an environment variable (letters, digits, _), never the secret itself")
    return name


# Secrets are never written in billing.yaml: it names the environment variables that hold them.
EnvironmentVariable = Annotated[str, AfterValidator(_environment_variable)]


def _mail_address(text: str) -> str:
    if "@" not in parseaddr(text)[1]:
        raise ValueError("must be an e-mail address (billing@example.com or \"Billing <billing@example.com>\")")
    return text


def _http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return url


class EmailDelivery(Strict):
    smtp_host: str
    smtp_port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    sender: Annotated[str, AfterValidator(_mail_address)]
    username_env: EnvironmentVariable | None = None
    password_env: EnvironmentVariable | None = None
    timeout_seconds: float = Field(default=30, gt=0)


class WebhookDelivery(Strict):
    url: Annotated[str, AfterValidator(_http_url)]
    secret_env: EnvironmentVariable     # the HMAC-SHA256 key receivers verify Tally-Signature with
    timeout_seconds: float = Field(default=10, gt=0)


class DeliverySettings(Strict):
    """No channel, nothing sent."""

    email: EmailDelivery | None = None
    webhook: WebhookDelivery | None = None
    # runs stop retrying a delivery after this many failures; `tally deliver --retry` goes on
    max_attempts: int = Field(default=5, ge=1)
    # documents issued earlier are never sent, so that turning delivery on does not mail the history
    issued_from: date | None = None


class BillingSettings(Strict):
    issuer: Issuer
    invoice_numbering: InvoiceNumbering = InvoiceNumbering()
    # credit and debit notes are numbered in series of their own (see invoicing/corrections.py)
    credit_note_numbering: InvoiceNumbering = InvoiceNumbering(prefix="CN")
    debit_note_numbering: InvoiceNumbering = InvoiceNumbering(prefix="DN")
    rounding: Literal["half_up", "half_even", "down"] = "half_up"
    custom_charges: list[CustomCharge] = []
    # ignore: late events are reported, never billed; adjust: a final cycle that received late
    # events is re-rated and the difference issued as a credit or debit note
    late_events: Literal["ignore", "adjust"] = "ignore"
    delivery: DeliverySettings = DeliverySettings()
    # documents: money and dates are shown for this locale; due date = issue date + payment terms,
    # which a customer's payment_terms_days in customers.csv replaces
    locale: LocaleName = "en_US"
    payment_terms_days: PaymentTermsDays = 30

    def numbering_of(self, kind: str) -> InvoiceNumbering:
        """The numbering of a document kind: notes have their own series, invoices share one."""
        return {"credit_note": self.credit_note_numbering,
                "debit_note": self.debit_note_numbering}.get(kind, self.invoice_numbering)


def plan_meters(plan: PricePlan, items: dict[str, BillableItem]) -> list[str]:
    """Meters whose quantities a plan needs: its usage items' and metered features' meters."""
    names = [card.billable_item for card in plan.rate_cards.usage] + [ent.feature for ent in plan.entitlements]
    return list(dict.fromkeys(items[n].usage_meter for n in names if n in items and items[n].usage_meter))
