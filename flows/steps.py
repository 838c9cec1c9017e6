"""The steps of one batch, as Prefect tasks: prepare, enrich, score, judge, review, route, sync, notify, commit.

Each task does one step of one batch (never one lead) and the logic lives in `connectors`
and `crew`, where it is tested without Prefect. Batches are large and change every run, so
no step hashes, caches or persists them (cache_policy=NONE, persist_result=False).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
from prefect import task
from prefect.cache_policies import NONE
from pydantic import BaseModel, Field

from connectors.crm import CrmResult, CrmStopped
from connectors.errors import RetriableError
from connectors.notify import lead_messages, review_message
from connectors.prepare import Prepared, prepare_batch
from connectors.prepare.known import BEHIND, OUTCOME, split_known
from connectors.routing import assign_queues, route_leads
from connectors.sources import Cursor
from connectors.sources.cursor import CURSOR_ID
from connectors.store.batches import BatchWrite
from connectors.store.rows import dead_letter_keys
from crew.judge import decided_by_rules
from crew.review import HOLD, apply_decisions, mark_holds
from crew.scorer import score_leads
from flows.context import RunContext


class QualifyParams(BaseModel):
    """What one run of the pipeline is asked to do (qualify-signups' parameters, also used by backfills,
    reviews and retries)."""

    source: str | None = Field(None, description="A signup file to process instead of the configured source")
    dry_run: bool = Field(False, description="Decide everything, write nothing (no CRM, no watermark)")
    refresh_enrichment: bool = Field(False, description="Ignore cached enrichment and ask the providers again")


@dataclass(frozen=True)
class ReadScope:
    """What a run reads: `started_at` (naive UTC) bounds plausible signup times; a live run's starting
    `watermark` tells the rows it reads again for the lookback; a `replay` sends stored leads again."""

    started_at: datetime
    watermark: Cursor | None = None
    replay: bool = False


@dataclass(frozen=True)
class DecidedBatch:
    """One batch after prepare, enrich and score: what the flow loop and the Dask workers hand on."""

    raw: pl.DataFrame
    prepared: Prepared
    skipped: int  # rows already known (older than the stored signup, or stored), not decided again
    leads: pl.DataFrame


@dataclass(frozen=True)
class RoutedBatch:
    """One batch ready for the CRM: routed leads, leads held for review, and the rotation after it."""

    leads: pl.DataFrame
    held: pl.DataFrame
    prepared: Prepared
    positions: dict[str, int]


@task(name="prepare", cache_policy=NONE, persist_result=False)
def prepare_step(raw: pl.DataFrame, ctx: RunContext, scope: ReadScope) -> tuple[Prepared, int]:
    """Validate and normalise; skip what the store holds already in this or a newer version.

    Returns the batch and how many rows it skipped: rows older than the stored signup, rows read
    again for the lookback (or undated) whose lead is stored, rejects recorded by an earlier run."""
    if scope.watermark is not None and not scope.watermark.is_start:
        raw = raw.with_columns((~scope.watermark.after(raw.schema[CURSOR_ID])).alias(BEHIND))
    prepared = prepare_batch(raw, ctx.rules, scope.started_at)
    if not ctx.has_store:
        return dataclasses.replace(prepared, leads=prepared.leads.drop(BEHIND, strict=False)), 0
    leads, skipped = split_known(
        prepared.leads, ctx.store.stored_signups(prepared.leads["email"].to_list()), scope.replay
    )
    outcome = dict(skipped.select("email", OUTCOME).iter_rows())
    seen = prepared.seen.with_columns(
        pl.when(pl.col(OUTCOME) == "lead")
        .then(pl.col("email").replace_strict(outcome, default="lead", return_dtype=pl.String))
        .otherwise(pl.col(OUTCOME))
        .alias(OUTCOME)
    )
    if scope.replay:  # the rows come from the store (a review, a retry), not from a source: nothing new was read
        seen = seen.clear()
    rejects = prepared.rejects
    if not scope.replay and not rejects.is_empty():
        keys = dead_letter_keys(rejects, ctx.source.key)
        rejects = rejects.filter(~keys.is_in(list(ctx.store.known_dead_letters(keys.to_list()))))
    skipped_rows = skipped.height + prepared.rejects.height - rejects.height
    return Prepared(leads, rejects, prepared.duplicates, seen), skipped_rows


@task(name="enrich", cache_policy=NONE, persist_result=False)
def enrich_step(leads: pl.DataFrame, ctx: RunContext, params: QualifyParams) -> pl.DataFrame:
    """One waterfall per company domain in the batch; lookups are cached unless this is a dry run."""
    store = ctx.store if ctx.has_store else None
    return ctx.enricher.enrich(leads, store, refresh=params.refresh_enrichment, save=not params.dry_run)


@task(name="score", cache_policy=NONE, persist_result=False)
def score_step(leads: pl.DataFrame, ctx: RunContext) -> pl.DataFrame:
    return score_leads(leads, ctx.icp, ctx.settings.scoring.top_reasons)


@task(name="judge", cache_policy=NONE, persist_result=False)
def judge_step(leads: pl.DataFrame, ctx: RunContext, params: QualifyParams) -> pl.DataFrame:
    """The crew, for the uncertain band only, grouped by company; without an LLM, rules stand."""
    if ctx.judge is None:
        return decided_by_rules(leads)
    store = ctx.store if ctx.has_store else None
    return ctx.judge.judge(leads, store, save=not params.dry_run)


@task(name="review", cache_policy=NONE, persist_result=False)
def review_step(leads: pl.DataFrame, ctx: RunContext) -> tuple[pl.DataFrame, pl.DataFrame]:
    """People's decisions win over leadq's; then split off the leads a person must see first.

    Returns (leads to route, leads held for review)."""
    no_decisions = pl.DataFrame(
        schema=dict.fromkeys(
            ["email", "status", "decided_by", "why", "tier_override", "queue_override", "owner_override"], pl.String
        )
    )
    decided = ctx.store.decided_reviews(leads["email"].to_list()) if ctx.has_store else no_decisions
    leads = mark_holds(assign_queues(apply_decisions(leads, decided), ctx.routing), ctx.holds)
    held = pl.col(HOLD).is_not_null()
    return leads.filter(~held).drop(HOLD), leads.filter(held)


def _retriable(_task: object, _run: object, state: Any) -> bool:
    """Retry a CRM step only when the CRM failed for now (5xx storm, network), never on a refusal."""
    try:
        state.result()
    except RetriableError:
        return True
    except Exception:
        return False
    return False


@task(name="route", retry_condition_fn=_retriable, cache_policy=NONE, persist_result=False)
def route_step(
    leads: pl.DataFrame, ctx: RunContext, positions: dict[str, int]
) -> tuple[pl.DataFrame, dict[str, int], str | None]:
    """Queues and owners; owners already set in the store or the CRM are kept (unless the queue reassigns).

    The third value says why the CRM could not be read (a spent daily limit): the run stops there.
    In shadow mode the CRM's owners are not read: leadq decides on its own, to be compared later."""
    emails = leads["email"].to_list()
    existing = (
        ctx.store.existing_assignments(emails)
        if ctx.has_store
        else pl.DataFrame(schema={"email": pl.String, "queue": pl.String, "owner": pl.String})
    )
    try:
        crm_owners = None if ctx.shadow else ctx.crm.existing_owners(emails)
    except CrmStopped as exc:
        return leads, positions, str(exc)
    except RetriableError as exc:
        raise RetriableError(f"route step: reading the lead owners from {ctx.crm.name} failed: {exc}") from exc
    assign = ctx.settings.autonomy.owner_assignment != "off"
    return *route_leads(leads, ctx.routing, positions, existing, crm_owners, assign=assign), None


