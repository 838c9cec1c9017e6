from __future__ import annotations

from pathlib import Path

import pytest

from connectors.enrichment.reference import ReferenceFile
from connectors.errors import ConfigError
from connectors.settings import load_settings

PDL_HEADER = (
    "name,domain,year founded,industry,size range,locality,country,linkedin url,"
    "current employee estimate,total employee estimate\n"
)


def _values(ref: ReferenceFile, domain: str) -> dict[str, object]:
    return {name: found.value for name, found in ref.lookup(domain).fields.items()}


def test_bundled_reference_looks_up_by_domain(config_dir: Path) -> None:
    ref = ReferenceFile.from_settings(load_settings())
    found = ref.lookup("northwind.io")
    assert found.status == "ok"
    assert found.fields["industry"].method == "reference file companies.csv"
    assert found.fields["industry"].confidence == 0.9
    values = _values(ref, "northwind.io")
    assert (values["industry"], values["employees"], values["company_country"]) == ("computer software", 420, "US")
    assert ref.lookup("unknown.example").status == "not_found"


def test_pdl_layout_needs_only_the_preset_setting(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pdl = tmp_path / "pdl.csv"
    pdl.write_text(
        PDL_HEADER
        + 'acme corp,acme.io,2010,computer software,51-200,"san francisco, california",united states,'
        + "linkedin.com/company/acme,130,150\n"
        + "beta gmbh,www.beta.de,1999,retail,1001-5000,berlin,germany,linkedin.com/company/beta,,4000\n"
    )
    monkeypatch.setenv("LEADQ__ENRICHMENT__REFERENCE__PATH", str(pdl))
    monkeypatch.setenv("LEADQ__ENRICHMENT__REFERENCE__PRESET", "pdl")
    ref = ReferenceFile.from_settings(load_settings())
    acme, beta = _values(ref, "acme.io"), _values(ref, "beta.de")
    assert (acme["company_legal_name"], acme["employees"], acme["company_country"], acme["founded_year"]) == (
        "acme corp",
        130,
        "US",
        2010,
    )
    assert (beta["employees"], beta["company_country"]) == (3000, "DE")  # from the size range when no estimate


def test_missing_column_names_file_preset_and_key(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bad = tmp_path / "companies.csv"
    bad.write_text("domain,name\nacme.io,Acme\n")
    monkeypatch.setenv("LEADQ__ENRICHMENT__REFERENCE__PATH", str(bad))
    with pytest.raises(ConfigError) as err:
        ReferenceFile.from_settings(load_settings())
    assert (
        str(bad) in str(err.value)
        and "'industry'" in str(err.value)
        and "enrichment.reference.columns.industry" in str(err.value)
    )
