"""The enrichment waterfall: per company domain, per field, providers in order until one is sure.

For each field the providers are asked in the configured order and the first value
with at least `min_confidence` wins (else the most confident one found). A provider
is called at most once per domain, only when a field still needs it, and its answer
is cached in the store per (domain, provider). Every value keeps its provenance:
`{value, source, method, fetched_at, confidence}`.

The result is merged with what the CRM already holds under each field's write
policy (fill_if_empty, always, never); a field a person edited is never overwritten.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl

from connectors.enrichment.base import FIELDS, Lookup, Provider
from connectors.prepare.people import country_codes
from connectors.store import Store

# enrichment field -> column of the companies table, where the names differ
STORE_COLUMN = {"company_legal_name": "name", "company_country": "country"}
SCHEMA = {
    "domain": pl.String,
    "company_legal_name": pl.String,
    "industry": pl.String,
    "employees": pl.Int64,
    "company_country": pl.String,
    "founded_year": pl.Int64,
    "linkedin_url": pl.String,
    "description": pl.String,
    "email_provider": pl.String,
    "technologies": pl.String,
    "company_sources": pl.String,
    "company_provenance": pl.String,
    "enrichment_notes": pl.String,
    "company_changed": pl.Boolean,
}


@dataclass
class Resolved:
    """The waterfall's outcome for one domain."""

    chosen: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    fresh: list[tuple[str, Lookup]] = field(default_factory=list)


