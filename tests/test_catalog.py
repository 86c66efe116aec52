"""Configuration: exact decimals, and every problem reported as `file: path: message`."""
from __future__ import annotations

import shutil
from decimal import Decimal

import pytest

from dagster_project.catalog import ConfigError, load_catalog
from dagster_project.catalog.yaml_files import load_yaml_text
from tests.conftest import CASES


@pytest.fixture
def config(tmp_path):
    """A valid configuration (conformance case 02) to break one file at a time."""
    target = tmp_path / "config"
    shutil.copytree(CASES / "02_tiers_packages_volume" / "pricing_config", target)
    return target


def problems(config_dir) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_catalog(config_dir)
    return [str(p) for p in caught.value.problems]


def test_yaml_numbers_are_read_by_their_decimal_text():
    loaded = load_yaml_text("a: -0.1\nb: 0.30000000000000004\nc: 12\nd: 1.0e+3")
    assert loaded == {"a": Decimal("-0.1"), "b": Decimal("0.30000000000000004"), "c": 12, "d": Decimal("1000")}
    assert isinstance(loaded["a"], Decimal)


def test_a_valid_configuration_loads_with_exact_prices(config):
    catalog = load_catalog(config)
    tiers = catalog.price_plans["growth"].rate_cards.usage[0].tiers
    assert [t.unit_price for t in tiers] == [Decimal("0"), Decimal("0.002"), Decimal("0.001")]
    assert catalog.meters_of_plan("growth") == ["api_calls", "storage_gb", "messages_sent"]


def test_tiers_must_increase_and_references_must_exist():
    found = problems(CASES / "08_invalid_config" / "pricing_config")
    assert found == [
        "price_plans/broken.yaml: rate_cards.usage[0].tiers[1].up_to: must be greater than the previous tier's "
        "up_to (1000)",
        "price_plans/broken.yaml: rate_cards.usage[1].billable_item: unknown billable item 'no_such_item'",
    ]


def test_every_problem_in_every_file_is_listed(config):
    (config / "usage_meters.yaml").write_text(
        "usage_meters:\n"
        "  - {name: api_calls, event_schema: api_batch, aggregation: SUM}\n"
        "  - {name: storage_gb, event_schema: nope, aggregation: LATEST, attribute: gb, colour: red}\n"
        "  - {name: messages_sent, event_schema: message_batch, aggregation: SUM, attribute: count}\n")
    (config / "price_plans" / "growth.yaml").write_text(
        (config / "price_plans" / "growth.yaml").read_text().replace('package_price: "10"', 'package_price: "-10"'))
    found = problems(config)
    assert "usage_meters.yaml: usage_meters[1].colour: unknown key" in found
    assert "price_plans/growth.yaml: rate_cards.usage[1].package_price: must not be negative" in found
    assert len(found) == 2  # one parse failure hides the meter file's cross-reference checks


def test_cross_references_are_checked_when_files_parse(config):
    (config / "usage_meters.yaml").write_text(
        "usage_meters:\n"
        "  - {name: api_calls, event_schema: api_batch, aggregation: SUM}\n"
        "  - {name: storage_gb, event_schema: nope, aggregation: LATEST, attribute: gb}\n"
        "  - {name: messages_sent, event_schema: message_batch, aggregation: UNIQUE_COUNT, attribute: count}\n")
    assert problems(config) == [
        "usage_meters.yaml: usage_meters[0].attribute: is required for SUM",
        "usage_meters.yaml: usage_meters[1].event_schema: unknown event schema 'nope'",
        "usage_meters.yaml: usage_meters[2].attribute: is not used by UNIQUE_COUNT",
        "usage_meters.yaml: usage_meters[2].unique_by: is required for UNIQUE_COUNT",
    ]


def test_filter_problems_point_inside_the_tree(config):
    (config / "event_schemas.yaml").write_text(
        "event_schemas:\n"
        "  - {name: api_batch, attributes: [{name: calls, required: true}], dimensions: [region]}\n"
        "  - {name: storage_snapshot, attributes: [{name: gb}]}\n"
        "  - {name: message_batch, attributes: [{name: count}]}\n")
    (config / "usage_meters.yaml").write_text(
        "usage_meters:\n"
        "  - name: api_calls\n"
        "    event_schema: api_batch\n"
        "    aggregation: SUM\n"
        "    attribute: calls\n"
        "    filter:\n"
        "      all:\n"
        "        - {dimension: region, op: in, value: eu}\n"
        "        - any: [{attribute: calls, op: gt, value: lots}, {dimension: colour, op: eq, value: red}]\n"
        "        - not: {dimension: region, op: exists, value: x}\n"
        "        - {dimension: region, op: like, value: x}\n"
        "  - {name: storage_gb, event_schema: storage_snapshot, aggregation: LATEST, attribute: gb}\n"
        "  - {name: messages_sent, event_schema: message_batch, aggregation: SUM, attribute: count}\n")
    assert problems(config) == [
        "usage_meters.yaml: usage_meters[0].filter.all[0].value: in takes a non-empty list",
        "usage_meters.yaml: usage_meters[0].filter.all[1].any[0].value: must be a number",
        "usage_meters.yaml: usage_meters[0].filter.all[1].any[1].dimension: 'colour' is not a dimension of the "
        "meter's event schema",
        "usage_meters.yaml: usage_meters[0].filter.all[2].not.value: exists takes no value",
        "usage_meters.yaml: usage_meters[0].filter.all[3].op: must be one of eq, neq, in, not_in, gt, gte, lt, lte, "
        "exists, not_exists",
    ]


