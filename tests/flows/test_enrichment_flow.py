"""Enrichment inside a real run: a local website that declares its company in JSON-LD."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from connectors.settings import load_settings
from connectors.store import Store
from connectors.store.export import export_leads
from flows.qualify import qualify_signups
from tests.fakes import FakeHttp, Reply, html

pytestmark = pytest.mark.usefixtures("prefect_api")

ORG = {
    "@context": "https://schema.org",
    "@type": "Organization",
    "name": "Jsonld Co",
    "industry": "Computer Software",
    "numberOfEmployees": {"@type": "QuantitativeValue", "value": 640},
    "address": {"@type": "PostalAddress", "addressCountry": "CA"},
}


def _signups(path: Path, *emails: str, start: int = 0) -> Path:
    pl.DataFrame(
        {
            "email": list(emails),
            "job_title": ["VP Sales"] * len(emails),
            "signed_up_at": [f"2026-11-0{start + i + 1}T10:00:00Z" for i in range(len(emails))],
        }
    ).write_csv(path)
    return path


@pytest.fixture
def site(fake_http: FakeHttp, monkeypatch: pytest.MonkeyPatch, config_dir: Path) -> FakeHttp:
    fake_http.routes["/sites/jsonld-co.com/"] = html(f'<script type="application/ld+json">{json.dumps(ORG)}</script>')
    monkeypatch.setenv("LEADQ__ENRICHMENT__WEBSITE__URL_TEMPLATE", fake_http.url + "/sites/{domain}/")
    monkeypatch.setenv("LEADQ__ENRICHMENT__WEBSITE__PROBE_HOST", "")
    monkeypatch.setenv("LEADQ__ENRICHMENT__WEBSITE__ENABLED", "true")
    monkeypatch.setenv("LEADQ__ENRICHMENT__DNS__ENABLED", "false")
    return fake_http


def test_export_shows_what_the_website_declares(
    site: FakeHttp, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LEADQ__ENRICHMENT__WEBSITE__ALLOW_PRIVATE_NETWORKS", "true")
    path = _signups(tmp_path / "s.csv", "ana@jsonld-co.com", "bo@jsonld-co.com", "cy@northwind.io")
    summary = qualify_signups(source=str(path))
    assert summary["enrichment_calls"]["website"] == 2  # one per company, not per lead
    leads = {r["email"]: r for r in export_leads(Store(load_settings().store_url)).to_dicts()}
    ana = leads["ana@jsonld-co.com"]
    assert (ana["industry"], ana["employees"], ana["company_country"]) == ("computer software", 640, "CA")
    assert ana["company_sources"] == "website"
    assert leads["cy@northwind.io"]["company_sources"] == "reference"  # the file answered first, sure enough
    assert site.hits("/sites/jsonld-co.com/") == 1

    later = _signups(tmp_path / "later.csv", "dee@jsonld-co.com", start=5)
    again = qualify_signups(source=str(later))
    assert again["processed"] == 1 and again["enrichment_calls"]["website"] == 0  # cached
    assert site.hits("/sites/jsonld-co.com/") == 1


def test_a_site_on_a_private_address_is_not_fetched_and_the_reason_is_kept(site: FakeHttp, tmp_path: Path) -> None:
    path = _signups(tmp_path / "s.csv", "ana@jsonld-co.com")
    qualify_signups(source=str(path))
    assert site.seen == []
    row = export_leads(Store(load_settings().store_url)).row(0, named=True)
    notes = json.loads(row["enrichment_notes"])
    assert notes["website"].startswith("refused: 127.0.0.1 resolves to 127.0.0.1")
    assert row["industry"] is None


def test_a_site_whose_page_breaks_off_does_not_fail_the_run(
    site: FakeHttp, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A body shorter than its Content-Length used to fail every run, forever; now it is that domain's answer."""
    monkeypatch.setenv("LEADQ__ENRICHMENT__WEBSITE__ALLOW_PRIVATE_NETWORKS", "true")
    site.routes["/sites/jsonld-co.com/"] = Reply(
        200, "<title>Jsonld", {"Content-Type": "text/html"}, declared_length=10_000
    )
    path = _signups(tmp_path / "s.csv", "ana@jsonld-co.com", "bo@jsonld-co.com")
    summary = qualify_signups(source=str(path))
    assert (summary["processed"], summary["leads"], summary["rejected"]) == (2, 2, 0)
    assert summary["enrichment_time_s"]["website"] >= 0
    row = export_leads(Store(load_settings().store_url)).row(0, named=True)
    assert "not_found:" in json.loads(row["enrichment_notes"])["website"]
    assert "broke off" in json.loads(row["enrichment_notes"])["website"]
    later = _signups(tmp_path / "later.csv", "cy@jsonld-co.com", start=5)
    assert qualify_signups(source=str(later))["leads"] == 1
    assert site.hits("/sites/jsonld-co.com/") == 1  # the answer was kept: the next run did not ask again
