"""What every web search service answers, and the run cache they share."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

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
