"""Tavily search: POST {base}/search with `Authorization: Bearer tvly-…` and a JSON body.

Per Tavily's documentation: `{"query", "max_results", "search_depth": "basic" | "advanced"}`
answers `{"query", "results": [{"title", "url", "content", "score"}], "response_time"}`; a
basic search costs 1 credit and an advanced one 2. 401 is a bad key, 429 the rate limit
(retried, honouring Retry-After), 432 the plan's credits spent and 433 the pay-as-you-go
limit: both stop searching for the rest of the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import requests

from connectors.errors import FatalError, RetriableError
from connectors.http import ProviderSkipped, Retry, ServiceClient, ServicePolicy, Verdict, classify_get
from connectors.search.base import RunCache, SearchAnswer, SearchResult, SearchService, clipped

CREDITS = {"basic": 1.0, "advanced": 2.0}
OUT_OF_CREDITS = {432: "the plan's credits are spent", 433: "the pay-as-you-go limit is reached"}


@dataclass
class TavilySearch(SearchService):
    base_url: str
    api_key: str
    policy: ServicePolicy
    depth: str = "basic"
    name: str = "tavily"
    cache: RunCache = field(default_factory=RunCache)

    def __post_init__(self) -> None:
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}
        self.client = ServiceClient(self.name, self.policy, headers)

    def _ask(self, query: str, max_results: int) -> SearchAnswer:
        body = {"query": query, "max_results": max_results, "search_depth": self.depth}
        try:
            with self.client.timed():
                outcome = self.client.send(
                    "POST",
                    f"{self.base_url.rstrip('/')}/search",
                    _classify,
                    Retry(self.policy.retries + 1, self.policy.max_retry_after_s),
                    json=body,
                )
        except (ProviderSkipped, RetriableError, FatalError) as exc:
            return SearchAnswer(query, error=str(exc))
        response, verdict = outcome.response, outcome.verdict
        if verdict.action == "stop" or (response is not None and response.status_code == 401):
            self.client.skip(f"tavily: {verdict.why}")  # no later query of this run can do better
            return SearchAnswer(query, error=self.client.stats.open_reason)
        if verdict.action != "ok" or response is None or response.status_code != 200:
            why = verdict.why if verdict.action != "ok" else f"HTTP {response.status_code if response else '?'}"
            return SearchAnswer(query, error=f"tavily: {why} after {outcome.attempts} attempt(s)")
        credits = CREDITS.get(self.depth, 1.0)
        self.client.charge(credits)
        results = tuple(
            SearchResult(clipped(r.get("title"), 200), str(r.get("url") or ""), clipped(r.get("content")))
            for r in (response.json() or {}).get("results") or []
            if isinstance(r, dict) and r.get("url")
        )
        return SearchAnswer(query, results, credits=credits)


def _classify(response: requests.Response) -> Verdict:
    status = response.status_code
    if status in OUT_OF_CREDITS:
        return Verdict("stop", f"{OUT_OF_CREDITS[status]} (HTTP {status})")
    if status == 401:
        return Verdict("fatal", "the API key was refused (HTTP 401)")
    return classify_get(response)
