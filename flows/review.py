"""The `review-leads` flow: a person approves or overrides the leads leadq held, then they go on.

Started from the Prefect UI, it asks about each held lead in turn with a typed form
(approve or reject; override tier, queue or owner; a reason) and waits: a deployment's
run is suspended (no process waits) and resumed when the form is submitted; a run
started in a terminal pauses in place. `leadq review approve|reject` passes the
decisions as a parameter instead. Each decision is stored with who and why, as a
labelled example, and the decided leads then go through the normal path (route,
CRM, store) with the person's overrides.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

import polars as pl
from prefect import flow, get_run_logger
from prefect.context import FlowRunContext
from prefect.flow_runs import pause_flow_run, suspend_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run
from pydantic import BaseModel, Field, StringConstraints

from connectors.domain import Tier
from connectors.sources import FrameSource
from connectors.store import Store
from flows.alerts import alert_failed_run
from flows.context import RunContext, shared_context
from flows.qualify import qualify
from flows.steps import QualifyParams

TierName = Literal["A", "B", "C", "D", "disqualified"]
NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, pattern=r"\S")]  # not blank


class ReviewForm(RunInput):
    """One person's decision on one held lead: the form in the Prefect UI."""

    decision: Literal["approve", "reject"] = Field("approve", description="approve: route it; reject: disqualify it")
    tier: TierName | None = Field(None, description="Override the tier (empty: keep leadq's)")
    queue: str | None = Field(None, description="Override the queue (a queue in routing.yaml; empty: by the rules)")
    owner: str | None = Field(None, description="Override the owner (an SDR's email; empty: the queue's rotation)")
    reason: NonBlank = Field(description="Why: kept with the decision and used as a labelled example")
    reviewer: NonBlank = Field(description="Who decided")


class Decision(BaseModel):
    """A decision given up front (from `leadq review approve|reject`)."""

    email: str
    decision: Literal["approved", "rejected"]
    why: NonBlank
    who: NonBlank
    tier: TierName | None = None
    queue: str | None = None
    owner: str | None = None


class ReviewParams(BaseModel):
    """Parameters of a review-leads run (a form in the Prefect UI)."""

    limit: int | None = Field(None, ge=1, description="Leads to ask about in this run (default: [review] max_per_run)")
    decisions: list[Decision] = Field(default_factory=list, description="Decisions to apply without asking")


@flow(name="review-leads", on_failure=[alert_failed_run], on_crashed=[alert_failed_run])
def review_leads(params: ReviewParams | None = None) -> dict[str, Any]:
    """Ask a person about held leads (or take the given decisions), then route and write the decided ones."""
    params = params or ReviewParams()
    with shared_context() as ctx:  # the decided leads' run below reuses it: config read once
        return _review(ctx, params)


def _review(ctx: RunContext, params: ReviewParams) -> dict[str, Any]:
    logger = get_run_logger()
    ctx.store.create()
    run_id = str(flow_run.get_id())
    given = [d.model_dump() for d in params.decisions]
    if given:
        check_decisions(ctx, given)
        ctx.store.decide(given)
    asked = 0 if given else _ask(ctx, run_id, params.limit or ctx.settings.review.max_per_run)
    emails = ctx.store.unapplied_decisions()
    applied: dict[str, Any] = {}
    if emails:
        logger.info("routing and writing %d reviewed leads", len(emails))
        source = FrameSource(ctx.store.signups(emails), key="review")
        applied = qualify(QualifyParams(), source=source)
    left = ctx.store.reviews("pending").height
    logger.info("%d decisions applied; %d leads still wait for review", len(emails), left)
    return {
        "asked": asked,
        "given": len(given),
        "applied": len(emails),
        "pending": left,
        "qualified": applied.get("qualified", 0),
        "by_queue": applied.get("by_queue", {}),
        "crm_written": applied.get("crm_written", 0),
    }


def check_decisions(ctx: RunContext, decisions: list[dict[str, Any]]) -> None:
    """Refuse a queue routing.yaml does not define, naming it; owners are free (the CRM checks them)."""
    for d in decisions:
        if d.get("queue") and d["queue"] not in ctx.routing.queues:
            known = ", ".join(ctx.routing.queues)
            raise ValueError(f"{d['email']}: queue '{d['queue']}' is not in routing.yaml (queues: {known})")


def _ask(ctx: RunContext, run_id: str, limit: int) -> int:
    """One form per held lead, oldest first, until `limit` decisions were made in this run.

    A suspended run starts again from the top when resumed: leads decided before are no
    longer pending, and the form for the lead it stopped at returns the submitted answer."""
    logger = get_run_logger()
    remaining = limit - ctx.store.decided_in_run(run_id)
    pending = ctx.store.reviews("pending", limit=max(remaining, 0))
    suspend = _deployed()
    for row in pending.iter_rows(named=True):
        # no initial value for reviewer or reason: Prefect rebuilds a field with initial data without its
        # constraints, and a blank reviewer would pass
        form = ReviewForm.with_initial_data(description=describe(row))
        key = "review-" + hashlib.sha256(row["email"].encode()).hexdigest()[:20]  # keys: lowercase, digits, dashes
        answer = (
            suspend_flow_run(wait_for_input=form, key=key, timeout=ctx.settings.review.timeout_s)
            if suspend
            else pause_flow_run(wait_for_input=form, key=key, timeout=ctx.settings.review.timeout_s, poll_interval=2)
        )
        decision = {
            "email": row["email"],
            "decision": "approved" if answer.decision == "approve" else "rejected",
            "why": answer.reason,
            "who": answer.reviewer,
            "tier": answer.tier,
            "queue": answer.queue,
            "owner": answer.owner,
        }
        try:
            check_decisions(ctx, [decision])
            ctx.store.decide([decision], run_id=run_id)
        except ValueError as exc:
            logger.error("decision on %s not taken: %s; the lead stays in review", row["email"], exc)
            continue
        logger.info("%s %s by %s: %s", row["email"], decision["decision"], answer.reviewer, answer.reason)
    return pending.height


def _deployed() -> bool:
    """Only a deployment's run can be suspended (it is started again by the process serving it)."""
    context = FlowRunContext.get()
    return bool(context and context.flow_run and context.flow_run.deployment_id)


def describe(review: dict[str, Any]) -> str:
    """The markdown shown above the form: what leadq proposes and why it holds the lead."""
    return (
        f"### Review {review['email']}\n\n"
        f"**Held because:** {review['held_because']}\n\n"
        f"| company | score | proposed tier | proposed queue |\n|---|---:|---|---|\n"
        f"| {review.get('company_domain') or '-'} | {review.get('score')} | {review.get('tier')} "
        f"| {review.get('queue') or '-'} |\n\n"
        f"**Reasons:** {review.get('reasons') or '-'}\n\n"
        "Approve to route it as proposed, or override tier, queue or owner; reject to disqualify it."
    )


def pending_reviews(store: Store, show_all: bool, limit: int) -> pl.DataFrame:
    """What `leadq review list` shows."""
    if not store.exists():
        return pl.DataFrame()
    return store.reviews(None if show_all else "pending", limit=limit)


TIERS = [t.value for t in Tier]
