"""Web search for the crew's researcher: one interface, two services (Tavily and a SearXNG instance).

Both go through `connectors.http.ServiceClient`: rate limit, retries on 429/5xx honouring
Retry-After, a circuit breaker, credits per call and a per-run credit budget. Answers are
cached for the run (the same query costs once), and results are strangers' text: the
caller hands them on as untrusted data.
"""

from __future__ import annotations

import os

from connectors.http import service_policy
from connectors.redact import secret
from connectors.search.base import SearchAnswer, SearchResult, WebSearch
from connectors.search.searxng import SearxngSearch
from connectors.search.tavily import TavilySearch
from connectors.settings import Settings

__all__ = ["SearchAnswer", "SearchResult", "WebSearch", "build_search"]


def build_search(settings: Settings, environ: dict[str, str] | None = None) -> tuple[WebSearch | None, str | None]:
    """The configured search service, or None and the reason there is none."""
    s = settings.research.search
    env = os.environ if environ is None else environ
    if s.kind == "none" or not s.enabled:
        return None, 'web search is off ([research.search] kind = "none")'
    policy = service_policy(s)
    if s.kind == "tavily":
        key = secret(env.get(s.api_key_env, ""))
        if not key:
            return None, f"{s.api_key_env} is not set"
        return TavilySearch(s.base_url or "https://api.tavily.com", key, policy, s.depth), None
    if not s.base_url:
        return None, "[research.search] base_url names no SearXNG instance"
    return SearxngSearch(s.base_url, policy), None
