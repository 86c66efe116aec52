"""YAML reading that never produces a float: a YAML number is read by its decimal text."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path

import yaml


class _ExactLoader(yaml.SafeLoader):
    """SafeLoader whose floats are Decimals built from the scalar's own text (so -0.1 is -0.1)."""


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal | str:
    text = loader.construct_scalar(node).replace("_", "")
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text  # .inf / .nan: left as text for validation to reject by name
    return value if value.is_finite() else text


_ExactLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)
# Dates stay text: configuration compares them as strings and never needs a date object.
_ExactLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


def load_yaml(path: Path):
    """Parse one YAML file with exact decimals; raises yaml.YAMLError on bad syntax."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_ExactLoader)


def load_yaml_text(text: str):
    return yaml.load(text, Loader=_ExactLoader)
