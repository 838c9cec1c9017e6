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
from typing import Any

import polars as pl

from connectors.canonical import Industries, canonical_answers
from connectors.enrichment import choose
from connectors.enrichment.base import FIELDS, Lookup, Provider
from connectors.store import Store


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
    industries: Industries | None = None  # the canonical list every provider's industry is mapped onto

    def __post_init__(self) -> None:
        self._by_name = {p.name: p for p in self.providers}
        self._default_order = [p.name for p in self.providers]
        self._ranks = choose.ranks(self.field_orders, self._default_order, {p.name: p.fields for p in self.providers})
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
        """Add company fields to a batch; one waterfall per distinct company domain.

        Providers that hold a table (the reference file) answer the whole batch in one join;
        a domain goes through the per-domain waterfall only when a provider that calls out
        (or its cached answer) may still have something to say about it."""
        domains = leads["company_domain"].drop_nulls().unique().sort()
        names = domains.to_list()
        cacheable = {p.name: self.ttl_days.get(p.name, 0.0) for p in self.providers if getattr(p, "cached", True)}
        cached = store.cached_lookups(names, cacheable) if store and not refresh and names else {}
        existing = store.company_frame(names, choose.STORED) if store and names else pl.DataFrame(schema=choose.STORED)
        live = self._live()
        tables = [p for p in self.providers if p.name in live and callable(getattr(p, "answers", None))]
        calls_out = any(p.name in live and p not in tables for p in self.providers)
        per_domain = domains.is_in({d for d, _ in cached}) | calls_out
        resolved = self._resolve_all(domains.filter(per_domain).to_list(), cached, live)
        if store and save:
            self._save(store, resolved)
        answers, notes = self._from_tables(tables, domains.filter(~per_domain))
        chosen = pl.concat(
            [choose.pick(answers, self._ranks, self.min_confidence), _chosen_rows(resolved)], how="vertical"
        )
        chosen, unmapped = canonical_answers(chosen, self.industries, self.country_aliases)
        notes = pl.concat([notes, _notes_rows(resolved), unmapped], how="vertical")
        companies = choose.merge(
            choose.wide(domains, chosen),
            choose.notes_json(domains, notes, [*(p.name for p in self.providers), "industry", "country"]),
            existing,
            self.write_policy,
        )
        typed = pl.col("company_name") if "company_name" in leads.columns else pl.lit(None, dtype=pl.String)
        return leads.join(companies, left_on="company_domain", right_on="domain", how="left").with_columns(
            pl.coalesce(pl.col("company_legal_name"), typed).alias("company_legal_name")
        )

    def _live(self) -> set[str]:
        """The providers that may still answer this run (their off reasons kept for the summary)."""
        for provider in self.providers:
            reason = provider.off_reason()
            if reason:
                self.inactive.setdefault(provider.name, reason)
        return {p.name for p in self.providers if p.name not in self.inactive}

    def _from_tables(self, tables: list[Provider], domains: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Every table provider's answers and notes for these domains, in the long form."""
        answers = [pl.DataFrame(schema=choose.ANSWERS)]
        notes = [pl.DataFrame(schema=choose.NOTES)]
        for provider in tables:
            found, missing = provider.answers(domains)  # type: ignore[attr-defined]
            found = found.with_columns(
                pl.lit(None, dtype=pl.String).alias(c) for c in choose.ANSWERS if c not in found.columns
            )
            answers.append(found.select(list(choose.ANSWERS)).cast(choose.ANSWERS))
            notes.append(missing.select(list(choose.NOTES)))
        return pl.concat(answers), pl.concat(notes)

    @staticmethod
    def _save(store: Store, resolved: dict[str, Resolved]) -> None:
        """Keep the answers providers gave this run in the cache."""
        rows = [lookup.cache_row(d, name) for d, r in resolved.items() for name, lookup in r.fresh]
        if rows:
            store.save_lookups(rows)

    def _resolve_all(
        self, domains: Sequence[str], cached: dict[tuple[str, str], str], live: set[str]
    ) -> dict[str, Resolved]:
        """Waterfalls for all domains; on `max_workers` threads when a provider may go out to the network."""
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
                        "url": found.url,
                    }
                if best is not None and best["confidence"] >= self.min_confidence:
                    break
            if best is not None:
                out.chosen[name_of_field] = best
        out.notes = {n: f"{a.status}: {a.reason}" for n, a in answers.items() if a.status != "ok" and a.reason}
        return out


def _chosen_rows(resolved: dict[str, Resolved]) -> pl.DataFrame:
    """The per-domain waterfall's picks in the long form (`choose.ANSWERS`)."""
    rows = [
        (
            domain,
            best["source"],
            name,
            _text(best["value"]),
            best["confidence"],
            best["method"],
            best["fetched_at"],
            best.get("url"),
        )
        for domain, r in resolved.items()
        for name, best in r.chosen.items()
    ]
    return pl.DataFrame(rows, schema=choose.ANSWERS, orient="row")


def _notes_rows(resolved: dict[str, Resolved]) -> pl.DataFrame:
    rows = [(domain, provider, note) for domain, r in resolved.items() for provider, note in r.notes.items()]
    return pl.DataFrame(rows, schema=choose.NOTES, orient="row")


def _text(value: Any) -> str | None:
    """Provider values arrive as text or numbers; the long form holds them as text."""
    return None if value in (None, "") else str(value)
