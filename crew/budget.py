"""The LLM bill of one run, bounded before it is spent.

A crew run must `reserve()` before it starts: the most calls one crew run can make
(every agent's iteration limit, plus its forced final answer) and the most one crew
run has cost so far this run. The reservation is refused when the run's call or dollar
limit would be passed, counting what other threads hold. `settle()` books what the
crew run really used and frees the rest. Until one crew run has been measured, crew
runs go one at a time, so the dollar estimate is never a guess.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


class CrewRunFailed(Exception):
    """A crew run that raised, with what it had used by then: its calls are billed all the same."""

    def __init__(self, cause: BaseException, calls: int, prompt: int, completion: int) -> None:
        super().__init__(str(cause) or type(cause).__name__)
        self.usage = (max(calls, 1), prompt, completion)  # a request that failed was still made


@dataclass(frozen=True)
class Reservation:
    calls: int
    cost_usd: float


@dataclass
class LlmBudget:
    """LLM calls, tokens and dollars of one run, with its limits; shared by the batch's threads."""

    max_calls: int
    max_cost_usd: float
    usd_per_1k_prompt: float
    usd_per_1k_completion: float
    calls_per_crew_run: int = 2  # the most LLM calls one crew run can make
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    crew_leads: int = 0
    _held_calls: int = 0
    _held_cost: float = 0.0
    _in_flight: int = 0
    _costliest_run: float | None = None  # None until one crew run has been measured
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def reserve(self) -> Reservation | None:
        """Room for one more crew run, held until `settle`; None when the run's budget cannot take it."""
        with self._changed:
            while self._costliest_run is None and self._in_flight:
                self._changed.wait()
            estimate = self._costliest_run or 0.0
            calls_left = self.max_calls - self.calls - self._held_calls
            cost_left = self.max_cost_usd - self.cost_usd - self._held_cost
            if calls_left < self.calls_per_crew_run or cost_left <= 0 or estimate > cost_left:
                return None
            self._held_calls += self.calls_per_crew_run
            self._held_cost += estimate
            self._in_flight += 1
            return Reservation(self.calls_per_crew_run, estimate)

    def settle(self, held: Reservation, calls: int, prompt: int, completion: int, leads: int = 0) -> None:
        """Book what one crew run used (also a failed one) and free what it held."""
        cost = prompt / 1000 * self.usd_per_1k_prompt + completion / 1000 * self.usd_per_1k_completion
        with self._changed:
            self._held_calls -= held.calls
            self._held_cost -= held.cost_usd
            self._in_flight -= 1
            self.calls += calls
            self.prompt_tokens += prompt
            self.completion_tokens += completion
            self.cost_usd += cost
            self.crew_leads += leads
            if calls:
                self._costliest_run = max(self._costliest_run or 0.0, cost)
            self._changed.notify_all()

    def summary(self) -> dict[str, Any]:
        with self._changed:
            return {
                "llm_calls": self.calls,
                "llm_prompt_tokens": self.prompt_tokens,
                "llm_completion_tokens": self.completion_tokens,
                "llm_cost_usd": round(self.cost_usd, 6),
                "crew_leads": self.crew_leads,
            }
