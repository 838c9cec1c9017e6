"""A SearXNG instance: GET {instance}/search?q=…&format=json.

Per SearXNG's documentation the JSON format must be enabled in the instance's settings.yml
(`search.formats`), else it answers 403; results are `{"title", "url", "content", "engine"}`.
A public instance's limiter answers 429 (retried, honouring Retry-After). Searches cost no
credits; `cost_per_call` can still price them for the budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from connectors.errors import FatalError, RetriableError
from connectors.http import ProviderSkipped, ServiceClient, ServicePolicy
from connectors.search.base import RunCache, SearchAnswer, SearchResult, SearchService, clipped


@dataclass
class SearxngSearch(SearchService):
    base_url: str
    policy: ServicePolicy
    name: str = "searxng"
    cache: RunCache = field(default_factory=RunCache)

    def __post_init__(self) -> None:
        self.client = ServiceClient(self.name, self.policy, {"Accept": "application/json"})

    def _ask(self, query: str, max_results: int) -> SearchAnswer:
        url = f"{self.base_url.rstrip('/')}/search"
        try:
            with self.client.timed():
                response = self.client.get(url, params={"q": query, "format": "json"})
        except FatalError as exc:
            if "403" in str(exc):
                self.client.skip("searxng: the instance refuses format=json (enable it in search.formats)")
                return SearchAnswer(query, error=self.client.stats.open_reason)
            return SearchAnswer(query, error=str(exc))
        except (ProviderSkipped, RetriableError) as exc:
            return SearchAnswer(query, error=str(exc))
        if response.status_code != 200:
            return SearchAnswer(query, error=f"searxng: {url}: HTTP {response.status_code}")
        self.client.charge()
        results = tuple(
            SearchResult(clipped(r.get("title"), 200), str(r.get("url") or ""), clipped(r.get("content")))
            for r in ((response.json() or {}).get("results") or [])[:max_results]
            if isinstance(r, dict) and r.get("url")
        )
        return SearchAnswer(query, results, credits=self.policy.cost_per_call)
