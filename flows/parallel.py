"""prepare, enrich and score of many batches at once, on a Dask cluster (`[runtime] task_runner = "dask"`).

The steps after them (judge, review, route, sync, commit) stay in the flow, in source order: the
LLM budget, the SDR rotation and the watermark are the run's, not a worker's.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

import polars as pl
from prefect import task
from prefect.cache_policies import NONE

from connectors.prepare.read import ReadScope
from flows.context import RunContext, worker_context
from flows.steps import DecidedBatch, QualifyParams, enrich_step, prepare_step, score_step
from flows.summary import RunTotals


@task(name="decide", cache_policy=NONE, persist_result=False)
def decide_on_worker(
    raw: pl.DataFrame, params: QualifyParams, scope: ReadScope
) -> tuple[DecidedBatch, dict[str, float]]:
    """prepare → enrich → score for one batch on a Dask worker, with the worker's own context.

    Returns the batch and the seconds each step took there."""
    ctx = worker_context()
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    store = ctx.store if ctx.has_store else None
    prepared, skipped = prepare_step.fn(raw, ctx.rules, store, ctx.source.key, scope)
    seconds["prepare"], started = time.perf_counter() - started, time.perf_counter()
    leads = enrich_step.fn(prepared.leads, ctx.enricher, store, params)
    seconds["enrich"], started = time.perf_counter() - started, time.perf_counter()
    leads = score_step.fn(leads, ctx.icp, ctx.settings.scoring.top_reasons)
    seconds["score"] = time.perf_counter() - started
    return DecidedBatch(raw, prepared, skipped, leads), seconds


def decided_on_dask(
    ctx: RunContext, params: QualifyParams, scope: ReadScope, batches: Iterable[pl.DataFrame], totals: RunTotals
) -> Iterator[DecidedBatch]:
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


def _collect(future: Any, totals: RunTotals) -> DecidedBatch:
    decided, seconds = future.result()
    for step, spent in seconds.items():
        totals.step_seconds[step] += spent
    return decided  # type: ignore[no-any-return]
