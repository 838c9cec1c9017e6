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
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl
from prefect import flow, get_run_logger
from prefect.context import FlowRunContext
from prefect.flow_runs import pause_flow_run, suspend_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run
from pydantic import Field, create_model

from connectors.domain import Tier
from connectors.sources import FrameSource
from connectors.store import Store
from flows.alerts import alert_failed_run
from flows.context import RunContext, shared_context
from flows.qualify import qualify
from flows.review_decisions import Decision, NonBlank, check_decisions
from flows.steps import QualifyParams

KEEP_TIER = "keep leadq's"
BY_RULES = "by the routing rules"


@flow(name="review-leads", on_failure=[alert_failed_run], on_crashed=[alert_failed_run])
def review_leads(limit: int | None = None, decisions: list[Decision] | None = None) -> dict[str, Any]:
    """Ask a person about the leads leadq held, a form per company, and route and write each decided lead at once.

    Args:
        limit: Leads to ask about in this run (empty: [review] max_per_run in settings.toml).
        decisions: Decisions to apply without asking (what `leadq review approve|reject` sends).
    """
    with shared_context() as ctx:  # the decided leads' runs below reuse it: config read once
        return _review(ctx, limit, decisions or [])


def _review(ctx: RunContext, limit: int | None, decisions: list[Decision]) -> dict[str, Any]:
    logger = get_run_logger()
    ctx.store.create()
    run_id = str(flow_run.get_id())
    given = [d.model_dump() for d in decisions]
    if given:
        check_decisions(ctx, given)
        ctx.store.decide(given)
    applied = Applied()
    applied.add(_apply(ctx, ctx.store.unapplied_decisions()))  # the given ones, and any an earlier run left
    asked = 0 if given else _ask(ctx, run_id, limit or ctx.settings.review.max_per_run, applied)
    left = ctx.store.reviews("pending").height
    logger.info("%d decisions applied; %d leads still wait for review", applied.leads, left)
    return {"asked": asked, "given": len(given), "pending": left, **applied.as_dict()}


@dataclass
class Applied:
    """What the decided leads' runs did, added up."""

    leads: int = 0
    qualified: int = 0
    crm_written: int = 0
    by_queue: Counter[str] = field(default_factory=Counter)

    def add(self, summary: dict[str, Any]) -> None:
        self.leads += summary.get("leads", 0) + summary.get("held_for_review", 0)
        self.qualified += summary.get("qualified", 0)
        self.crm_written += summary.get("crm_written", 0)
        self.by_queue.update(summary.get("by_queue", {}))

    def as_dict(self) -> dict[str, Any]:
        return {
            "applied": self.leads,
            "qualified": self.qualified,
            "by_queue": dict(self.by_queue),
            "crm_written": self.crm_written,
        }


def _apply(ctx: RunContext, emails: list[str]) -> dict[str, Any]:
    """Route and write decided leads now, through the normal path with the person's overrides."""
    if not emails:
        return {}
    get_run_logger().info("routing and writing %d reviewed leads", len(emails))
    return qualify(QualifyParams(), source=FrameSource(ctx.store.signups(emails), key="review"))


def review_form(tiers: list[str], queues: list[str], emails: list[str]) -> type[RunInput]:
    """The form for one company's held leads: tier and queue are dropdowns of the ICP's tiers and
    routing.yaml's queues, and the decision applies to the leads ticked (all, unless unticked)."""
    return create_model(
        "ReviewForm",
        __base__=RunInput,
        __doc__="One person's decision on a company's held leads.",
        decision=(
            Literal["approve", "reject"],
            Field("approve", description="approve: route them; reject: disqualify them"),
        ),
        leads=(_choices(emails), Field(list(emails), description="The leads this decision is for")),
        tier=(_choice([KEEP_TIER, *tiers]), Field(KEEP_TIER, description="Override the tier")),
        queue=(_choice([BY_RULES, *queues]), Field(BY_RULES, description="Override the queue")),
        owner=(str, Field("", description="Override the owner: an SDR's email (empty: the queue's rotation)")),
        reason=(NonBlank, Field(description="Why: kept with the decision and used as a labelled example")),
        reviewer=(NonBlank, Field(description="Who decided")),
    )


def _choice(values: list[str]) -> Any:
    """A dropdown in the Prefect UI: a Literal of these values, made at run time."""
    return Literal.__getitem__(tuple(values))


