"""The `check-sla` flow: speed to lead. Scheduled apart from qualify-signups (`[sla] schedule_cron`).

Each check reads the qualified leads whose owner got them within `[sla] lookback_days`,
asks the CRM for the owners' activity on the ones nobody has touched yet (HubSpot's last
sales activity / last contacted, Salesforce's LastActivityDate; the embedded store's own
`leadq lead status EMAIL worked`), keeps each first touch, and alerts through the alert
channels (the log, Slack's `alerts` route) about leads whose tier's `sla_minutes` ran out
without a touch: once per lead, never again on later checks. Its artifact reports the time
to first touch per queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from connectors.crm import CrmSink, build_crm
from connectors.crm.base import ACTIVITY_SCHEMA
from connectors.notify import SlackNotifier, build_notifier
from connectors.routing import RoutingConfig, load_routing
from connectors.routing.sla import breach_alert, first_touch_report, sla_status
from connectors.settings import Settings, load_settings
from connectors.store import Store
from flows.alerts import alert_failed_run, send_alerts

REPORT_KEY = "check-sla-report"


@dataclass(frozen=True)
class SlaContext:
    """What a check needs, and no more: it runs every few minutes (no reference file, no crew)."""

    settings: Settings
    routing: RoutingConfig
    store: Store
    crm: CrmSink
    notifier: SlackNotifier | None

    @classmethod
    def load(cls) -> SlaContext:
        settings = load_settings()
        routing = load_routing(settings.config_path(settings.routing.file))
        return cls(settings, routing, Store(settings.store_url), build_crm(settings), build_notifier(settings.notify))

    @property
    def shadow(self) -> bool:
        return self.settings.run.mode == "shadow"


@flow(name="check-sla", on_failure=[alert_failed_run], on_crashed=[alert_failed_run])
def check_sla() -> dict[str, Any]:
    """Alert once per lead when a qualified lead has no activity within its tier's SLA; report time to first touch."""
    logger = get_run_logger()
    ctx = SlaContext.load()
    minutes = ctx.routing.sla_minutes
    if not minutes or ctx.shadow or not ctx.store.exists():
        why = "no sla_minutes in routing.yaml" if not minutes else "shadow mode" if ctx.shadow else "no store yet"
        logger.info("nothing to check: %s", why)
        return {"checked": 0, "breached": 0, "alerted": 0, "skipped": why}
    now = datetime.now(UTC).replace(tzinfo=None)
    owned = ctx.store.owned_since(now - timedelta(days=ctx.settings.sla.lookback_days))
    owned = owned.filter(pl.col("tier").is_in(list(minutes)))
    untouched = owned.filter(pl.col("touched_at").is_null())["email"].to_list()
    activity = ctx.crm.activity(untouched) if untouched else pl.DataFrame(schema=ACTIVITY_SCHEMA)
    status = sla_status(owned, activity, minutes, now)
    ctx.store.record_touches(status.filter("new_touch"))
    breached = status.filter("breached")
    told = ctx.store.notified(breached["email"].to_list(), "sla")
    new = breached.filter(~pl.col("email").is_in(list(told)))
    alerts = [breach_alert(new, ctx.settings.sla.max_listed)] if not new.is_empty() else []
    send_alerts(f"check-sla run {flow_run.get_name() or ''}".strip(), alerts, ctx.notifier, logger)
    if alerts:
        ctx.store.mark_notified(new["email"].to_list(), "sla", str(flow_run.get_id() or "local"))
    report = first_touch_report(status)
    create_markdown_artifact(key=REPORT_KEY, markdown=render(report, new.height), description="Speed to lead")
    logger.info(
        "%d leads with an SLA checked: %d touched (%d now), %d past their SLA untouched (%d newly alerted)",
        status.height,
        int(status["touched_at"].is_not_null().sum()),
        int(status["new_touch"].sum()),
        breached.height,
        new.height,
    )
    return {
        "checked": status.height,
        "touched": int(status["touched_at"].is_not_null().sum()),
        "new_touches": int(status["new_touch"].sum()),
        "breached": breached.height,
        "alerted": new.height,
        "alerts": alerts,
        "by_queue": report.to_dicts(),
    }


def render(report: pl.DataFrame, alerted: int) -> str:
    """Time to first touch per queue, as markdown."""
    header = (
        "| queue | leads | touched | within SLA | open breaches | median min to touch | p90 min to touch |\n"
        "|---|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = "".join(
        f"| {r['queue']} | {r['leads']} | {r['touched']} | {r['within_sla']} | {r['open_breaches']} "
        f"| {_minutes(r['median_minutes_to_touch'])} | {_minutes(r['p90_minutes_to_touch'])} |\n"
        for r in report.iter_rows(named=True)
    )
    empty = "| - | 0 | 0 | 0 | 0 | - | - |\n"
    return f"### Speed to lead\n\n{header}{rows or empty}\n{alerted} leads newly alerted.\n"


def _minutes(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"
