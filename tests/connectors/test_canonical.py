"""Canonical values: any provider's industry onto the shipped list, any country spelling onto ISO codes."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from connectors.canonical import country_codes, load_industries
from connectors.errors import ConfigError
from connectors.settings import load_settings
from tests.connectors.enrichment.test_waterfall import Scripted, _enricher, _leads


@pytest.fixture
def industries(config_dir: Path):  # type: ignore[no-untyped-def]
    return load_industries(config_dir / "industries.yaml", 88)


@pytest.mark.parametrize(
    ("spelling", "canonical", "how"),
    [
        ("technolgy", "computer software", "fuzzy 95 ('technology')"),
        ("Computer Sofware", "computer software", "fuzzy 97 ('computer software')"),
        ("Finacial Services", "financial services", "fuzzy 97 ('financial services')"),
        ("Information Technology & Services", "information technology and services", "exact"),
        ("information technology & services", "information technology and services", "exact"),  # Apollo
        ("IT Services and IT Consulting", "information technology and services", "alias"),  # LinkedIn V2
        ("Software Development", "computer software", "alias"),
        ("hospital & health care", "hospital & health care", "exact"),  # PDL
        ("Healthcare", "hospital & health care", "alias"),
        ("541511", "information technology and services", "naics 5415"),  # longest prefix
        ("  Retail ", "retail", "exact"),
    ],
)
def test_the_typo_set_and_every_source_spelling_map(industries, spelling: str, canonical: str, how: str) -> None:  # type: ignore[no-untyped-def]
    row = industries.mapped(pl.Series([spelling])).row(0, named=True)
    assert (row["industry"], row["industry_method"], row["industry_note"]) == (canonical, how, None)


def test_a_value_that_maps_nowhere_is_reported_never_defaulted(industries) -> None:  # type: ignore[no-untyped-def]
    mapped = industries.mapped(pl.Series(["xyzzy widgets", "999999"])).sort("industry_in", descending=True)
    words, code = mapped.to_dicts()
    assert words["industry"] is None
    assert words["industry_note"].startswith("industry 'xyzzy widgets' matches no canonical industry; closest '")
    assert words["industry_note"].endswith("< 88 (add it to industries.yaml)")
    assert code["industry"] is None and "no canonical industry has NAICS code 999999" in code["industry_note"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "industries:\n- {name: retail, aliases: [shops]}\n- {name: wholesale, aliases: [Shops]}\n",
            "'Shops' names both 'retail' and 'wholesale'",
        ),
        ("industries:\n- {name: retail, naics: ['44x']}\n", "NAICS codes are 2 to 6 digits"),
        ("industries: []\n", "industries"),
    ],
)
def test_a_bad_industry_list_names_the_file_and_the_entry(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "industries.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_industries(path)
    assert str(path) in str(err.value) and problem in str(err.value)


def test_country_typos_map_and_an_ambiguous_value_is_reported(config_dir: Path) -> None:
    aliases = load_settings().prepare.country_aliases
    spellings = ["Philipines", "Korea", "Untied States", "Swizerland", "Virgin Islands", "Atlantis", "Germany"]
    codes = {r["country_in"]: r for r in country_codes(pl.Series(spellings), aliases).to_dicts()}
    assert {s: codes[s]["country_code"] for s in spellings} == {
        "Philipines": "PH",
        "Korea": "KR",  # the shipped aliases say which Korea business data means
        "Untied States": "US",
        "Swizerland": "CH",
        "Virgin Islands": None,
        "Atlantis": None,
        "Germany": "DE",
    }
    assert codes["Virgin Islands"]["country_note"] == (
        "country 'virgin islands' is ambiguous (VG, VI); set it in [prepare.country_aliases]"
    )
    assert "not a country leadq knows" in codes["Atlantis"]["country_note"]
    assert country_codes(pl.Series(["Korea"]), {})["country_note"][0].startswith(
        "country 'korea' is ambiguous (KP, KR)"
    )


def test_the_waterfall_stores_canonical_values_and_keeps_the_raw_one_in_provenance(industries) -> None:  # type: ignore[no-untyped-def]
    api = Scripted(
        "api",
        {
            "a.io": {"industry": ("Technolgy", 0.9), "company_country": ("Philipines", 0.9)},
            "b.io": {"industry": ("xyzzy widgets", 0.9), "employees": (40, 0.9)},
        },
    )
    out = _enricher(api, industries=industries).enrich(_leads("a.io", "b.io"), None)
    a, b = out.sort("company_domain").to_dicts()
    assert (a["industry"], a["company_country"]) == ("computer software", "PH")
    provenance = json.loads(a["company_provenance"])
    assert provenance["industry"] == {
        "value": "computer software",
        "source": "api",
        "method": "api api",
        "fetched_at": provenance["industry"]["fetched_at"],
        "confidence": 0.9,
        "raw": "Technolgy",
        "mapped_by": "fuzzy 95 ('technology')",
    }
    assert provenance["company_country"]["raw"] == "Philipines" and provenance["company_country"]["value"] == "PH"
    assert b["industry"] is None and b["employees"] == 40  # the rest of what the provider said stays
    assert json.loads(b["enrichment_notes"])["industry"].startswith("industry 'xyzzy widgets' matches no canonical")
    assert b["company_sources"] == "api"