def _choices(values: list[str]) -> Any:
    """A multi-select in the Prefect UI: a list of a Literal of these values."""
    return list[_choice(values)]  # type: ignore[misc]


def _ask(ctx: RunContext, run_id: str, limit: int, applied: Applied) -> int:
    """One form per company, oldest held lead first, until `limit` leads were decided in this run; each
    answer is routed and written as soon as it is given.

    A suspended run starts again from the top when resumed: leads decided before are no longer
    pending, and the form it stopped at returns the submitted answer."""
    logger = get_run_logger()
    remaining = limit - ctx.store.decided_in_run(run_id)
    pending = ctx.store.reviews("pending", limit=max(remaining, 0))
    suspend = _deployed()
    tiers, queues = [*ctx.icp.tiers, Tier.DISQUALIFIED.value], list(ctx.routing.queues)
    for company, rows in _by_company(pending.to_dicts()):
        emails = [r["email"] for r in rows]
        # no initial value for reviewer or reason: Prefect rebuilds a field with initial data without its
        # constraints, and a blank reviewer would pass
        form = review_form(tiers, queues, emails).with_initial_data(description=describe(rows))
        key = "review-" + hashlib.sha256(",".join(emails).encode()).hexdigest()[:20]  # lowercase, digits, dashes
        logger.info("waiting for a person to decide on %s (%s): %s", ", ".join(emails), company, flow_run.ui_url)
        answer: Any = (
            suspend_flow_run(wait_for_input=form, key=key, timeout=ctx.settings.review.timeout_s)
            if suspend
            else pause_flow_run(wait_for_input=form, key=key, timeout=ctx.settings.review.timeout_s, poll_interval=2)
        )
        decisions = [_decision(email, answer) for email in answer.leads]
        try:
            check_decisions(ctx, decisions)
            ctx.store.decide(decisions, run_id=run_id)
        except ValueError as exc:
            logger.error("decision on %s not taken: %s; the leads stay in review", ", ".join(emails), exc)
            continue
        who, why = answer.reviewer, answer.reason
        logger.info("%s %s by %s: %s", ", ".join(answer.leads), decisions[0]["decision"], who, why)
        applied.add(_apply(ctx, [d["email"] for d in decisions]))
    return pending.height


def _decision(email: str, answer: Any) -> dict[str, Any]:
    return {
        "email": email,
        "decision": "approved" if answer.decision == "approve" else "rejected",
        "why": answer.reason,
        "who": answer.reviewer,
        "tier": None if answer.tier == KEEP_TIER else answer.tier,
        "queue": None if answer.queue == BY_RULES else answer.queue,
        "owner": answer.owner.strip() or None,
    }


def _by_company(rows: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Held leads grouped by company, in the order of each company's oldest lead (no company: alone)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row.get("company_domain") or row["email"], []).append(row)
    return list(groups.items())


def _deployed() -> bool:
    """Only a deployment's run can be suspended (it is started again by the process serving it)."""
    context = FlowRunContext.get()
    return bool(context and context.flow_run and context.flow_run.deployment_id)


def describe(reviews: list[dict[str, Any]]) -> str:
    """The markdown shown above the form: what leadq proposes for each held lead and why it holds it."""
    company = reviews[0].get("company_domain") or "-"
    rows = "".join(
        f"| {r['email']} | {r.get('score')} | {r.get('tier')} | {r.get('queue') or '-'} | {r['held_because']} |\n"
        for r in reviews
    )
    reasons = "".join(f"- **{r['email']}**: {r.get('reasons') or '-'}\n" for r in reviews)
    return (
        f"### Review {len(reviews)} held lead{'s' if len(reviews) > 1 else ''} of {company}\n\n"
        "| lead | score | proposed tier | proposed queue | held because |\n|---|---:|---|---|---|\n"
        f"{rows}\n**Reasons:**\n\n{reasons}\n"
        "Approve to route them as proposed, or override tier, queue or owner; reject to disqualify them. "
        "Untick a lead to decide it in another form."
    )


def pending_reviews(store: Store, show_all: bool, limit: int) -> pl.DataFrame:
    """What `leadq review list` shows."""
    if not store.exists():
        return pl.DataFrame()
    return store.reviews(None if show_all else "pending", limit=limit)
