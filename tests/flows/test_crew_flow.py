"""A run with an LLM configured: the crew decides only the uncertain band, and says what it cost."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.settings import load_settings
from connectors.store import Store
from connectors.store.export import export_leads
from crew.icp import load_icp
from crew.scorer import score_leads
from crew.triage import uncertain
from flows.qualify import qualify_signups
from tests.fakes import FakeHttp, ScriptedLlm

pytestmark = pytest.mark.usefixtures("prefect_api")


def test_run_with_an_llm_reports_calls_and_only_uncertain_leads_use_the_crew(
    config_dir: Path, fake_http: FakeHttp, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules_only = qualify_signups(dry_run=True)
    assert rules_only["llm_calls"] == 0 and rules_only["llm"].startswith("off: no [llm] model set")

    llm = ScriptedLlm(fake_http)
    monkeypatch.setenv("LEADQ__LLM__MODEL", "openai/gpt-4o-mini")
    monkeypatch.setenv("LEADQ__LLM__BASE_URL", fake_http.url + "/v1")
    summary = qualify_signups()
    assert summary["llm_calls"] > 0 and summary["llm_calls"] == llm.calls
    assert summary["crew_leads"] == summary["by_method"]["crew"] > 0
    assert summary["llm_prompt_tokens"] > 0 and summary["llm_cost_usd"] > 0

    exported = export_leads(Store(load_settings().store_url))
    crew_emails = set(exported.filter(exported["method"] == "crew")["email"].to_list())
    # the rules' own verdict, recomputed, says which leads were uncertain
    settings = load_settings()
    icp = load_icp(settings.config_path("icp.yaml"))
    decided = Store(settings.store_url).read(
        "select l.email, l.company_domain, l.seniority, l.function, l.email_type, l.country, c.industry, c.employees,"
        " c.country as company_country from leads l left join companies c on c.domain = l.company_domain"
    )
    rules = score_leads(decided, icp).with_columns(uncertain(settings.triage).alias("unsure"))
    unsure = set(rules.filter("unsure")["email"].to_list())
    assert crew_emails and crew_emails <= unsure


def test_a_failing_llm_never_spoils_the_json_on_stdout(
    config_dir: Path, fake_http: FakeHttp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CrewAI prints warnings on stdout when a call fails; `leadq run --json` must still print one JSON object."""
    import json

    from typer.testing import CliRunner

    from flows.cli import app

    llm = ScriptedLlm(fake_http)
    llm.delay_s = 2  # every call times out
    monkeypatch.setenv("LEADQ__LLM__MODEL", "openai/gpt-4o-mini")
    monkeypatch.setenv("LEADQ__LLM__BASE_URL", fake_http.url + "/v1")
    monkeypatch.setenv("LEADQ__LLM__TIMEOUT_S", "0.3")
    result = CliRunner().invoke(app, ["run", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["processed"] == 30 and summary["needs_review"] > 0  # the crew failed; rules decided, flagged
