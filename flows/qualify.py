"""The `qualify-signups` flow: source → prepare → enrich → score → judge → review → route → sync → notify → commit.

One task run per batch step, never per lead. The watermark moves only after the CRM
has committed the batch, so a crash means the batch is redone, and redoing it
creates nothing twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

import polars as pl
from prefect import Task, flow, get_run_logger
from prefect.runtime import flow_run
from prefect.utilities.annotations import quote

from connectors.crm import CrmResult, CrmSink, CrmStopped
from connectors.prepare.read import ReadScope
from connectors.routing.calendars import build_calendars
from connectors.routing.names import KnownNames
from connectors.sources import Cursor, FrameSource, SignupSource, last_cursor
from connectors.store import Store
from crew.judge import decided_by_rules
from flows import steps
from flows.ahead import one_ahead
from flows.alerts import alert_failed_run, run_alerts, send_alerts
from flows.artifacts import publish_run_artifacts
from flows.context import RunContext, shared_context, take_context
from flows.progress import report
from flows.steps import DecidedBatch, Owners, QualifyParams, RoutedBatch, RunIds
from flows.summary import RunTotals, check_books

P = ParamSpec("P")
R = TypeVar("R")


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
    params = QualifyParams(source=source, dry_run=dry_run, refresh_enrichment=refresh_enrichment)
    with shared_context(source) as ctx:
        if not dry_run and ctx.store.exists() and ctx.store.waiting_leads():
            route_waiting_leads()  # first, so they take the first turns that free up
        return qualify(params)


@flow(name="route-waiting-leads", on_failure=[alert_failed_run], on_crashed=[alert_failed_run])
def route_waiting_leads() -> dict[str, Any]:
    """Leads an earlier run left waiting unowned (every SDR of their queue was away, off hours or at
    capacity) go through the pipeline again, as a run of their own."""
    ctx = take_context()
    emails = ctx.store.waiting_leads()
    get_run_logger().info("routing %d leads an earlier run left waiting in their queues", len(emails))
    return qualify(QualifyParams(), source=FrameSource(ctx.store.signups(emails), key="waiting"))


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
    scope = ReadScope(started_at=_now(), replay=source is not None)
    # one writing run per store at a time: the second starts from where the first left the watermark
    lock = ctx.store.writer_lock(ctx.settings.run.lock_wait_s) if not params.dry_run else contextlib.nullcontext()
    with lock:
        _start_run(ctx, params, run_id, scope)
        try:
            totals = _run_batches(ctx, params, run_id, window, scope)
            totals.check_books()
        except Exception:
            if not params.dry_run:
                ctx.store.record_run({"run_id": run_id, "finished_at": _now(), "status": "failed"})
            raise
        return _finish_run(ctx, params, run_id, totals, time.perf_counter() - started)


def _start_run(ctx: RunContext, params: QualifyParams, run_id: str, scope: ReadScope) -> None:
    """Record the run as running (marking runs a dead process left running as crashed), and say what it reads."""
    logger = get_run_logger()
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


def _finish_run(
    ctx: RunContext, params: QualifyParams, run_id: str, totals: RunTotals, duration_s: float
) -> dict[str, Any]:
    """The run's summary: recorded, published as artifacts, alerted on, logged."""
    logger = get_run_logger()
    summary = totals.as_dict(
        run_id,
        duration_s,
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
            **ctx.source.usage(),
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
    sync = steps.sync_step.with_options(retries=retries, retry_delay_seconds=delay)
    route = steps.route_step.with_options(retries=retries, retry_delay_seconds=delay)
    timer = _StepTimer(totals)
    batch_size = ctx.settings.run.batch_size
    batches = ctx.source.between(*window, batch_size) if window else ctx.source.pending(watermark, batch_size)
    store = ctx.store if ctx.has_store else None  # a dry run on a fresh machine has none
    owners = Owners(
        store,
        None if ctx.shadow else ctx.crm,
        ctx.crm.name,
        assign=ctx.settings.autonomy.owner_assignment != "off",
        calendars=build_calendars(ctx.settings.routing, ctx.settings.config_dir),
        names=_known_names(store, ctx.routing.company_name_match),
    )
    run = RunIds(run_id, ctx.source.key)
    tiers = ctx.settings.notify.tiers if ctx.announces else None
    for batch in _decided(ctx, params, scope, batches, timer, totals):
        number = totals.batches + 1
        if ctx.judge is not None:
            with timer("judge"):
                leads = _for_batch(steps.judge_step, number)(batch.leads, ctx.judge, store, params)
        else:
            leads = decided_by_rules(batch.leads)
        with timer("review"):
            leads, held = _for_batch(steps.review_step, number)(leads, store, ctx.routing, ctx.holds)
        with timer("route"):
            leads, positions, stopped = _for_batch(route, number)(leads, owners, ctx.routing, positions)
        routed = RoutedBatch(leads, held, batch.prepared, positions)
        cursor = last_cursor(batch.raw, cursor, scope.started_at, ctx.settings.source.max_future_s)
        check_books(_books(batch, routed), f"batch {number}, before anything of it is written")
        if not stopped:
            with timer("sync"):
                stopped = _publish(_for_batch(sync, number), ctx, params, routed, run, totals)
        if stopped:
            totals.crm_stopped = stopped
            logger.warning("%s; batch %d is not committed and the next run starts with it", stopped, number)
            break
        if not params.dry_run and ctx.notifier is not None and not ctx.shadow:
            with timer("notify"):
                _for_batch(steps.notify_step, number)(leads, held, ctx.notifier, tiers, ctx.store, run_id)
        if not params.dry_run and moves_watermark:
            with timer("commit"):
                _for_batch(steps.commit_step, number)(ctx.store, ctx.source.key, cursor)
        totals.duplicates += batch.prepared.duplicates
        totals.skipped_known += batch.skipped
        totals.add_batch(batch.raw.height, leads, batch.prepared.rejects, ctx.icp.qualified_tiers, held)
        logger.info(
            "batch %d: %d signups, %d leads routed, %d held for review, %d rejected%s",
            number,
            batch.raw.height,
            leads.height,
            held.height,
            batch.prepared.rejects.height,
            f"; watermark {cursor.to_json()}" if moves_watermark and not params.dry_run else "",
        )
        report(f"batch {number}", totals.processed)
    return totals


def _known_names(store: Store | None, threshold: int | None) -> KnownNames | None:
    """Free-mail leads' typed company names are matched against the owned companies in the store."""
    return KnownNames(store.owned_company_names, threshold) if store is not None and threshold else None


def _books(batch: DecidedBatch, routed: RoutedBatch) -> dict[str, int]:
    """Where every row of the batch went: the run's books for this batch, checked before it is written."""
    return {
        "processed": batch.raw.height,
        "leads": routed.leads.height + routed.held.height,
        "duplicates": batch.prepared.duplicates,
        "rejected": batch.prepared.rejects.height,
        "skipped_known": batch.skipped,
    }


def _decided(
    ctx: RunContext,
    params: QualifyParams,
    scope: ReadScope,
    batches: Iterable[pl.DataFrame],
    timer: _StepTimer,
    totals: RunTotals,
) -> Iterator[DecidedBatch]:
    """Each batch prepared, enriched and scored, in source order: one batch ahead on a helper thread
    (while the flow routes and writes the batch before it), or on Dask workers in parallel.

    The steps after (judge, review, route, sync, commit) always run in the flow, in order: the LLM
    budget, the SDR rotation and the watermark are the run's, not a worker's."""
    if ctx.settings.runtime.task_runner == "dask":
        from flows.parallel import decided_on_dask  # loads distributed only when asked for

        yield from decided_on_dask(ctx, params, scope, batches, totals)
        return
    store = ctx.store if ctx.has_store else None

    def decide(numbered: tuple[int, pl.DataFrame]) -> DecidedBatch:
        number, raw = numbered
        with timer("prepare"):
            prepared, skipped = _for_batch(steps.prepare_step, number)(raw, ctx.rules, store, ctx.source.key, scope)
        with timer("enrich"):
            leads = _for_batch(steps.enrich_step, number)(prepared.leads, ctx.enricher, store, params)
        with timer("score"):
            leads = _for_batch(steps.score_step, number)(leads, ctx.icp, ctx.settings.scoring.top_reasons)
        return DecidedBatch(raw, prepared, skipped, leads)

    yield from one_ahead(decide, enumerate(batches, totals.batches + 1))


def _publish(
    sync: Callable[[RoutedBatch, CrmSink, bool, Store, RunIds], CrmResult],
    ctx: RunContext,
    params: QualifyParams,
    batch: RoutedBatch,
    run: RunIds,
    totals: RunTotals,
) -> str | None:
    """Sync the batch (a dry run only plans it) and count what the CRM confirmed; returns why it stopped, if so."""
    if params.dry_run:
        try:
            if ctx.writes_crm:
                totals.crm_plan.add(ctx.crm.plan(batch.leads))
        except CrmStopped as exc:
            return str(exc)
        return None
    result = sync(batch, ctx.crm, ctx.writes_crm, ctx.store, run)
    totals.crm_written += result.written
    totals.crm_failed += result.failed
    return result.stopped


def _for_batch(step: Task[P, R], number: int) -> Callable[P, R]:
    """The step's task with its runs named after the batch ("prepare batch 3") in the Prefect UI.

    Its arguments are passed `quote`d: Prefect otherwise walks every argument (settings, rules,
    frames) looking for futures to wait on, about 9 s of a million-signup run; these steps take none."""
    named = step.with_options(task_run_name=f"{step.name} batch {number}")

    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        return named(*(quote(a) for a in args), **{k: quote(v) for k, v in kwargs.items()})  # type: ignore[arg-type]

    return call


def _llm_usage(ctx: RunContext) -> dict[str, Any]:
    if ctx.judge is not None:
        return {**ctx.judge.budget.summary(), **ctx.judge.research.meter.summary()}
    return {"llm_calls": 0, "llm_prompt_tokens": 0, "llm_completion_tokens": 0, "llm_cost_usd": 0.0, "crew_leads": 0}


class _StepTimer:
    """Adds each step's wall time to the totals, for the 'slowest step' in the report (from both
    threads: the next batch's prepare, enrich and score run beside this one's route and sync)."""

    def __init__(self, totals: RunTotals) -> None:
        self.totals = totals
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def __call__(self, step: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.totals.step_seconds[step] += time.perf_counter() - started


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, default=str)