@task(name="sync", retry_condition_fn=_retriable, cache_policy=NONE, persist_result=False)
def sync_step(batch: RoutedBatch, ctx: RunContext, run_id: str) -> CrmResult:
    """Publish to the CRM, then record the batch (what the CRM refused, and the leads held for
    review) in the store, in one transaction. Shadow mode and `crm_write = "off"` skip the CRM.

    Redoing it is safe: every CRM write is an upsert by a stable key."""
    try:
        result = ctx.crm.publish(batch.leads) if ctx.writes_crm else CrmResult()
    except CrmStopped as exc:
        return CrmResult(stopped=str(exc))
    except RetriableError as exc:
        raise RetriableError(f"sync step: writing to {ctx.crm.name} failed: {exc}") from exc
    write = BatchWrite(
        batch.leads,
        batch.prepared.rejects,
        batch.positions,
        held=batch.held,
        seen=batch.prepared.seen,
        crm_failures=result.failure_frame(),
        crm_name=ctx.crm.name,
    )
    ctx.store.record_batch(write, run_id, ctx.source.key)
    return result


@task(name="notify", cache_policy=NONE, persist_result=False)
def notify_step(leads: pl.DataFrame, held: pl.DataFrame, ctx: RunContext, run_id: str) -> None:
    """Announce new leads of the `[notify] tiers` in their queue's channel, and new holds to `reviews`.

    Each lead is announced once (the store remembers what was sent); what Slack did not take
    is logged and counted, and the run goes on."""
    notifier = ctx.notifier
    if notifier is None or ctx.shadow:
        return
    new = leads.filter(pl.col("tier").is_in(ctx.settings.notify.tiers)) if ctx.announces else leads.clear()
    new = new.filter(~pl.col("email").is_in(list(ctx.store.notified(new["email"].to_list(), "lead"))))
    for route, (text, emails) in lead_messages(new).items():
        if notifier.post(route, text):
            ctx.store.mark_notified(emails, "lead", run_id)
    waiting = held.filter(~pl.col("email").is_in(list(ctx.store.notified(held["email"].to_list(), "review"))))
    if not waiting.is_empty() and notifier.post("reviews", review_message(waiting)):
        ctx.store.mark_notified(waiting["email"].to_list(), "review", run_id)


@task(name="commit", cache_policy=NONE, persist_result=False)
def commit_step(ctx: RunContext, cursor: Cursor) -> None:
    ctx.store.commit_watermark(ctx.source.key, cursor)
