"""Alerts: a run that failed or stopped early, or left too many dead letters, says so loudly.

Every alert is a WARNING in the run's log, a section of its report artifact, and (with
`[notify] kind = "slack"`) a message to the `alerts` route. A failed or crashed flow run
alerts from its state hook, so even a run that died before its summary is reported.
"""

from __future__ import annotations

import logging
from typing import Any

from connectors.errors import LeadqError
from connectors.notify import SlackNotifier, alert_message, build_notifier
from connectors.settings import AlertSettings, load_settings

log = logging.getLogger("leadq.alerts")


def run_alerts(summary: dict[str, Any], settings: AlertSettings) -> list[str]:
    """What in a finished run's summary a person must hear about."""
    alerts: list[str] = []
    processed = summary.get("processed", 0)
    dead = summary.get("rejected", 0) + summary.get("crm_failed", 0)
    if processed and dead / processed > settings.max_dead_letter_rate:
        alerts.append(
            f"dead-letter rate {dead / processed:.1%} ({dead} of {processed} signups rejected or refused by the CRM) "
            f"is above alerts.max_dead_letter_rate {settings.max_dead_letter_rate:.1%}; see `leadq dead-letters list`"
        )
    if summary.get("waiting"):
        queues = ", ".join(f"{q} {n}" for q, n in summary["waiting_by_queue"].items())
        alerts.append(
            f"{summary['waiting']} leads wait unowned because every SDR of their queue is away, off hours or at "
            f"capacity ({queues}); the next run assigns them. See routing_reason in `leadq export`"
        )
    if settings.on_failure and summary.get("crm_stopped"):
        alerts.append(f"the run stopped early and the next run resumes there: {summary['crm_stopped']}")
    return alerts


def send_alerts(title: str, alerts: list[str], notifier: SlackNotifier | None, logger: Any) -> None:
    for alert in alerts:
        logger.warning("ALERT %s: %s", title, alert)
    if alerts and notifier is not None:
        notifier.post("alerts", alert_message(title, alerts))


def alert_failed_run(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow state hook (on_failure, on_crashed): report the failed run in Slack and the log."""
    try:
        settings = load_settings()
        if not settings.alerts.on_failure:
            return
        notifier = build_notifier(settings.notify)
    except LeadqError as exc:  # the config is what failed; the run's own error already says so
        log.warning("no failure alert sent: %s", exc)
        return
    title = f"{flow.name} run {flow_run.name} {state.name.lower()}"
    send_alerts(title, [state.message or "no message", f"flow run id {flow_run.id}"], notifier, log)
