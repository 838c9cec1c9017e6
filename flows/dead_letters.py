"""The `retry-dead-letters` flow: send dead letters through the normal path again, after a fix.

Source rows prepare rejected are rebuilt from the row as the source had it; records the
CRM refused are rebuilt from the lead leadq recorded. Each group goes through the whole
pipeline (prepare, enrich, score, review, route, CRM, store) as a subflow run, without
moving any watermark. Fixed ones leave the table; the rest stay, with the new reason.
"""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from connectors.sources import FrameSource
from connectors.sources.frame import ROW
from flows.alerts import alert_failed_run
from flows.context import shared_context, take_context
from flows.qualify import qualify
from flows.steps import QualifyParams


@flow(name="retry-dead-letters", on_failure=[alert_failed_run], on_crashed=[alert_failed_run])
def retry_dead_letters(only: Literal["crm", "source"] | None = None, limit: int = 10_000) -> dict[str, Any]:
    """Send dead letters through the pipeline again, one subflow run per source (and one for the CRM's refusals).

    Args:
        only: crm: only the records the CRM refused; source: only the rows prepare rejected; empty: both.
        limit: At most this many dead letters, oldest first.
    """
    totals = {"retried": 0, "fixed": 0, "still_failing": 0}
    with shared_context() as ctx:  # config and reference files read once for all groups
        letters = ctx.store.dead_letters(None if only is None else only == "crm", limit)
        for (source_key,), group in letters.group_by("source_key", maintain_order=True):
            outcome = retry_group(str(source_key), group["key"].to_list())
            for name in totals:
                totals[name] += outcome[name]
    get_run_logger().info("dead letters: %d retried, %d fixed, %d still failing", *totals.values())
    return totals


@flow(name="retry-dead-letter-group", flow_run_name="retry {source_key}")
def retry_group(source_key: str, keys: list[str]) -> dict[str, int]:
    ctx = take_context()
    letters = ctx.store.dead_letters(keys=keys)
    if source_key.startswith("crm:"):
        emails = letters["key"].str.slice(len(source_key) + 1).to_list()
        signups = FrameSource(ctx.store.signups(emails), key=f"retry:{source_key}")
    else:
        rows = letters["raw"].str.json_decode(infer_schema_length=None).struct.unnest()
        signups = FrameSource(rows.with_columns(letters["row_number"].alias(ROW)), key=source_key)
    qualify(QualifyParams(), source=signups)
    fixed = ctx.store.clear_fixed(keys, str(flow_run.get_id()))
    return {"retried": len(keys), "fixed": fixed, "still_failing": len(keys) - fixed}
