"""People Data Labs company enrichment: GET /v5/company/enrich?website=…

404 means no match and is not billed; a match's `likelihood` (1-10) becomes the
confidence. The key comes from the environment (default PDL_API_KEY), sent as
`X-Api-Key`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.enrichment.base import Found, Lookup
from connectors.errors import FatalError, RetriableError
from connectors.http import ProviderSkipped, ServiceClient, ServicePolicy


@dataclass
class PdlProvider:
    base_url: str
    api_key: str
    policy: ServicePolicy
    name: str = "pdl"
    fields: frozenset[str] = frozenset(
        {
            "company_legal_name",
            "industry",
            "employees",
            "company_country",
            "founded_year",
            "linkedin_url",
            "description",
        }
    )

    def __post_init__(self) -> None:
        self.client = ServiceClient(self.name, self.policy, {"X-Api-Key": self.api_key, "Accept": "application/json"})

    def usage(self) -> tuple[int, float]:
        return self.client.stats.calls, self.client.stats.cost

    def off_reason(self) -> str | None:
        return self.client.stats.open_reason

    def lookup(self, domain: str) -> Lookup:
        try:
            response = self.client.get(f"{self.base_url.rstrip('/')}/v5/company/enrich", params={"website": domain})
        except ProviderSkipped as exc:
            return Lookup("skipped", reason=str(exc))
        except (RetriableError, FatalError) as exc:
            return Lookup("error", reason=str(exc))
        if response.status_code == 404:
            return Lookup("not_found", reason=f"pdl: no company matches {domain}")
        self.client.charge()
        data: dict[str, Any] = response.json() or {}
        confidence = min(max(float(data.get("likelihood") or 6) / 10, 0.0), 1.0)
        method = f"pdl company/enrich (likelihood {data.get('likelihood')})"
        location = data.get("location") or {}
        values = {
            "company_legal_name": data.get("display_name") or data.get("name"),
            "industry": data.get("industry"),
            "employees": data.get("employee_count"),
            "company_country": location.get("country") if isinstance(location, dict) else None,
            "founded_year": data.get("founded"),
            "linkedin_url": data.get("linkedin_url"),
            "description": data.get("summary") or data.get("headline"),
        }
        return Lookup("ok", {k: Found(v, confidence, method) for k, v in values.items() if v not in (None, "")})
