"""The CrewAI crew, after CrewAI's project template: prompts in config/crew/*.yaml, wiring here.

Each @agent and @task method is named after its YAML key. The researcher and the analyst
run as two kickoffs, not one crew with task context: CrewAI would hand the analyst the
researcher's words as trusted context, and those words retell strangers' web pages. The
analyst gets the researcher's validated profile as JSON inside the <untrusted> markers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crewai import LLM, Agent, Crew, CrewOutput, Process, Task
from crewai.hooks import LLMCallHookContext, register_before_llm_call_hook
from crewai.project import CrewBase, agent, task
from crewai.tools import BaseTool
from crewai.types.streaming import CrewStreamingOutput
from pydantic import ValidationError

from connectors.settings import LlmSettings
from crew.budget import CrewRunFailed
from crew.models import CompanyAssessment, CompanyProfile
from crew.prompt_data import json_text, untrusted


@CrewBase
class LeadCrew:
    """A company researcher and an ICP analyst; one kickoff assesses all of one company's leads."""

    agents: list[Agent]
    tasks: list[Task]
    agents_config: dict[str, Any]  # set by @CrewBase from the YAML files
    tasks_config: dict[str, Any]
    original_agents_config_path: str
    original_tasks_config_path: str

    def __init__(self, llm: LLM, tools: list[BaseTool], settings: LlmSettings) -> None:
        self.llm = llm
        self.tools = tools
        self.settings = settings

    @agent
    def company_researcher(self) -> Agent:
        return Agent(
            config=self.agents_config["company_researcher"],
            llm=self.llm,
            tools=self.tools,
            allow_delegation=False,
            max_iter=self.settings.researcher_max_iter,
            verbose=False,
        )

    @agent
    def icp_analyst(self) -> Agent:
        return Agent(
            config=self.agents_config["icp_analyst"],
            llm=self.llm,
            allow_delegation=False,
            max_iter=self.settings.analyst_max_iter,
            verbose=False,
        )

    @task
    def research_company(self) -> Task:
        # description and expected_output come from the YAML config, which pydantic's signature does not know
        return Task(config=self.tasks_config["research_company"], output_pydantic=CompanyProfile)  # type: ignore[call-arg]

    @task
    def assess_leads(self) -> Task:
        return Task(config=self.tasks_config["assess_leads"], output_pydantic=CompanyAssessment)  # type: ignore[call-arg]

    def research(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """The researcher's profile of the company, validated (unstructured notes when it is not)."""
        # @agent and @task wrap the methods in objects whose __call__ mypy reads as unbound
        researcher, research_task = self.company_researcher(), self.research_company()  # type: ignore[call-arg]
        research = _answer(
            Crew(agents=[researcher], tasks=[research_task], process=Process.sequential, verbose=False).kickoff(
                inputs=inputs
            )
        )
        try:
            return CompanyProfile.model_validate_json(json_text(research)).model_dump(exclude_none=True)
        except ValidationError:
            return {"unstructured_notes": research[:2000]}

    def assess(self, inputs: dict[str, Any], research: dict[str, Any]) -> str:
        """The analyst's judgement; it sees the research only as untrusted data."""
        analyst, assess_task = self.icp_analyst(), self.assess_leads()  # type: ignore[call-arg]
        assessment = Crew(agents=[analyst], tasks=[assess_task], process=Process.sequential, verbose=False)
        return _answer(assessment.kickoff(inputs={**inputs, "research": untrusted(research)}))


def _answer(result: CrewOutput | CrewStreamingOutput) -> str:
    """The final answer's text (leadq never streams, so this is always a CrewOutput)."""
    if not isinstance(result, CrewOutput):
        raise TypeError(f"expected a CrewOutput, got {type(result).__name__}")
    return str(result.raw)


def use_config(folder: Path) -> None:
    """Point the crew at the prompt files of this config folder (config/crew by default)."""
    LeadCrew.original_agents_config_path = str(folder / "agents.yaml")
    LeadCrew.original_tasks_config_path = str(folder / "tasks.yaml")


class _CallMeter:
    """Every request each crew run's LLM makes (CrewAI's usage counts only the ones it could parse), and a
    hard stop at the run's allowance: one crew run can never spend more calls than the budget reserved."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[int, int] = {}
        self._allowance: dict[int, int] = {}
        register_before_llm_call_hook(self._before_call)

    def start(self, llm: LLM, allowance: int) -> None:
        with self._lock:
            self._calls[id(llm)], self._allowance[id(llm)] = 0, allowance

    def stop(self, llm: LLM) -> int:
        with self._lock:
            self._allowance.pop(id(llm), None)
            return self._calls.pop(id(llm), 0)

    def _before_call(self, context: LLMCallHookContext) -> bool | None:
        key = id(context.llm)
        with self._lock:
            if key not in self._allowance:
                return None  # not a crew run of leadq's
            if self._calls[key] >= self._allowance[key]:
                return False  # CrewAI raises: the run fails, its calls are billed, the lead goes to review
            self._calls[key] += 1
        return None


_meter = _CallMeter()  # this module loads only when an LLM is configured


# Between research and assessment: given the profile, the analyst's inputs, or None when the
# research settled every lead (the analyst is not asked).
AfterResearch = Callable[[dict[str, Any]], dict[str, Any] | None]


def make_runner(
    settings: LlmSettings, api_key: str
) -> Callable[[dict[str, Any], list[BaseTool], AfterResearch, dict[str, Any] | None], tuple[str | None, int, int, int]]:
    """A function that runs the crew once for one company: research (unless `known` research is
    given), then the analyst on what `after_research` returns. (answer text or None when the analyst
    was not needed, LLM calls, prompt tokens, completion tokens)."""

    def run(
        inputs: dict[str, Any], tools: list[BaseTool], after_research: AfterResearch, known: dict[str, Any] | None
    ) -> tuple[str | None, int, int, int]:
        llm = LLM(
            model=settings.model,
            base_url=settings.base_url or None,
            api_key=api_key or "not-set",
            temperature=settings.temperature,
            timeout=settings.timeout_s,
            max_retries=0,
        )
        _meter.start(llm, settings.calls_per_crew_run)
        try:
            crew = LeadCrew(llm, tools, settings)
            research = known if known is not None else crew.research(inputs)
            analyst_inputs = after_research(research)
            answer = crew.assess(analyst_inputs, research) if analyst_inputs is not None else None
        except Exception as exc:
            usage = llm.get_token_usage_summary()
            raise CrewRunFailed(exc, _meter.stop(llm), usage.prompt_tokens, usage.completion_tokens) from exc
        usage = llm.get_token_usage_summary()
        return answer, _meter.stop(llm), usage.prompt_tokens, usage.completion_tokens

    return run
