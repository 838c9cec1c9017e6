"""The researcher's findings as enrichment: limits on its tools, the facts it may keep, the merge.

- `ResearchMeter` holds the run's limits: tool calls per company and per run, search credits.
  Past a limit a tool answers "limit reached" and the researcher answers from what it has.
- `ResearchScope` is one company's research: its tools answer only about that domain, and it
  remembers every URL they returned, so a finding can be checked against where it came from.
- `findings_lookup` keeps the findings whose URL a tool really returned (a fact without a
  source, or with a source no tool gave, is dropped) as the enrichment provider `crew`.
- `apply_findings` merges them into the batch's leads through the waterfall's own plans: the
  canonical industry and country, each field's write policy, a person's edits.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from connectors.canonical import Industries, canonical_answers
from connectors.enrichment import choose
from connectors.enrichment.base import FIELDS, Found, Lookup
from crew.models import CompanyProfile

PROVIDER = "crew"


@dataclass
class ResearchMeter:
    """The run's research limits and what was spent; shared by the crew's threads."""

    max_calls_per_company: int
    max_calls: int
    max_credits: float
    calls: int = 0
    credits: float = 0.0
    companies: int = 0
    gained: Counter[str] = field(default_factory=Counter)  # field -> companies that gained it
    dropped: int = 0  # findings without a source a tool returned
    _per_company: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, domain: str) -> str | None:
        """None when one more tool call may run, else why not (the tool's answer to the LLM)."""
        with self._lock:
            if self.calls >= self.max_calls:
                return f"research limit reached: {self.max_calls} tool calls this run; answer from what you have"
            if self._per_company[domain] >= self.max_calls_per_company:
                return f"research limit reached: {self.max_calls_per_company} tool calls for {domain}"
            if self.max_credits and self.credits >= self.max_credits:
                return f"research limit reached: {self.max_credits:g} search credits this run"
            self.calls += 1
            self._per_company[domain] += 1
            return None

    def spend(self, credits: float) -> None:
        with self._lock:
            self.credits += credits

    def researched(self, lookup: Lookup, dropped: int) -> None:
        with self._lock:
            self.companies += 1
            self.dropped += dropped
            self.gained.update(list(lookup.fields))

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {
                "research_companies": self.companies,
                "research_tool_calls": self.calls,
                "research_search_credits": round(self.credits, 2),
                "research_fields_gained": dict(sorted(self.gained.items())),
                "research_findings_dropped": self.dropped,
            }


@dataclass
class ResearchScope:
    """One company's research: the domain its tools may touch and the URLs they returned."""

    domain: str
    meter: ResearchMeter
    seen: dict[str, str] = field(default_factory=dict)  # URL -> the tool that returned it

    def refuse(self, domain: str, tool: str) -> str | None:
        """Why a tool call is refused (another company's domain, a spent limit), or None."""
        asked = domain.strip().lower().removeprefix("www.")
        if asked != self.domain and not asked.endswith("." + self.domain):
            return f"refused: this research is about {self.domain}; {tool} does not read {asked[:100]}"
        return self.meter.admit(self.domain)

    def saw(self, tool: str, urls: list[str]) -> None:
        for url in urls:
            self.seen.setdefault(_url_key(url), tool)

    def spent(self, credits: float) -> None:
        self.meter.spend(credits)


def findings_lookup(profile: CompanyProfile, scope: ResearchScope, confidence: float) -> tuple[Lookup, int]:
    """The findings a tool's URL backs, as the `crew` provider's lookup; and how many were dropped."""
    fields: dict[str, Found] = {}
    dropped = 0
    for finding in profile.findings:
        tool = scope.seen.get(_url_key(finding.url or ""))
        value: Any = finding.value.strip()
        if finding.field == "employees":
            value = _head_count(value)
        if tool is None or value in (None, ""):
            dropped += 1
            continue
        fields.setdefault(finding.field, Found(value, confidence, tool, finding.url))
    if fields:
        return Lookup("ok", fields), dropped
    return Lookup("not_found", reason=f"crew: the research found nothing with a source for {scope.domain}"), dropped


def apply_findings(
    leads: pl.DataFrame,
    lookups: Mapping[str, Lookup],
    industries: Industries | None,
    country_aliases: dict[str, str],
    write_policy: dict[str, str],
    edited: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The batch's leads with the researched companies' fields merged in (and `company_changed` set)."""
    rows = [
        (domain, PROVIDER, name, _text(f.value), f.confidence, f.method, lookup.fetched_at, f.url)
        for domain, lookup in lookups.items()
        for name, f in lookup.fields.items()
    ]
    if not rows:
        return leads
    answers = pl.DataFrame(rows, schema=choose.ANSWERS, orient="row")
    answers, unmapped = canonical_answers(answers, industries, country_aliases)
    domains = pl.Series("domain", sorted(lookups), dtype=pl.String)
    existing = _existing(leads, domains, edited)
    notes = pl.concat(
        [
            pl.DataFrame(schema=choose.NOTES),
            unmapped,
            existing.select("domain", pl.lit("__kept__").alias("provider"), pl.col("enrichment_notes").alias("note")),
        ]
    )
    merged = choose.merge(choose.wide(domains, answers), _notes(domains, notes), existing, write_policy).rename(
        {"domain": "company_domain"}
    )
    columns = [c for c in merged.columns if c != "company_domain"]
    researched = pl.col("company_domain").is_in(domains.implode())
    fresh = merged.select("company_domain", *(pl.col(c).alias(f"_new__{c}") for c in columns))
    before = {c: pl.col(c) if c in leads.columns else pl.lit(None) for c in columns}
    return (
        leads.join(fresh, on="company_domain", how="left", maintain_order="left")
        .with_columns(pl.when(researched).then(pl.col(f"_new__{c}")).otherwise(before[c]).alias(c) for c in columns)
        .drop([f"_new__{c}" for c in columns])
    )


def _existing(leads: pl.DataFrame, domains: pl.Series, edited: pl.DataFrame | None) -> pl.DataFrame:
    """What the batch already says of these companies, in the store's shape (`choose.STORED`)."""
    own = {"company_legal_name": "name", "company_country": "country", "company_sources": "sources"}
    own |= {"company_provenance": "provenance"}
    columns = {
        target: (pl.col(source) if source in leads.columns else pl.lit(None)).alias(target)
        for source, target in {**{f: choose.STORE_COLUMN.get(f, f) for f in FIELDS}, **own}.items()
    }
    columns["enrichment_notes"] = (
        pl.col("enrichment_notes") if "enrichment_notes" in leads.columns else pl.lit(None)
    ).alias("enrichment_notes")
    frame = (
        leads.filter(pl.col("company_domain").is_in(domains.implode()))
        .unique("company_domain", keep="first")
        .select(pl.col("company_domain").alias("domain"), *columns.values())
        .with_columns(pl.lit(None, dtype=pl.String).alias("edited_fields"))
    )
    if edited is not None and not edited.is_empty():
        frame = frame.drop("edited_fields").join(edited.select("domain", "edited_fields"), on="domain", how="left")
    return frame.select(list(choose.STORED)).cast(pl.Schema(choose.STORED))


def _notes(domains: pl.Series, notes: pl.DataFrame) -> pl.DataFrame:
    """The notes the companies had, with the research's own (an unmapped industry) added to them."""
    kept = notes.filter(pl.col("provider") == "__kept__").select("domain", pl.col("note").alias("kept"))
    fresh = choose.notes_json(domains, notes.filter(pl.col("provider") != "__kept__"), ["industry", "country"])
    joined = fresh.join(kept, on="domain", how="left")
    both = pl.concat_str([pl.col("kept").str.strip_suffix("}"), pl.lit(", "), pl.col("notes").str.strip_prefix("{")])
    notes_json = (
        pl.when(pl.col("notes").is_null())
        .then(pl.col("kept"))
        .when(pl.col("kept").is_null())
        .then(pl.col("notes"))
        .otherwise(both)
    )
    return joined.select("domain", notes_json.alias("notes"))


def _head_count(text: str) -> int | None:
    """'120' → 120, '1,200 employees' → 1200, '51-200' → 125 (a range's midpoint)."""
    numbers = [int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", text)]
    if not numbers:
        return None
    return (numbers[0] + numbers[1]) // 2 if len(numbers) > 1 else numbers[0]


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _url_key(url: str) -> str:
    return url.strip().rstrip("/").lower()
