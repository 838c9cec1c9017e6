"""Tavily and SearXNG as their documentation describes them, on one local server.

Tavily: POST /tavily/search, `Authorization: Bearer <key>`, JSON body; 401 for a wrong key,
429 with Retry-After while `rate_limited` lasts, 432 once the plan's `credits` are spent
(basic 1 credit, advanced 2). SearXNG: GET /searxng/search?q=…&format=json; 403 when the
instance does not allow the JSON format. Both answer from `pages`: results whose text
contains every word of the query (minus site: filters), in order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from tests.fakes import FakeHttp, Reply, Seen, json_reply


@dataclass
class WebPage:
    url: str
    title: str
    content: str


@dataclass
class FakeSearch:
    fake: FakeHttp
    key: str = "tvly-test-key"
    credits: float = 100.0
    pages: list[WebPage] = field(default_factory=list)
    rate_limited: int = 0  # the next N requests get 429
    json_enabled: bool = True  # SearXNG's search.formats includes json
    queries: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.fake.routes["/tavily/search"] = self._tavily
        self.fake.routes["/searxng/search"] = self._searxng

    @property
    def tavily_url(self) -> str:
        return f"{self.fake.url}/tavily"

    @property
    def searxng_url(self) -> str:
        return f"{self.fake.url}/searxng"

    def _matches(self, query: str, limit: int) -> list[WebPage]:
        words = [w.lower() for w in query.split() if not w.startswith("site:")]
        return [p for p in self.pages if all(w in (p.title + " " + p.content + " " + p.url).lower() for w in words)][
            :limit
        ]

    def _limited(self) -> Reply | None:
        if self.rate_limited > 0:
            self.rate_limited -= 1
            return json_reply({"detail": {"error": "rate limit exceeded"}}, 429, **{"Retry-After": "0"})
        return None

    def _tavily(self, seen: Seen) -> Reply:
        if seen.method != "POST":
            return json_reply({"detail": "Method Not Allowed"}, 405)
        if seen.headers.get("authorization") != f"Bearer {self.key}":
            return json_reply({"detail": {"error": "Unauthorized: missing or invalid API key."}}, 401)
        limited = self._limited()
        if limited:
            return limited
        body = seen.body if isinstance(seen.body, dict) else {}
        cost = 2.0 if body.get("search_depth") == "advanced" else 1.0
        if self.credits < cost:
            return json_reply({"detail": {"error": "This request exceeds your plan's set usage limit."}}, 432)
        self.credits -= cost
        query = str(body.get("query") or "")
        self.queries.append(query)
        found = self._matches(query, int(body.get("max_results") or 5))
        results = [{"title": p.title, "url": p.url, "content": p.content, "score": 0.9} for p in found]
        return json_reply({"query": query, "results": results, "response_time": 0.01, "answer": None})

    def _searxng(self, seen: Seen) -> Reply:
        if seen.query.get("format", [""])[0] != "json" or not self.json_enabled:
            return Reply(403, "403 Forbidden", {"Content-Type": "text/html"})
        limited = self._limited()
        if limited:
            return limited
        query = seen.query.get("q", [""])[0]
        self.queries.append(query)
        found = self._matches(query, 20)
        results = [{"title": p.title, "url": p.url, "content": p.content, "engine": "duckduckgo"} for p in found]
        return Reply(
            200,
            json.dumps({"query": query, "number_of_results": len(results), "results": results}),
            {"Content-Type": "application/json"},
        )
