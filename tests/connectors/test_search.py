"""The researcher's web search against a local server that answers as Tavily and SearXNG document."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.http import ServicePolicy
from connectors.search import build_search
from connectors.search.searxng import SearxngSearch
from connectors.search.tavily import TavilySearch
from connectors.settings import load_settings
from tests.fake_search import FakeSearch, WebPage
from tests.fakes import FakeHttp

PAGES = [
    WebPage("https://news.example/acme-raises", "Acme raises Series B", "Acme, a 120-person fintech in Berlin"),
    WebPage("https://acme.io/about", "About Acme", "Acme builds payment software for 120 people"),
]


@pytest.fixture
def search() -> Iterator[FakeSearch]:
    with FakeHttp().running() as server:
        yield FakeSearch(server, pages=list(PAGES))


def _policy(**changes: float) -> ServicePolicy:
    return ServicePolicy(**{"timeout_s": 5, "rate_per_s": 0, "retries": 2, "max_retry_after_s": 0.05, **changes})  # type: ignore[arg-type]


def test_tavily_answers_results_counts_credits_and_caches_the_query(search: FakeSearch) -> None:
    tavily = TavilySearch(search.tavily_url, search.key, _policy(), depth="advanced")
    answer = tavily.search("acme fintech", 5)
    assert answer.error is None and [r.url for r in answer.results] == ["https://news.example/acme-raises"]
    assert answer.credits == 2.0 and tavily.usage() == (1, 2.0)
    again = tavily.search("Acme fintech ", 5)  # the same query, as far as the cache is concerned
    assert again.results == answer.results and search.fake.hits("/tavily/search") == 1
    sent = search.fake.seen[0]
    assert sent.method == "POST" and sent.body == {
        "query": "acme fintech",
        "max_results": 5,
        "search_depth": "advanced",
    }


def test_tavily_waits_out_a_429_and_stops_for_the_run_when_credits_are_spent(search: FakeSearch) -> None:
    search.rate_limited, search.credits = 1, 1.0
    tavily = TavilySearch(search.tavily_url, search.key, _policy())
    assert tavily.search("acme", 5).error is None  # 429 with Retry-After, then the answer
    spent = tavily.search("payment software", 5)
    assert spent.error == "tavily: the plan's credits are spent (HTTP 432)"
    calls = search.fake.hits("/tavily/search")
    assert tavily.search("berlin", 5).error is not None and search.fake.hits("/tavily/search") == calls


def test_tavily_with_a_wrong_key_says_so_and_asks_no_more(search: FakeSearch) -> None:
    tavily = TavilySearch(search.tavily_url, "tvly-wrong", _policy())
    assert tavily.search("acme", 5).error == "tavily: the API key was refused (HTTP 401)"
    assert tavily.search("other", 5).error is not None and search.fake.hits("/tavily/search") == 1
    assert "tvly-wrong" not in str(tavily.search("x", 5))


def test_searxng_answers_and_names_a_json_format_the_instance_refuses(search: FakeSearch) -> None:
    searx = SearxngSearch(search.searxng_url, _policy())
    answer = searx.search("acme 120", 1)
    assert [r.title for r in answer.results] == ["Acme raises Series B"]
    assert search.fake.seen[0].query == {"q": ["acme 120"], "format": ["json"]}
    search.json_enabled = False
    refused = SearxngSearch(search.searxng_url, _policy()).search("acme", 5)
    assert refused.error == "searxng: the instance refuses format=json (enable it in search.formats)"


def test_search_is_built_from_settings_and_explains_when_it_is_off(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert build_search(load_settings(), {})[1] == 'web search is off ([research.search] kind = "none")'
    monkeypatch.setenv("LEADQ__RESEARCH__SEARCH__KIND", "tavily")
    assert build_search(load_settings(), {})[1] == "TAVILY_API_KEY is not set"
    built, why = build_search(load_settings(), {"TAVILY_API_KEY": "tvly-x"})
    assert isinstance(built, TavilySearch) and why is None
    monkeypatch.setenv("LEADQ__RESEARCH__SEARCH__KIND", "searxng")
    assert build_search(load_settings(), {})[1] == "[research.search] base_url names no SearXNG instance"
