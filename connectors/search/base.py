"""What every web search service answers, and the run cache they share."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

from connectors.http import ServiceClient

MAX_SNIPPET = 600  # characters of a result's text handed on


@dataclass(frozen=True)
class SearchResult:
    title: str
    url: str
    content: str


@dataclass(frozen=True)
class SearchAnswer:
    """A query's results, or why there are none (`error`); `credits` the call cost."""

    query: str
    results: tuple[SearchResult, ...] = ()
    error: str | None = None
    credits: float = 0.0


class WebSearch(Protocol):
    name: str

    def search(self, query: str, max_results: int = 5) -> SearchAnswer: ...

    def usage(self) -> tuple[int, float]: ...


@dataclass
class RunCache:
    """The same query asked twice in a run costs once."""

    answers: dict[tuple[str, int], SearchAnswer] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, query: str, max_results: int) -> SearchAnswer | None:
        with self.lock:
            return self.answers.get((query.strip().lower(), max_results))

    def put(self, query: str, max_results: int, answer: SearchAnswer) -> None:
        if answer.error is None:
            with self.lock:
                self.answers[(query.strip().lower(), max_results)] = answer


def clipped(text: object, limit: int = MAX_SNIPPET) -> str:
    return " ".join(str(text or "").split())[:limit]


class SearchService:
    """What both services share: usage, the run cache, and no calls once the service is off for the run.
    A service sets `name`, `client` and `cache` and answers one query in `_ask`."""

    name: str
    client: ServiceClient
    cache: RunCache

    def usage(self) -> tuple[int, float]:
        return self.client.stats.calls, self.client.stats.cost

    def search(self, query: str, max_results: int = 5) -> SearchAnswer:
        cached = self.cache.get(query, max_results)
        if cached is not None:
            return SearchAnswer(query, cached.results)
        if self.client.stats.open_reason:
            return SearchAnswer(query, error=f"{self.name}: skipped for this run ({self.client.stats.open_reason})")
        answer = self._ask(query, max_results)
        self.cache.put(query, max_results, answer)
        return answer

    def _ask(self, query: str, max_results: int) -> SearchAnswer:
        raise NotImplementedError
