"""Apollo organization enrichment: GET /api/v1/organizations/enrich?domain=…

The API key comes from the environment variable named in settings (default
APOLLO_API_KEY) and is sent as the `X-Api-Key` header; it is never logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.enrichment.base import Found, Lookup
from connectors.errors import FatalError, RetriableError
from connectors.http import ProviderSkipped, ServiceClient, ServicePolicy

CONFIDENCE = 0.85


@dataclass
class ApolloProvider:
    base_url: str
    api_key: str
    policy: ServicePolicy
    name: str = "apollo"
    fields: frozenset[str] = frozenset(
        {"company_legal_name", "industry", "employees", "company_country", "founded_year", "linkedin_url",
         "description", "technologies"}
    )  # fmt: skip

    def __post_init__(self) -> None:
        self.client = ServiceClient(self.name, self.policy, {"X-Api-Key": self.api_key, "Accept": "application/json"})

    def usage(self) -> tuple[int, float]:
        return self.client.stats.calls, self.client.stats.cost

    def off_reason(self) -> str | None:
        return self.client.stats.open_reason

    def lookup(self, domain: str) -> Lookup:
        try:
            response = self.client.get(
                f"{self.base_url.rstrip('/')}/api/v1/organizations/enrich", params={"domain": domain}
            )
        except ProviderSkipped as exc:
            return Lookup("skipped", reason=str(exc))
        except (RetriableError, FatalError) as exc:
            return Lookup("error", reason=str(exc))
        self.client.charge()
        if response.status_code == 404:
            return Lookup("not_found", reason=f"apollo: no organization for {domain}")
        org: dict[str, Any] = (response.json() or {}).get("organization") or {}
        if not org:
            return Lookup("not_found", reason=f"apollo: no organization for {domain}")
        method = "apollo organizations/enrich"
        values = {
            "company_legal_name": org.get("name"),
            "industry": (org.get("industry") or "").lower() or None,
            "employees": org.get("estimated_num_employees"),
            "company_country": org.get("country"),
            "founded_year": org.get("founded_year"),
            "linkedin_url": _strip(org.get("linkedin_url")),
            "description": org.get("short_description"),
            "technologies": ", ".join(sorted(org.get("technology_names") or [])) or None,
        }
        return Lookup("ok", {k: Found(v, CONFIDENCE, method) for k, v in values.items() if v not in (None, "")})


def _strip(url: str | None) -> str | None:
    if not url:
        return None
    return url.split("://", 1)[-1].removeprefix("www.").rstrip("/")
