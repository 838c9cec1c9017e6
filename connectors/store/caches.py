"""Companies as leadq knows them, the enrichment and crew caches, and company edits by people."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import polars as pl
import sqlalchemy as sa

from connectors.store.engine import StoreEngine, chunks, table_of, utc_now
from connectors.store.models import (
    Company,
    CrewCache,
    EnrichmentCache,
)


class CompanyRecords(StoreEngine):
    def companies(self, domains: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored company rows for these domains (what the CRM already knows)."""
        table = table_of(Company)
        rows: dict[str, dict[str, Any]] = {}
        for chunk in chunks(domains):
            with self.engine.connect() as conn:
                query = sa.select(table).where(self._any_of(table.c.domain, chunk))
                for row in conn.execute(query).mappings().all():
                    rows[row["domain"]] = dict(row)
        return rows

    def company_frame(self, domains: Sequence[str], schema: dict[str, Any]) -> pl.DataFrame:
        """The stored company rows for these domains as a frame of `schema`'s columns."""
        table = table_of(Company)
        rows: list[tuple[Any, ...]] = []
        for chunk in chunks(domains):
            rows += self._fetch(
                sa.select(*(table.c[name] for name in schema)).where(self._any_of(table.c.domain, chunk))
            )
        return pl.DataFrame(rows, schema=schema, orient="row")

    def known_companies(self, domains: Sequence[str]) -> list[str]:
        """Which of these company domains the store holds (leadq wrote them before)."""
        return self.company_frame(sorted(set(domains)), {"domain": pl.String})["domain"].to_list()

    def cached_lookups(self, domains: Sequence[str], max_age: dict[str, float]) -> dict[tuple[str, str], str]:
        """Fresh cached lookups as JSON, keyed by (domain, provider); `max_age` is days per provider."""
        table = table_of(EnrichmentCache)
        now = utc_now()
        found: dict[tuple[str, str], str] = {}
        for chunk in chunks(domains):
            query = sa.select(table.c.domain, table.c.provider, table.c.fetched_at, table.c.payload).where(
                self._any_of(table.c.domain, chunk), table.c.provider.in_(list(max_age))
            )
            for domain, provider, fetched_at, payload in self._fetch(query):
                if (now - fetched_at).total_seconds() <= max_age[provider] * 86400:
                    found[(domain, provider)] = payload
        return found

    def save_lookups(self, rows: list[dict[str, Any]]) -> None:
        """Upsert (domain, provider, status, fetched_at, payload) rows into the cache."""
        with self.engine.begin() as conn:
            self._upsert(conn, EnrichmentCache, rows, ["domain", "provider"])

    def crew_judgements(
        self, domains: Sequence[str], icp_version: str, prompt_version: str, ttl_days: float
    ) -> dict[str, dict[str, Any]]:
        """Cached crew judgements by domain (then by lead email), if younger than the TTL."""
        table = table_of(CrewCache)
        now = utc_now()
        found: dict[str, dict[str, Any]] = {}
        for chunk in chunks(domains):
            query = sa.select(table.c.domain, table.c.fetched_at, table.c.payload).where(
                self._any_of(table.c.domain, chunk),
                table.c.icp_version == icp_version,
                table.c.prompt_version == prompt_version,
            )
            for domain, fetched_at, payload in self._fetch(query):
                if (now - fetched_at).total_seconds() <= ttl_days * 86400:
                    found[domain] = json.loads(payload)
        return found

    def save_judgements(self, domain: str, icp_version: str, prompt_version: str, judgements: dict[str, Any]) -> None:
        row = {
            "domain": domain,
            "icp_version": icp_version,
            "prompt_version": prompt_version,
            "fetched_at": utc_now(),
            "payload": json.dumps(judgements),
        }
        with self.engine.begin() as conn:
            self._upsert(conn, CrewCache, [row], ["domain", "icp_version", "prompt_version"])

    def edit_company(self, domain: str, values: dict[str, Any], who: str) -> None:
        """A person's edit: set the values and mark the fields so enrichment never overwrites them."""
        current = self.companies([domain]).get(domain) or {"domain": domain}
        edited = sorted(set(json.loads(current.get("edited_fields") or "[]")) | set(values))
        provenance = json.loads(current.get("provenance") or "{}")
        at = utc_now().isoformat(timespec="seconds")
        for name, value in values.items():
            provenance[name] = {
                "value": value,
                "source": f"person:{who}",
                "method": "edit",
                "fetched_at": at,
                "confidence": 1.0,
            }
        row = {
            **values,
            "domain": domain,
            "edited_fields": json.dumps(edited),
            "provenance": json.dumps(provenance),
            "updated_at": utc_now(),
        }
        with self.engine.begin() as conn:
            self._upsert(conn, Company, [row], ["domain"])