@pytest.mark.parametrize("card, expected", [
    ('{billable_item: api_calls, model: flat, unit_price: "1"}',
     "rate_cards.usage[0].model: must be one of per_unit, tiered, volume, package, percentage"),
    ('{billable_item: api_calls, model: per_unit}', "rate_cards.usage[0].unit_price: is required"),
    ('{billable_item: api_calls, model: per_unit, unit_price: "abc"}',
     "rate_cards.usage[0].unit_price: must be a decimal number"),
    ('{billable_item: api_calls, model: tiered, tiers: [{up_to: 10, unit_price: "1"}]}',
     "rate_cards.usage[0].tiers[0].up_to: the last tier must be open-ended (up_to: null)"),
    ('{billable_item: api_calls, model: volume, tiers: [{up_to: null, unit_price: "1"}, '
     '{up_to: null, unit_price: "1"}]}',
     "rate_cards.usage[0].tiers[0].up_to: only the last tier may be open-ended (up_to: null)"),
    ('{billable_item: api_calls, model: package, package_size: 0, package_price: "1"}',
     "rate_cards.usage[0].package_size: must be greater than 0"),
    ('{billable_item: api_calls, model: per_unit, unit_price: "1", minimum_amount: "5", maximum_amount: "2"}',
     "rate_cards.usage[0].maximum_amount: must not be less than minimum_amount (5)"),
])
def test_rate_card_problems(config, card, expected):
    plan = config / "price_plans" / "growth.yaml"
    plan.write_text("name: growth\ncurrency: USD\nbilling_cycle: {interval: month}\n"
                    f"rate_cards:\n  usage:\n    - {card}\n")
    assert problems(config) == [f"price_plans/growth.yaml: {expected}"]


def test_an_item_is_priced_once_and_by_the_right_kind_of_rate_card(config):
    plan = config / "price_plans" / "growth.yaml"
    plan.write_text("name: growth\ncurrency: usd\nbilling_cycle: {interval: month}\nrate_cards:\n  usage:\n"
                    '    - {billable_item: api_calls, model: per_unit, unit_price: "1"}\n'
                    '    - {billable_item: api_calls, model: per_unit, unit_price: "2"}\n'
                    '  fixed_fees:\n    - {billable_item: storage, amount: "5"}\n')
    assert problems(config) == [
        "price_plans/growth.yaml: currency: must be an ISO 4217 currency code (USD, EUR, JPY, KWD, ...)",
    ]
    plan.write_text(plan.read_text().replace("usd", "USD"))
    assert problems(config) == [
        "price_plans/growth.yaml: rate_cards.usage[1].billable_item: billable item 'api_calls' is already priced at "
        "rate_cards.usage[0]",
        "price_plans/growth.yaml: rate_cards.fixed_fees[0].billable_item: billable item 'storage' is of type usage, "
        "expected fixed_fee",
    ]


def test_a_missing_billing_file_and_bad_yaml_are_reported(config):
    (config / "billing.yaml").unlink()
    (config / "billable_items.yaml").write_text("billable_items: [\n")
    found = problems(config)
    assert "billing.yaml: file not found" in found
    assert any(p.startswith("billable_items.yaml: line ") and "invalid YAML" in p for p in found)


def test_a_file_that_is_not_utf8_is_named(config):
    (config / "billable_items.yaml").write_bytes("billable_items: []\n# caf\xe9\n".encode("latin-1"))
    assert problems(config) == [
        "billable_items.yaml: line 2: not valid UTF-8 (byte 0xe9); save the file as UTF-8"]


def test_a_key_written_twice_is_an_error_naming_file_and_key(config):
    plan = config / "price_plans" / "growth.yaml"
    plan.write_text(plan.read_text() + "grace_period_days: 9\n")
    found = problems(config)
    assert len(found) == 1
    assert found[0].startswith("price_plans/growth.yaml: line ")
    assert "duplicate key 'grace_period_days' (first on line " in found[0]


def test_a_byte_order_mark_is_accepted(config):
    plan = config / "price_plans" / "growth.yaml"
    plan.write_bytes(b"\xef\xbb\xbf" + plan.read_bytes())
    assert load_catalog(config).price_plans["growth"].grace_period_days == 2


def test_filter_values_and_prices_out_of_the_supported_range_are_errors(config):
    (config / "usage_meters.yaml").write_text(
        (config / "usage_meters.yaml").read_text().replace(
            "aggregation: SUM, attribute: calls}",
            "aggregation: SUM, attribute: calls, filter: {attribute: calls, op: gt, value: 0.0000000001}}"))
    found = problems(config)
    assert found == ["usage_meters.yaml: usage_meters[0].filter.value: '0.0000000001' has 10 decimal places; "
                     "the supported scale is 9"]


def test_a_run_reads_the_catalog_once_and_again_only_when_a_file_changed(config):
    import os

    from dagster_project.catalog import load_catalog_once

    first = load_catalog_once(config)
    assert load_catalog_once(config) is first
    billing = config / "billing.yaml"
    billing.write_text(billing.read_text().replace("rounding: half_up", "rounding: half_even"))
    os.utime(billing, ns=(billing.stat().st_atime_ns, billing.stat().st_mtime_ns + 1_000_000))
    changed = load_catalog_once(config)
    assert changed is not first and changed.billing.rounding == "half_even"
    assert changed.fingerprint != first.fingerprint
