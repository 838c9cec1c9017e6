"""Person fields: job title → seniority and function, country → ISO 3166 alpha-2.

The title rules are data (`config/titles.yaml`): ordered, case-insensitive regular
expressions, first match wins, applied as one polars expression per column.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from connectors.errors import ConfigError
from connectors.settings import load_yaml, validation_message


class TitleRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: str
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        return pattern


class TitleRules(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seniority: list[TitleRule]
    function: list[TitleRule]


def load_title_rules(path: Path) -> TitleRules:
    try:
        return TitleRules.model_validate(load_yaml(path))
    except ValidationError as exc:
        raise ConfigError(validation_message(exc, path)) from exc


def classify_title(title: pl.Expr, rules: list[TitleRule]) -> pl.Expr:
    """The value of the first rule whose pattern matches the title; null when none does."""
    text = title.str.to_lowercase()
    expr: pl.Expr = pl.lit(None, dtype=pl.String)
    for rule in reversed(rules):
        expr = pl.when(text.str.contains(f"(?i){rule.pattern}")).then(pl.lit(rule.value)).otherwise(expr)
    return expr
