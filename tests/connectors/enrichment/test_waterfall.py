from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from connectors.enrichment.base import Found, Lookup
from connectors.enrichment.reference import ReferenceFile
from connectors.enrichment.waterfall import Enricher
from connectors.store import Store


@dataclass
class Scripted:
    """A provider whose answers a test writes down; it counts the calls it gets."""

    name: str
    answers: dict[str, dict[str, tuple[object, float]]]
    fields: frozenset[str] = frozenset({"industry", "employees", "company_country"})
    calls: list[str] = field(default_factory=list)

    def lookup(self, domain: str) -> Lookup:
        self.calls.append(domain)
        found = self.answers.get(domain)
        if found is None:
            return Lookup("not_found", reason=f"{self.name} knows nothing of {domain}")
        return Lookup("ok", {k: Found(v, c, f"{self.name} api") for k, (v, c) in found.items()})

    def usage(self) -> tuple[int, float]:
        return len(self.calls), float(len(self.calls))

    def off_reason(self) -> str | None:
        return None


def _leads(*domains: str) -> pl.DataFrame:
    return pl.DataFrame({"email": [f"x@{d}" for d in domains], "company_domain": list(domains)})


def _enricher(*providers: Scripted, orders: dict[str, list[str]] | None = None, **kwargs: object) -> Enricher:
    ttl = {p.name: 30.0 for p in providers}
    return Enricher(list(providers), orders or {}, 0.7, ttl, kwargs.pop("policy", {}), max_workers=4, **kwargs)  # type: ignore[arg-type]


def test_first_sure_value_wins_and_unneeded_providers_are_not_called() -> None:
    cheap = Scripted(
        "cheap", {"a.io": {"industry": ("software", 0.9), "employees": (50, 0.9), "company_country": ("US", 0.9)}}
    )
    paid = Scripted("paid", {"a.io": {"industry": ("fintech", 0.95)}})
    out = _enricher(cheap, paid).enrich(_leads("a.io", "a.io"), None).to_dicts()
    assert out[0]["industry"] == "software"
    assert paid.calls == [] and cheap.calls == ["a.io"]  # one lookup for two leads of one company


def test_field_order_is_per_field_and_unsure_values_fall_through() -> None:
    cheap = Scripted("cheap", {"a.io": {"industry": ("software", 0.5), "employees": (50, 0.9)}})
    paid = Scripted("paid", {"a.io": {"industry": ("fintech", 0.8), "company_country": ("Germany", 0.8)}})
    enricher = _enricher(cheap, paid, orders={"company_country": ["paid", "cheap"]})
    row = enricher.enrich(_leads("a.io"), None).row(0, named=True)
    assert (row["industry"], row["employees"], row["company_country"]) == ("fintech", 50, "DE")
    provenance = json.loads(row["company_provenance"])
    assert provenance["industry"]["source"] == "paid" and provenance["industry"]["confidence"] == 0.8
    employees = dict(provenance["employees"])
    fetched_at = datetime.fromisoformat(employees.pop("fetched_at"))
    assert employees == {"value": 50, "source": "cheap", "method": "cheap api", "confidence": 0.9}
    assert abs(datetime.now(UTC).replace(tzinfo=None) - fetched_at) < timedelta(minutes=1)  # when it was asked
    assert row["company_sources"] == "cheap, paid"


def test_cache_makes_a_rerun_free_until_refresh_or_expiry(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'leadq.db'}")
    store.create()
    paid = Scripted("paid", {"a.io": {"industry": ("software", 0.9)}, "b.io": {"employees": (10, 0.9)}})
    leads = _leads("a.io", "b.io", "c.io")
    first = _enricher(paid).enrich(leads, store)
    assert sorted(paid.calls) == ["a.io", "b.io", "c.io"]
    again = _enricher(paid).enrich(leads, store)
    assert len(paid.calls) == 3  # zero calls: answers and "not found" both came from the cache
    assert again.drop("company_provenance").equals(first.drop("company_provenance"))
    _enricher(paid).enrich(leads, store, refresh=True)
    assert len(paid.calls) == 6
    expired = Enricher([paid], {}, 0.7, {"paid": 0.0}, {})
    expired.enrich(leads, store)
    assert len(paid.calls) == 9
    assert _enricher(paid).enrich(_leads("d.io"), store, save=False) is not None
    assert store.counts()["enrichment_cache"] == 3  # a dry run (save=False) stores nothing


