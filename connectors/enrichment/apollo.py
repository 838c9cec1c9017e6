"""Apollo organization enrichment: GET /api/v1/organizations/enrich?domain=…

The API key comes from the environment variable named in settings (default
APOLLO_API_KEY) and is sent as the `X-Api-Key` header; it is never logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.enrichment.api import ApiProvider
from connectors.enrichment.base import FIELDS, Found, Lookup

CONFIDENCE = 0.85


@dataclass
class ApolloProvider(ApiProvider):
    name = "apollo"
    fields = frozenset(FIELDS) - {"email_provider"}

    def lookup(self, domain: str) -> Lookup:
        response = self._get("/api/v1/organizations/enrich", {"domain": domain})
        if isinstance(response, Lookup):
            return response
        self.client.charge()
        org: dict[str, Any] = (response.json() or {}).get("organization") or {} if response.status_code != 404 else {}
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
