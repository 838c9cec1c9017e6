"""Build the crew's judge from settings; no `[llm] model` means no judge and rules decide."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from connectors.canonical import load_industries
from connectors.enrichment.pages import CompanyPages
from connectors.enrichment.website import WebsiteProvider
from connectors.http import service_policy
from connectors.redact import secret
from connectors.search import build_search
from connectors.settings import Settings
from connectors.store import Store
from crew.budget import LlmBudget
from crew.icp import Icp
from crew.judge import Judge, Research, prompt_version
from crew.research import ResearchMeter, ResearchScope

# CrewAI warns once per call when a local model has no tokenizer; the count is ours anyway.
logging.getLogger("crewai.llms.base_llm").setLevel(logging.ERROR)


def build_judge(settings: Settings, icp: Icp, store: Store, environ: dict[str, str] | None = None) -> Judge | None:
    llm = settings.llm
    if not llm.model:
        return None
    from crew.lead_crew import make_runner, use_config  # CrewAI loads only when an LLM is configured

    env = os.environ if environ is None else environ
    folder = settings.config_path("crew")
    use_config(folder)
    budget = LlmBudget(
        llm.max_calls_per_run,
        llm.max_cost_usd_per_run,
        llm.usd_per_1k_prompt_tokens,
        llm.usd_per_1k_completion_tokens,
        llm.calls_per_crew_run,
    )
    runner = make_runner(llm, secret(env.get(llm.api_key_env, "")))
    research = build_research(settings, store, env)
    return Judge(
        llm, settings.triage, icp, prompt_version(folder), runner, budget, research, settings.scoring.top_reasons
    )


def build_research(settings: Settings, store: Store, env: Mapping[str, str]) -> Research:
    """The researcher's tools: the store's facts always; with `[research] enabled`, the company's own
    pages (through the website provider's safe client) and web search when one is configured."""
    from crew.tools import CompanyFactsTool, CompanyPagesTool, WebSearchTool

    r = settings.research
    meter = ResearchMeter(r.max_tool_calls_per_company, r.max_tool_calls_per_run, r.max_search_credits_per_run)
    pages = CompanyPages(_website(settings), r.max_page_chars) if r.enabled else None
    search, _ = build_search(settings, dict(env)) if r.enabled else (None, None)
    max_results = r.search.max_results

    def tools(domain: str) -> tuple[list[Any], ResearchScope]:
        scope = ResearchScope(domain, meter)
        found: list[Any] = [CompanyFactsTool(lambda d: company_facts(store, d))]
        if pages is not None:
            found.append(CompanyPagesTool(pages.read, scope))
        if search is not None:
            found.append(WebSearchTool(lambda q: search.search(q, max_results), scope))
        return found, scope

    e = settings.enrichment
    return Research(
        tools,
        meter,
        r.confidence,
        r.cache_ttl_days,
        load_industries(settings.config_path(e.industries_file), e.industry_match_threshold),
        settings.prepare.country_aliases,
        dict(e.write_policy),
    )


def _website(settings: Settings) -> WebsiteProvider:
    w = settings.enrichment.website
    return WebsiteProvider(
        url_template=w.url_template,
        policy=service_policy(w),
        signatures=[],
        max_bytes=w.max_bytes,
        max_redirects=w.max_redirects,
        allow_private_networks=w.allow_private_networks,
        fetch_about=False,
        country_aliases=settings.prepare.country_aliases,
    )


def company_facts(store: Store, domain: str) -> dict[str, Any]:
    """What the CRM holds about a company, each fact with its source (the crew's tool)."""
    if not store.exists():
        return {"domain": domain, "known": False}
    row = store.companies([domain]).get(domain)
    if not row:
        return {"domain": domain, "known": False}
    provenance = json.loads(row.get("provenance") or "{}")
    return {
        "domain": domain,
        "known": True,
        "facts": {
            name: {"value": p.get("value"), "source": p.get("source"), "method": p.get("method")}
            for name, p in provenance.items()
        },
    }