def test_write_policy_and_a_persons_edit(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'leadq.db'}")
    store.create()
    store.edit_company("a.io", {"industry": "healthcare", "name": "A Health"}, who="rita@revops")
    with store.engine.begin() as conn:
        conn.exec_driver_sql("update companies set employees = 12, country = 'FR' where domain = 'a.io'")
    paid = Scripted(
        "paid", {"a.io": {"industry": ("software", 0.9), "employees": (300, 0.9), "company_country": ("US", 0.9)}}
    )
    row = (
        _enricher(paid, policy={"employees": "always", "industry": "always"})
        .enrich(_leads("a.io"), store)
        .row(0, named=True)
    )
    assert row["industry"] == "healthcare"  # edited by a person: never overwritten, even with "always"
    assert row["company_legal_name"] == "A Health"
    assert row["employees"] == 300  # "always"
    assert row["company_country"] == "FR"  # fill_if_empty keeps what the CRM has
    assert json.loads(row["company_provenance"])["industry"]["source"] == "person:rita@revops"


def _reference(tmp_path: Path) -> ReferenceFile:
    path = tmp_path / "companies.csv"
    path.write_text(
        "domain,name,industry,employees,country,founded_year,linkedin_url\n"
        "a.io,A Inc,Software,120,Germany,2015,\n"
        'b.io,"B, Ltd",Fintech,"1,200",,,\n'
    )
    return ReferenceFile(path, "leadq", {}, {})


def test_the_file_answers_a_batch_in_one_join_as_the_per_domain_waterfall_would(tmp_path: Path) -> None:
    leads = _leads("a.io", "b.io", "c.io", "a.io")
    joined = _enricher(_reference(tmp_path)).enrich(leads, None)  # type: ignore[arg-type]
    silent = Scripted("silent", {})  # a live provider that calls out: every domain takes the per-domain path
    per_domain = _enricher(_reference(tmp_path), silent).enrich(leads, None)  # type: ignore[arg-type]
    assert sorted(silent.calls) == ["b.io", "c.io"]  # a.io's three fields were settled by the file
    by_domain = {r["company_domain"]: r for r in joined.to_dicts()}
    assert (by_domain["a.io"]["industry"], by_domain["a.io"]["employees"]) == ("software", 120)
    assert (by_domain["a.io"]["company_country"], by_domain["a.io"]["company_legal_name"]) == ("DE", "A Inc")
    assert (by_domain["b.io"]["company_legal_name"], by_domain["b.io"]["employees"]) == ("B, Ltd", 1200)
    assert by_domain["c.io"]["industry"] is None and by_domain["c.io"]["company_sources"] is None
    assert json.loads(by_domain["c.io"]["enrichment_notes"]) == {
        "reference": "not_found: companies.csv: no row for c.io"
    }
    provenance = json.loads(by_domain["a.io"]["company_provenance"])
    assert provenance["employees"]["value"] == 120 and provenance["employees"]["source"] == "reference"
    assert provenance["industry"]["method"] == "reference file companies.csv"
    assert set(provenance) == {"company_legal_name", "industry", "employees", "company_country", "founded_year"}
    keep = ["company_domain", "company_legal_name", "industry", "employees", "company_country", "company_sources"]
    assert joined.select(keep).equals(per_domain.select(keep))

    def when_aside(text: str | None) -> dict[str, dict[str, object]] | None:  # the two runs may straddle a second
        return {k: {**v, "fetched_at": None} for k, v in json.loads(text).items()} if text else None

    for a, b in zip(joined["company_provenance"], per_domain["company_provenance"], strict=True):
        assert when_aside(a) == when_aside(b)


def test_a_surer_provider_overrides_the_file_only_where_the_order_says(tmp_path: Path) -> None:
    paid = Scripted("paid", {"b.io": {"industry": ("payments", 0.95), "company_country": ("United Kingdom", 0.9)}})
    enricher = _enricher(_reference(tmp_path), paid, orders={"industry": ["paid", "reference"]})  # type: ignore[arg-type]
    row = enricher.enrich(_leads("b.io"), None).row(0, named=True)
    assert (row["industry"], row["company_country"], row["employees"]) == ("payments", "GB", 1200)
    assert row["company_sources"] == "paid, reference"
