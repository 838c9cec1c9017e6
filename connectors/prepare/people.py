"""Person fields: job title → seniority and function, country → ISO 3166 alpha-2.

The title rules are data (`config/titles.yaml`): ordered, case-insensitive regular
expressions, first match wins, applied as one polars expression per column.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import polars as pl
import pycountry
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


def country_codes(values: pl.Series, aliases: dict[str, str]) -> pl.DataFrame:
    """Per distinct country spelling: its ISO alpha-2 code, or null when unknown."""
    distinct = values.unique().drop_nulls()
    alias = {k.strip().lower(): v.upper() for k, v in aliases.items()}
    codes = pl.Series([_iso2(v, alias) for v in distinct], dtype=pl.String)
    return pl.DataFrame({"country_in": distinct, "country_code": codes})


def _iso2(value: str, aliases: dict[str, str]) -> str | None:
    key = value.strip().lower()
    if not key:
        return None
    if key in aliases:
        return aliases[key]
    return _lookup(key)


@lru_cache(maxsize=4096)
def _lookup(key: str) -> str | None:
    try:
        return str(pycountry.countries.lookup(key).alpha_2)
    except LookupError:
        return None
