"""`leadq run` with nothing to do, answered in about a second, without starting Prefect.

Before it starts a flow, `leadq run` reads what the run would read (the rows after the watermark,
and its lookback) and prepares them exactly as the prepare step does. When every row is already
in the store and the watermark would not move, a flow run would change nothing: this run is
recorded in the store's run history as `completed` with its books (processed = skipped_known),
its summary is printed, and no flow run is started. Such a run does not appear in the Prefect
UI; every run that has a signup to process does. Scheduled runs (`leadq serve`) always run the
flow.
"""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, datetime
from typing import Any

from connectors.prepare.read import ReadScope, prepare_read
from connectors.sources import last_cursor
from flows.context import RunContext
from flows.summary import RunTotals

NOT_STARTED = "not started: nothing new to process"


def nothing_new(ctx: RunContext, dry_run: bool = False) -> dict[str, Any] | None:
    """The summary of a run that found nothing new (recorded unless `dry_run`), or None when a
    flow run has work to do."""
    if not ctx.store.exists():
        return None  # a first run
    if not dry_run and ctx.store.waiting_leads():
        return None  # leads wait in a queue for an SDR: the flow routes them first
    started = time.perf_counter()
    now = datetime.now(UTC).replace(tzinfo=None)
    run_id = f"local-{now:%Y%m%dT%H%M%S%f}"
    # as the flow does: a live run holds the store's writer lock and makes a newer leadq's tables; a dry run neither
    lock = contextlib.nullcontext() if dry_run else ctx.store.writer_lock(ctx.settings.run.lock_wait_s)
    with lock:
        if not dry_run:
            ctx.store.create()
        watermark = ctx.store.watermark(ctx.source.key)
        scope = ReadScope(started_at=now, watermark=watermark)
        totals, cursor = RunTotals(), watermark
        for raw in ctx.source.pending(watermark, ctx.settings.run.batch_size):
            _, skipped = prepare_read(raw, ctx.rules, ctx.store, ctx.source.key, scope)
            if skipped != raw.height:
                return None
            cursor = last_cursor(raw, cursor, now, ctx.settings.source.max_future_s)
            totals.processed += raw.height
            totals.skipped_known += skipped
            totals.batches += 1
        if cursor != watermark:
            return None
        summary = totals.as_dict(
            run_id,
            time.perf_counter() - started,
            {
                "dry_run": dry_run,
                "mode": ctx.settings.run.mode,
                "source": ctx.source.key,
                "icp_version": ctx.icp.version,
                "crm": ctx.crm.name,
                "prefect": NOT_STARTED,
                "alerts": [],
            },
        )
        if not dry_run:
            ended = datetime.now(UTC).replace(tzinfo=None)
            ctx.store.record_run(
                {
                    "run_id": run_id,
                    "source_key": ctx.source.key,
                    "started_at": now,
                    "finished_at": ended,
                    "status": "completed",
                    "summary": json.dumps(summary, sort_keys=True, default=str),
                    **totals.ledger(),
                }
            )
    return summary
