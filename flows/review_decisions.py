"""Decisions people give on held leads (`leadq review approve|reject`), checked before any flow starts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, StringConstraints

from flows.context import RunContext

TierName = Literal["A", "B", "C", "D", "disqualified"]
NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, pattern=r"\S")]  # not blank


class Decision(BaseModel):
    """A decision given up front (from `leadq review approve|reject`)."""

    email: str
    decision: Literal["approved", "rejected"]
    why: NonBlank
    who: NonBlank
    tier: TierName | None = None
    queue: str | None = None
    owner: str | None = None


def check_decisions(ctx: RunContext, decisions: list[dict[str, Any]]) -> None:
    """Refuse a queue routing.yaml does not define, naming it; owners are free (the CRM checks them)."""
    for d in decisions:
        if d.get("queue") and d["queue"] not in ctx.routing.queues:
            known = ", ".join(ctx.routing.queues)
            raise ValueError(f"{d['email']}: queue '{d['queue']}' is not in routing.yaml (queues: {known})")
