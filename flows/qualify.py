"""The `qualify-signups` flow: source → prepare → enrich → score → judge → review → route → sync → notify → commit.

One task run per batch step, never per lead. The watermark moves only after the CRM
has committed the batch, so a crash means the batch is redone, and redoing it
creates nothing twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

import polars as pl
from prefect import Task, flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.runtime import flow_run
from pydantic import BaseModel, Field

from connectors.crm import CrmResult, CrmStopped
from connectors.errors import RetriableError
from connectors.notify import lead_messages, review_message
from connectors.prepare import Prepared, prepare_batch
from connectors.prepare.known import BEHIND, OUTCOME, split_known
from connectors.routing import assign_queues, route_leads
from connectors.sources import Cursor, SignupSource, last_cursor
from connectors.sources.cursor import CURSOR_ID
from connectors.store.rows import dead_letter_keys
from crew.judge import decided_by_rules
from crew.review import HOLD, apply_decisions, mark_holds
from crew.scorer import score_leads
from flows.alerts import alert_failed_run, run_alerts, send_alerts
from flows.artifacts import publish_run_artifacts
from flows.context import RunContext, take_context, worker_context
from flows.progress import report
from flows.summary import RunTotals, check_books

# Batches are large and change every run, so no step hashes, caches or persists them
# (cache_policy=NONE, persist_result=False).


P = ParamSpec("P")
R = TypeVar("R")


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


# One batch's prepare, enrich and score, as the flow loop and the Dask workers both get it.
Decided = tuple[pl.DataFrame, Prepared, int, pl.DataFrame]  # raw, prepared, skipped (known), scored leads


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


@task(name="decide", cache_policy=NONE, persist_result=False)
def decide_on_worker(raw: pl.DataFrame, params: QualifyParams, scope: ReadScope) -> tuple[Decided, dict[str, float]]:
    """prepare → enrich → score for one batch on a Dask worker, with the worker's own context.

    Returns the batch and the seconds each step took there."""
    ctx = worker_context()
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    prepared, skipped = prepare_step.fn(raw, ctx, scope)
    seconds["prepare"], started = time.perf_counter() - started, time.perf_counter()
    leads = enrich_step.fn(prepared.leads, ctx, params)
    seconds["enrich"], started = time.perf_counter() - started, time.perf_counter()
    leads = score_step.fn(leads, ctx)
    seconds["score"] = time.perf_counter() - started
    return (raw, prepared, skipped, leads), seconds


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
def sync_step(
    leads: pl.DataFrame,
    held: pl.DataFrame,
    prepared: Prepared,
    positions: dict[str, int],
    ctx: RunContext,
    run_id: str,
) -> CrmResult:
    """Publish to the CRM, then record the batch (what the CRM refused, and the leads held for
    review) in the store, in one transaction. Shadow mode and `crm_write = "off"` skip the CRM.

    Redoing it is safe: every CRM write is an upsert by a stable key."""
    try:
        result = ctx.crm.publish(leads) if ctx.writes_crm else CrmResult()
    except CrmStopped as exc:
        return CrmResult(stopped=str(exc))
    except RetriableError as exc:
        raise RetriableError(f"sync step: writing to {ctx.crm.name} failed: {exc}") from exc
    ctx.store.record_batch(
        leads,
        prepared.rejects,
        positions,
        run_id,
        ctx.source.key,
        result.failure_frame(),
        ctx.crm.name,
        held=held,
        seen=prepared.seen,
    )
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


@flow(name="qualify-signups", on_failure=[alert_failed_run], on_crashed=[alert_failed_run])
def qualify_signups(
    source: str | None = None, dry_run: bool = False, refresh_enrichment: bool = False
) -> dict[str, Any]:
    """Qualify the signups that arrived since the last run: prepare, enrich, score, route, write to the CRM.

    Args:
        source: A signup file (CSV, Parquet or JSONL) to read instead of the configured source.
        dry_run: Decide every lead and report what would be written, but write nothing and move nothing.
        refresh_enrichment: Ask the enrichment providers again instead of using their cached answers.
    """
    return qualify(QualifyParams(source=source, dry_run=dry_run, refresh_enrichment=refresh_enrichment))


def qualify(
    params: QualifyParams, window: tuple[datetime, datetime] | None = None, source: SignupSource | None = None
) -> dict[str, Any]:
    """The body of a run, inside a flow: new signups after the watermark; or (a backfill) the signups
    in `window` = [start, end); or every signup of `source` (leads a person reviewed, dead letters
    retried). Only the first moves the watermark."""
    started = time.perf_counter()
    run_id = str(flow_run.get_id() or f"local-{datetime.now(UTC):%Y%m%dT%H%M%S}")
    ctx = take_context(params.source)
    if source is not None:
        ctx = dataclasses.replace(ctx, source=source)
    # one writing run per store at a time: the second starts from where the first left the watermark
    lock = ctx.store.writer_lock(ctx.settings.run.lock_wait_s) if not params.dry_run else contextlib.nullcontext()
    with lock:
        return _locked_run(ctx, params, run_id, started, window, replay=source is not None)


def _locked_run(
    ctx: RunContext,
    params: QualifyParams,
    run_id: str,
    started: float,
    window: tuple[datetime, datetime] | None,
    replay: bool,
) -> dict[str, Any]:
    logger = get_run_logger()
    scope = ReadScope(started_at=_now(), replay=replay)
    if not params.dry_run:
        ctx.store.create()
        for dead in ctx.store.mark_crashed_runs(run_id):
            logger.warning("run %s was left 'running' by a process that died; it is marked crashed", dead)
        parent = flow_run.get_parent_flow_run_id()
        ctx.store.record_run(
            {
                "run_id": run_id,
                "source_key": ctx.source.key,
                "started_at": scope.started_at,
                "status": "running",
                "parent_run": str(parent) if parent else None,
            }
        )
    ctx.has_store = ctx.store.exists()
    logger.info("source %s, ICP %s", ctx.source.key, ctx.icp.version)
    if ctx.judge is None:
        logger.info("no [llm] model set: rules decide every lead")
    try:
        totals = _run_batches(ctx, params, run_id, window, scope)
        totals.check_books()
    except Exception:
        if not params.dry_run:
            ctx.store.record_run({"run_id": run_id, "finished_at": _now(), "status": "failed"})
        raise

    summary = totals.as_dict(
        run_id,
        time.perf_counter() - started,
        {
            "dry_run": params.dry_run,
            "mode": ctx.settings.run.mode,
            "source": ctx.source.key,
            "icp_version": ctx.icp.version,
            "llm": ctx.settings.llm.model or "off: no [llm] model set, rules decided every lead",
            **_llm_usage(ctx),
            "enrichment_calls": {name: calls for name, (calls, _) in ctx.enricher.usage().items()},
            "enrichment_cost": {name: round(cost, 4) for name, (_, cost) in ctx.enricher.usage().items()},
            "enrichment_time_s": ctx.enricher.seconds(),
            "enrichment_off": ctx.enricher.off(),
            "crm": ctx.crm.name,
            **ctx.crm.usage(),
            **(ctx.notifier.usage() if ctx.notifier is not None else {}),
            **({"crm_plan": totals.crm_plan.counts, "crm_sample": totals.crm_plan.sample} if params.dry_run else {}),
        },
    )
    summary["alerts"] = [] if params.dry_run else run_alerts(summary, ctx.settings.alerts)
    if not params.dry_run:
        ctx.store.record_run(
            {
                "run_id": run_id,
                "finished_at": _now(),
                "summary": _json(summary),
                "status": "stopped" if totals.crm_stopped else "completed",
                **totals.ledger(),
            }
        )
    for provider, why in summary["enrichment_off"].items():
        logger.info("enrichment provider %s was off: %s", provider, why)
    publish_run_artifacts(summary)
    send_alerts(f"qualify-signups run {flow_run.get_name() or run_id}", summary["alerts"], ctx.notifier, logger)
    logger.info(
        "processed %d signups: %d leads, %d qualified, %d rejected",
        summary["processed"],
        summary["leads"],
        summary["qualified"],
        summary["rejected"],
    )
    return summary


def _run_batches(
    ctx: RunContext,
    params: QualifyParams,
    run_id: str,
    window: tuple[datetime, datetime] | None,
    scope: ReadScope,
) -> RunTotals:
    """The pipeline, batch by batch, from the watermark to the end of the source (or over the window)."""
    logger = get_run_logger()
    moves_watermark = window is None and not scope.replay
    watermark = ctx.store.watermark(ctx.source.key) if ctx.has_store else Cursor()
    if moves_watermark:
        scope = dataclasses.replace(scope, watermark=watermark)
    positions = ctx.store.rotation_positions() if ctx.has_store else {}
    totals, cursor = RunTotals(), watermark
    # CRM reads (route) and writes (sync) retry alike: only RetriableError, `sync_retries` times
    retries, delay = ctx.settings.crm.sync_retries, ctx.settings.crm.sync_retry_delay_s
    sync = sync_step.with_options(retries=retries, retry_delay_seconds=delay)
    route = route_step.with_options(retries=retries, retry_delay_seconds=delay)
    timer = _StepTimer(totals)
    batch_size = ctx.settings.run.batch_size
    batches = ctx.source.between(*window, batch_size) if window else ctx.source.pending(watermark, batch_size)
    for raw, prepared, skipped, leads in _decided(ctx, params, scope, batches, timer, totals):
        number = totals.batches + 1
        if ctx.judge is not None:
            with timer("judge"):
                leads = _for_batch(judge_step, number)(leads, ctx, params)
        else:
            leads = decided_by_rules(leads)
        with timer("review"):
            leads, held = _for_batch(review_step, number)(leads, ctx)
        with timer("route"):
            leads, positions, stopped = _for_batch(route, number)(leads, ctx, positions)
        cursor = last_cursor(raw, cursor, scope.started_at, ctx.settings.source.max_future_s)
        batch_books = {
            "processed": raw.height,
            "leads": leads.height + held.height,
            "duplicates": prepared.duplicates,
            "rejected": prepared.rejects.height,
            "skipped_known": skipped,
        }
        check_books(batch_books, f"batch {totals.batches + 1}, before anything of it is written")
        if not stopped:
            with timer("sync"):
                stopped = _publish(
                    _for_batch(sync, number), ctx, params, leads, held, prepared, positions, run_id, totals
                )
        if stopped:
            totals.crm_stopped = stopped
            logger.warning("%s; batch %d is not committed and the next run starts with it", stopped, totals.batches + 1)
            break
        if not params.dry_run and ctx.notifier is not None:
            with timer("notify"):
                _for_batch(notify_step, number)(leads, held, ctx, run_id)
        if not params.dry_run and moves_watermark:
            with timer("commit"):
                _for_batch(commit_step, number)(ctx, cursor)
        totals.duplicates += prepared.duplicates
        totals.skipped_known += skipped
        totals.add_batch(raw.height, leads, prepared.rejects, ctx.icp.qualified_tiers, held)
        logger.info(
            "batch %d: %d signups, %d leads routed, %d held for review, %d rejected%s",
            totals.batches,
            raw.height,
            leads.height,
            held.height,
            prepared.rejects.height,
            f"; watermark {cursor.to_json()}" if moves_watermark and not params.dry_run else "",
        )
        report(f"batch {totals.batches}", totals.processed)
    return totals


def _decided(
    ctx: RunContext,
    params: QualifyParams,
    scope: ReadScope,
    batches: Iterable[pl.DataFrame],
    timer: _StepTimer,
    totals: RunTotals,
) -> Iterator[Decided]:
    """Each batch prepared, enriched and scored, in source order: here, or on Dask workers in parallel.

    The steps after (judge, review, route, sync, commit) always run here, in order: the LLM
    budget, the SDR rotation and the watermark are the run's, not a worker's."""
    if ctx.settings.runtime.task_runner == "dask":
        yield from _decided_on_dask(ctx, params, scope, batches, totals)
        return
    for number, raw in enumerate(batches, totals.batches + 1):
        with timer("prepare"):
            prepared, skipped = _for_batch(prepare_step, number)(raw, ctx, scope)
        with timer("enrich"):
            leads = _for_batch(enrich_step, number)(prepared.leads, ctx, params)
        with timer("score"):
            leads = _for_batch(score_step, number)(leads, ctx)
        yield raw, prepared, skipped, leads


def _decided_on_dask(
    ctx: RunContext, params: QualifyParams, scope: ReadScope, batches: Iterable[pl.DataFrame], totals: RunTotals
) -> Iterator[Decided]:
    """Up to two batches per worker in flight; results come back in source order."""
    from prefect_dask.task_runners import DaskTaskRunner  # imported only when asked for: it loads distributed

    runtime = ctx.settings.runtime
    local = {"n_workers": runtime.dask_workers, "threads_per_worker": 1, "processes": True, "dashboard_address": None}
    runner = DaskTaskRunner(
        address=runtime.dask_address or None, cluster_kwargs=None if runtime.dask_address else local
    )
    in_flight: deque[Any] = deque()
    with runner:
        for raw in batches:
            in_flight.append(runner.submit(decide_on_worker, {"raw": raw, "params": params, "scope": scope}))
            if len(in_flight) >= 2 * runtime.dask_workers:
                yield _collect(in_flight.popleft(), totals)
        while in_flight:
            yield _collect(in_flight.popleft(), totals)


def _collect(future: Any, totals: RunTotals) -> Decided:
    decided, seconds = future.result()
    for step, spent in seconds.items():
        totals.step_seconds[step] += spent
    return decided  # type: ignore[no-any-return]


def _publish(
    sync: Any,
    ctx: RunContext,
    params: QualifyParams,
    leads: pl.DataFrame,
    held: pl.DataFrame,
    prepared: Prepared,
    positions: dict[str, int],
    run_id: str,
    totals: RunTotals,
) -> str | None:
    """Sync the batch (a dry run only plans it) and count what the CRM confirmed; returns why it stopped, if so."""
    if params.dry_run:
        try:
            if ctx.writes_crm:
                totals.crm_plan.add(ctx.crm.plan(leads))
        except CrmStopped as exc:
            return str(exc)
        return None
    result: CrmResult = sync(leads, held, prepared, positions, ctx, run_id)
    totals.crm_written += result.written
    totals.crm_failed += result.failed
    return result.stopped


def _for_batch(step: Task[P, R], number: int) -> Task[P, R]:
    """The step's task with its runs named after the batch ("prepare batch 3") in the Prefect UI."""
    return step.with_options(task_run_name=f"{step.name} batch {number}")


def _llm_usage(ctx: RunContext) -> dict[str, Any]:
    if ctx.judge is not None:
        return ctx.judge.budget.summary()
    return {"llm_calls": 0, "llm_prompt_tokens": 0, "llm_completion_tokens": 0, "llm_cost_usd": 0.0, "crew_leads": 0}


class _StepTimer:
    """Adds each step's wall time to the totals, for the 'slowest step' in the report."""

    def __init__(self, totals: RunTotals) -> None:
        self.totals = totals
        self._step = ""
        self._start = 0.0

    def __call__(self, step: str) -> _StepTimer:
        self._step = step
        return self

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *_exc: object) -> None:
        self.totals.step_seconds[self._step] += time.perf_counter() - self._start


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, default=str)
