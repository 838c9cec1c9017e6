"""Build the crew's judge from settings; no `[llm] model` means no judge and rules decide."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from connectors.redact import secret
from connectors.settings import Settings
from connectors.store import Store
from crew.budget import LlmBudget
from crew.icp import Icp
from crew.judge import Judge, prompt_version

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
    runner = make_runner(llm, secret(env.get(llm.api_key_env, "")), lambda domain: company_facts(store, domain))
    return Judge(llm, settings.triage, icp, prompt_version(folder), runner, budget)


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
