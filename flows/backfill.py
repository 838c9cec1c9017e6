"""The `backfill-signups` flow: re-qualify the signups of a date range, a chunk (a day by default) at a time.

Each chunk is a subflow run (`backfill-chunk`) over the signups with
start <= signed_up_at < end. A chunk that finished is recorded in the store, so a
backfill started again skips it; the live watermark is never read or moved, and every
write is the same upsert a scheduled run does, so backfills and scheduled runs can
cover the same signups without duplicates. A progress artifact shows chunks done.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, Self
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from pydantic import BaseModel, Field, model_validator

from connectors.store import Store
from flows.alerts import alert_failed_run
from flows.context import shared_context
from flows.qualify import qualify
from flows.steps import QualifyParams
from flows.summary import check_books

PROGRESS_KEY = "backfill-signups-progress"
SUMMARY_KEY = "backfill-signups-summary"
COUNTED = ("processed", "leads", "duplicates", "rejected", "skipped_known", "qualified", "crm_written", "crm_failed")


class BackfillParams(BaseModel):
    """Parameters of a backfill (rendered as a form in the Prefect UI)."""

    start: date = Field(description="First day to backfill (UTC)")
    end: date = Field(description="Last day to backfill, inclusive (UTC)")
    chunk_days: int = Field(1, ge=1, le=366, description="Days per chunk; each chunk is one subflow run")
    source: str | None = Field(None, description="A signup file instead of the configured source")
    dry_run: bool = Field(False, description="Decide everything, write nothing")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


def chunks(start: date, end: date, days: int) -> list[tuple[datetime, datetime]]:
    """[start, end] cut into [from, to) ranges of `days` days; the last one may be shorter."""
    first, stop = datetime.combine(start, time()), datetime.combine(end + timedelta(days=1), time())
    count = -(-(stop - first).days // days)
    return [(first + timedelta(days=i * days), min(first + timedelta(days=(i + 1) * days), stop)) for i in range(count)]


@flow(name="backfill-chunk", flow_run_name="backfill {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}")
def backfill_chunk(start: datetime, end: datetime, source: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    """The qualify pipeline over the signups in [start, end); the watermark stays where it is."""
    return qualify(QualifyParams(source=source, dry_run=dry_run), window=(start, end))


@flow(name="backfill-signups", on_failure=[alert_failed_run], on_crashed=[alert_failed_run])
def backfill_signups(
    start: date, end: date, chunk_days: int = 1, source: str | None = None, dry_run: bool = False
) -> dict[str, Any]:
    """Qualify again the signups of a date range, a chunk at a time; chunks an earlier backfill finished are skipped.

    Args:
        start: The first day to backfill (UTC).
        end: The last day to backfill, inclusive (UTC).
        chunk_days: Days per chunk; each chunk is one subflow run, and the unit a restarted backfill skips.
        source: A signup file (CSV, Parquet or JSONL) to read instead of the configured source.
        dry_run: Decide every lead and report what would be written, but write nothing.
    """
    params = BackfillParams(start=start, end=end, chunk_days=chunk_days, source=source, dry_run=dry_run)
    logger = get_run_logger()
    with shared_context(params.source) as ctx:
        store, source_key = ctx.store, ctx.source.key
        if not params.dry_run:
            store.create()
        ranges = chunks(params.start, params.end, params.chunk_days)
        done_before = _done(store, source_key) if store.exists() else set()
        progress = create_progress_artifact(0.0, key=PROGRESS_KEY, description="backfill chunks done")
        assert isinstance(progress, UUID)  # called from a sync flow, so not a coroutine
        totals: dict[str, Any] = {
            "chunks": len(ranges),
            "chunks_run": 0,
            "chunks_skipped": 0,
            **dict.fromkeys(COUNTED, 0),
        }
        table: list[dict[str, Any]] = []
        for i, (start, end) in enumerate(ranges, 1):
            key = _chunk_key(start, end)
            if key in done_before:
                totals["chunks_skipped"] += 1
                table.append({"chunk": key, "status": "done before"})
                logger.info("chunk %s already backfilled: skipped", key)
            else:
                summary = backfill_chunk(start, end, params.source, params.dry_run)
                table.append(
                    {
                        "chunk": key,
                        "status": "stopped" if summary.get("crm_stopped") else "run",
                        **{name: summary.get(name, 0) for name in COUNTED},
                    }
                )
                for name in COUNTED:
                    totals[name] += summary.get(name, 0)
                totals["chunks_run"] += 1
                if summary.get("crm_stopped"):
                    totals["crm_stopped"] = summary["crm_stopped"]
                    logger.warning(
                        "backfill stopped at chunk %s: %s; start it again to resume", key, summary["crm_stopped"]
                    )
                    break
                if not params.dry_run:
                    _mark_done(store, source_key, key)
            update_progress_artifact(progress, 100.0 * i / len(ranges))
    books = {name: totals[name] for name in ("processed", "leads", "duplicates", "rejected", "skipped_known")}
    check_books(books, f"the backfill {params.start}..{params.end}")
    totals["ledger"] = {**books, "balanced": True}
    create_markdown_artifact(markdown=_render(params, table, totals), key=SUMMARY_KEY, description="leadq backfill")
    logger.info(
        "backfill %s..%s: %d chunks run, %d skipped, %d signups processed",
        params.start,
        params.end,
        totals["chunks_run"],
        totals["chunks_skipped"],
        totals["processed"],
    )
    return {"start": str(params.start), "end": str(params.end), "dry_run": params.dry_run, **totals}


def _render(params: BackfillParams, table: list[dict[str, Any]], totals: dict[str, Any]) -> str:
    """The backfill's chunks, one row each with its own books, and the totals."""
    names = ("processed", "leads", "duplicates", "rejected", "skipped_known", "crm_written")
    lines = [
        f"# backfill-signups {params.start}..{params.end}" + (" (dry run)" if params.dry_run else ""),
        "",
        "| chunk | status | " + " | ".join(n.replace("_", " ") for n in names) + " |",
        "|---|---|" + "---:|" * len(names),
    ]
    for row in table:
        day = row["chunk"][:10] if row["chunk"][11:16] == "00:00" else row["chunk"]
        lines.append(f"| {day} | {row['status']} | " + " | ".join(str(row.get(n, "")) for n in names) + " |")
    lines.append("| **total** | | " + " | ".join(str(totals[n]) for n in names) + " |")
    lines += [
        "",
        f"{totals['chunks_run']} chunks run, {totals['chunks_skipped']} done before. "
        "processed = leads + duplicates + rejected + skipped (known).",
    ]
    return "\n".join(lines) + "\n"


def _chunk_key(start: datetime, end: datetime) -> str:
    return f"{start:%Y-%m-%dT%H:%M}/{end:%Y-%m-%dT%H:%M}"


def _done(store: Store, source_key: str) -> set[str]:
    return set(store.state(f"backfill:{source_key}") or [])


def _mark_done(store: Store, source_key: str, key: str) -> None:
    store.set_state(f"backfill:{source_key}", sorted(_done(store, source_key) | {key}))
