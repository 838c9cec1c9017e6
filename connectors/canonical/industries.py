"""The canonical industry list (`config/industries.yaml`) and the mapping of any provider's spelling onto it.

A value maps exactly (case, spacing and `&`/`and` aside), then by an alias, then by a NAICS
code (longest prefix), then by fuzzy matching (rapidfuzz's normalised edit distance, at least
`threshold` of 100). What none of these maps is reported, never stored as the industry.
Mapping works per distinct value, so a batch of a million rows costs one lookup per spelling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from rapidfuzz import fuzz, process

from connectors.errors import ConfigError
from connectors.settings import load_yaml, validation_message

MAPPED = {"industry_in": pl.String, "industry": pl.String, "industry_method": pl.String, "industry_note": pl.String}


class Industry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    linkedin_id: int | None = None
    aliases: list[str] = Field(default_factory=list)
    naics: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _codes_are_digits(self) -> Self:
        bad = [code for code in self.naics if not re.fullmatch(r"\d{2,6}", code)]
        if bad:
            raise ValueError(f"industry '{self.name}': NAICS codes are 2 to 6 digits; found {bad}")
        return self


class IndustryList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    industries: list[Industry] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_meaning_per_spelling(self) -> Self:
        meaning: dict[str, str] = {}
        for industry in self.industries:
            for spelling in (industry.name, *industry.aliases):
                key = normalised(spelling)
                if meaning.get(key, industry.name) != industry.name:
                    raise ValueError(f"'{spelling}' names both '{meaning[key]}' and '{industry.name}'")
                meaning[key] = industry.name
        return self


def normalised(text: str) -> str:
    """'Information Technology & Services ' → 'information technology and services'."""
    lowered = text.strip().lower().replace("&", " and ")
    return re.sub(r"\s+", " ", re.sub(r"[^\w/+,-]+", " ", lowered)).strip()


@dataclass(frozen=True)
class Industries:
    """The canonical names, every known spelling of them, and the NAICS codes that stand for them."""

    names: tuple[str, ...]
    spellings: dict[str, tuple[str, str]]  # normalised spelling -> (canonical name, "exact" | "alias")
    naics: dict[str, str]  # code prefix -> canonical name
    threshold: float = 88.0

    @classmethod
    def from_list(cls, listed: IndustryList, threshold: float = 88.0) -> Industries:
        spellings: dict[str, tuple[str, str]] = {}
        for industry in listed.industries:
            for alias in industry.aliases:
                spellings.setdefault(normalised(alias), (industry.name, "alias"))
        for industry in listed.industries:
            spellings[normalised(industry.name)] = (industry.name, "exact")
        naics = {code: i.name for i in listed.industries for code in i.naics}
        return cls(tuple(i.name for i in listed.industries), spellings, naics, threshold)

    def mapped(self, values: pl.Series) -> pl.DataFrame:
        """Per distinct value (`MAPPED`): its canonical industry and how it was found, or a note why not."""
        distinct = values.drop_nulls().unique().to_list()
        return pl.DataFrame([(v, *self._one(v)) for v in distinct], schema=MAPPED, orient="row")

    def _one(self, value: str) -> tuple[str | None, str | None, str | None]:
        key = normalised(value)
        if not key:
            return None, None, None
        if key in self.spellings:
            name, how = self.spellings[key]
            return name, how, None
        if key.isdigit():
            for length in range(len(key), 1, -1):
                if key[:length] in self.naics:
                    return self.naics[key[:length]], f"naics {key[:length]}", None
            return None, None, f"industry '{value}': no canonical industry has NAICS code {key}"
        spellings = list(self.spellings)
        best = process.extractOne(key, spellings, scorer=fuzz.ratio)
        if best is not None and best[1] >= self.threshold:
            name, _ = self.spellings[best[0]]
            return name, f"fuzzy {best[1]:.0f} ('{best[0]}')", None
        closest = f"; closest '{best[0]}' scores {best[1]:.0f} < {self.threshold:g}" if best else ""
        return None, None, f"industry '{value}' matches no canonical industry{closest} (add it to industries.yaml)"


def load_industries(path: Path, threshold: float = 88.0) -> Industries:
    """Read and validate industries.yaml; errors name the file and the entry."""
    try:
        listed = IndustryList.model_validate(load_yaml(path))
    except ValidationError as exc:
        raise ConfigError(validation_message(exc, path)) from exc
    return Industries.from_list(listed, threshold)