@dataclass
class Enricher:
    providers: list[Provider]
    field_orders: dict[str, list[str]]
    min_confidence: float
    ttl_days: dict[str, float]
    write_policy: dict[str, str]
    max_workers: int = 8
    country_aliases: dict[str, str] = field(default_factory=dict)
    inactive: dict[str, str] = field(default_factory=dict)  # provider -> why it is off this run

    def __post_init__(self) -> None:
        self._by_name = {p.name: p for p in self.providers}
        self._default_order = [p.name for p in self.providers]
        self._seconds = {p.name: 0.0 for p in self.providers}
        self._seconds_lock = threading.Lock()

    def usage(self) -> dict[str, tuple[int, float]]:
        return {p.name: p.usage() for p in self.providers}

    def seconds(self) -> dict[str, float]:
        """Wall time each provider's lookups took this run, summed over the worker threads."""
        with self._seconds_lock:
            return {name: round(spent, 2) for name, spent in self._seconds.items()}

    def _ask(self, provider: Provider, domain: str) -> Lookup:
        """One provider's answer; whatever goes wrong outside is that domain's error, never the run's."""
        started = time.monotonic()
        try:
            return provider.lookup(domain)
        except Exception as exc:  # a provider's bug or a stranger's answer must not fail the batch
            return Lookup("error", reason=f"{provider.name}: {type(exc).__name__}: {str(exc)[:300]}")
        finally:
            with self._seconds_lock:
                self._seconds[provider.name] += time.monotonic() - started

    def off(self) -> dict[str, str]:
        """Providers that did not run (or stopped) this run, with the reason."""
        reasons = {p.name: p.off_reason() for p in self.providers}
        return {**self.inactive, **{name: why for name, why in reasons.items() if why}}

    def enrich(
        self, leads: pl.DataFrame, store: Store | None, refresh: bool = False, save: bool = True
    ) -> pl.DataFrame:
        """Add company fields to a batch; one waterfall per distinct company domain."""
        domains = sorted(leads["company_domain"].drop_nulls().unique().to_list())
        cacheable = {p.name: self.ttl_days.get(p.name, 0.0) for p in self.providers if getattr(p, "cached", True)}
        cached = store.cached_lookups(domains, cacheable) if store and not refresh and domains else {}
        existing = store.companies(domains) if store and domains else {}
        resolved = self._resolve_all(domains, cached)
        if store and save:
            rows = [
                {
                    "domain": d,
                    "provider": name,
                    "status": lookup.status,
                    "payload": json.dumps(lookup.to_json()),
                    "fetched_at": datetime.fromisoformat(lookup.fetched_at),
                }
                for d, r in resolved.items()
                for name, lookup in r.fresh
            ]
            if rows:
                store.save_lookups(rows)
        companies = self._companies(domains, resolved, existing)
        typed = pl.col("company_name") if "company_name" in leads.columns else pl.lit(None, dtype=pl.String)
        return leads.join(companies, left_on="company_domain", right_on="domain", how="left").with_columns(
            pl.coalesce(pl.col("company_legal_name"), typed).alias("company_legal_name")
        )

    def _resolve_all(self, domains: Sequence[str], cached: dict[tuple[str, str], str]) -> dict[str, Resolved]:
        """Waterfalls for all domains; on `max_workers` threads when a provider may go out to the network."""
        for provider in self.providers:
            reason = provider.off_reason()
            if reason:
                self.inactive.setdefault(provider.name, reason)
        live = {p.name for p in self.providers if p.name not in self.inactive}
        remote = any(getattr(self._by_name[name], "cached", True) for name in live)
        workers = min(self.max_workers, len(domains)) if remote else 1
        if workers <= 1:
            return {d: self._resolve(d, cached, live) for d in domains}
        shares = [domains[i::workers] for i in range(workers)]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="enrich") as pool:
            parts = pool.map(lambda share: {d: self._resolve(d, cached, live) for d in share}, shares)
            return {d: r for part in parts for d, r in part.items()}

    def _resolve(self, domain: str, cached: dict[tuple[str, str], str], live: set[str]) -> Resolved:
        out = Resolved()
        answers: dict[str, Lookup] = {}

        def ask(name: str) -> Lookup:
            if name not in answers:
                if (domain, name) in cached:
                    answers[name] = Lookup.from_json(json.loads(cached[(domain, name)]))
                else:
                    answers[name] = self._ask(self._by_name[name], domain)
                    if getattr(self._by_name[name], "cached", True) and answers[name].cacheable:
                        out.fresh.append((name, answers[name]))
            return answers[name]

        for name_of_field in FIELDS:
            best: dict[str, Any] | None = None
            for name in self.field_orders.get(name_of_field, self._default_order):
                provider = self._by_name.get(name)
                if provider is None or name_of_field not in provider.fields:
                    continue
                if name not in live and (domain, name) not in cached:
                    continue
                answer = ask(name)
                found = answer.fields.get(name_of_field)
                if found is not None and (best is None or found.confidence > best["confidence"]):
                    best = {
                        "value": found.value,
                        "source": name,
                        "method": found.method,
                        "fetched_at": answer.fetched_at,
                        "confidence": found.confidence,
                    }
                if best is not None and best["confidence"] >= self.min_confidence:
                    break
            if best is not None:
                out.chosen[name_of_field] = best
        out.notes = {n: f"{a.status}: {a.reason}" for n, a in answers.items() if a.status != "ok" and a.reason}
        return out

    def _companies(
        self, domains: Sequence[str], resolved: dict[str, Resolved], existing: dict[str, dict[str, Any]]
    ) -> pl.DataFrame:
        """One row per domain: the merged values, their provenance, sources and notes.

        `company_changed` is false when the CRM row already says all of it, so sync can skip it."""
        rows = []
        for domain in domains:
            old = existing.get(domain)
            found = resolved[domain]
            edited = set(json.loads(old["edited_fields"])) if old and old.get("edited_fields") else set()
            values: dict[str, Any] = {}
            updates: dict[str, dict[str, Any]] = {}
            for name in FIELDS:
                old_value = old.get(STORE_COLUMN.get(name, name)) if old else None
                new = found.chosen.get(name)
                policy = self.write_policy.get(name, "fill_if_empty")
                keep = (
                    new is None
                    or STORE_COLUMN.get(name, name) in edited
                    or policy == "never"
                    or new["value"] == old_value
                    or (policy == "fill_if_empty" and old_value not in (None, ""))
                )
                values[name] = old_value if keep else new["value"]  # type: ignore[index]
                if not keep:
                    updates[name] = new  # type: ignore[assignment]
            notes = json.dumps(found.notes) if found.notes else None
            if old is not None and not updates and notes == old.get("enrichment_notes"):
                rows.append(
                    {
                        "domain": domain,
                        **values,
                        "company_sources": old.get("sources"),
                        "company_provenance": old.get("provenance"),
                        "enrichment_notes": notes,
                        "company_changed": False,
                    }
                )
                continue
            old_provenance = json.loads(old.get("provenance") or "{}") if old else {}
            provenance: dict[str, dict[str, Any]] = {}
            for name in FIELDS:
                origin = updates.get(name) or old_provenance.get(name)
                if values[name] not in (None, "") and origin:
                    provenance[name] = origin
            rows.append(
                {
                    "domain": domain,
                    **values,
                    "company_sources": ", ".join(sorted({p["source"] for p in provenance.values()})) or None,
                    "company_provenance": json.dumps(provenance, default=str) if provenance else None,
                    "enrichment_notes": notes,
                    "company_changed": True,
                }
            )
        frame = pl.DataFrame(
            [{k: _coerce(v, SCHEMA[k]) for k, v in r.items()} for r in rows], schema=SCHEMA, orient="row"
        )
        codes = country_codes(frame["company_country"], self.country_aliases)
        return (
            frame.join(codes, left_on="company_country", right_on="country_in", how="left")
            .with_columns(pl.col("country_code").alias("company_country"))
            .drop("country_code")
        )


def _coerce(value: Any, dtype: Any) -> Any:
    """Provider values arrive as text or numbers; make them fit the column."""
    if value in (None, ""):
        return None
    if dtype == pl.Boolean:
        return bool(value)
    if dtype == pl.Int64:
        try:
            return int(float(str(value).replace(",", "")))
        except ValueError:
            return None
    return str(value)
