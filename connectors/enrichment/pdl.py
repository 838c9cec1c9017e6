"""People Data Labs company enrichment: GET /v5/company/enrich?website=…

404 means no match and is not billed; a match's `likelihood` (1-10) becomes the
confidence. The key comes from the environment (default PDL_API_KEY), sent as
`X-Api-Key`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.enrichment.api import ApiProvider
from connectors.enrichment.base import FIELDS, Found, Lookup


@dataclass
class PdlProvider(ApiProvider):
    name = "pdl"
    fields = frozenset(FIELDS) - {"email_provider", "technologies"}

    def lookup(self, domain: str) -> Lookup:
        response = self._get("/v5/company/enrich", {"website": domain})
        if isinstance(response, Lookup):
            return response
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
