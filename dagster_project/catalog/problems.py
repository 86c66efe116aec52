"""What a configuration problem is, shared by the loader and the validation that both report them."""
from __future__ import annotations

from dataclasses import dataclass

BILLING_FILE = "billing.yaml"


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}" if self.path else f"{self.file}: {self.message}"


class ConfigError(Exception):
    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  {p}" for p in problems))
