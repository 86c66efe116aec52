"""YAML reading that never produces a float and never guesses.

A YAML number is read by its decimal text (so -0.1 is -0.1, never the nearest binary float); a
key written twice in one mapping is an error (PyYAML would silently keep the last); the file must
be UTF-8 (a byte-order mark is accepted).
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path

import yaml


class YamlFileError(ValueError):
    """A file that cannot be read as YAML: `where` is `line N` (or empty), `message` says why."""

    def __init__(self, where: str, message: str):
        self.where, self.message = where, message
        super().__init__(f"{where}: {message}" if where else message)


class _ExactLoader(yaml.SafeLoader):
    """SafeLoader whose floats are Decimals built from the scalar's own text, and whose mappings
    refuse duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise YamlFileError(f"line {key_node.start_mark.line + 1}",
                                    f"duplicate key '{key}' (first on line {seen[key]})")
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


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
    """Parse one YAML file; raises YamlFileError on bad encoding, bad syntax or a duplicate key."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise YamlFileError(f"line {line}", f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as "
                                            f"UTF-8") from None
    return load_yaml_text(text)


def load_yaml_text(text: str):
    try:
        return yaml.load(text, Loader=_ExactLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        raise YamlFileError(where, f"invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
