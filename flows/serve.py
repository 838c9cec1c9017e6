"""`leadq serve`: leadq's four deployments, served from one process with their schedules."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prefect import serve
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron, Schedule

from connectors.errors import ConfigError
from connectors.settings import Settings
from flows.backfill import backfill_signups
from flows.qualify import qualify_signups
from flows.review import review_leads
from flows.sla import check_sla


def deployments(settings: Settings) -> list[RunnerDeployment]:
    """qualify-signups and check-sla on their crons; backfill-signups and review-leads when started by a person."""
    run = settings.run
    try:
        ZoneInfo(run.schedule_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"settings.toml: key 'run.schedule_timezone': unknown time zone {run.schedule_timezone!r}"
            " (an IANA name such as UTC or Europe/Berlin)"
        ) from None
    schedule = _cron(run.schedule_cron, run.schedule_timezone, "run.schedule_cron")
    sla_schedule = _cron(settings.sla.schedule_cron, run.schedule_timezone, "sla.schedule_cron")
    made = [
        qualify_signups.to_deployment(
            name="qualify-signups",
            description="Qualify new product signups and write them to the CRM.",
            schedules=[schedule],
            tags=["leadq"],
        ),
        backfill_signups.to_deployment(
            name="backfill-signups",
            description="Re-qualify a date range, a day per subflow run; finished chunks are skipped.",
            tags=["leadq"],
        ),
        check_sla.to_deployment(
            name="check-sla",
            description="Alert once per lead when a qualified lead has no activity within its tier's SLA.",
            schedules=[sla_schedule],
            tags=["leadq"],
        ),
        review_leads.to_deployment(
            name="review-leads",
            description="Ask a person about the leads leadq held, one form each; then route and write them.",
            tags=["leadq"],
        ),
    ]
    # to_deployment returns a coroutine only when called from async code
    return [d for d in made if isinstance(d, RunnerDeployment)]


def _cron(cron: str, timezone: str, key: str) -> Schedule:
    try:
        return Cron(cron, timezone=timezone)
    except ValueError as exc:
        raise ConfigError(f"settings.toml: key '{key}': {exc} (e.g. '*/15 * * * *')") from exc


def serve_all(settings: Settings, limit: int) -> None:
    """Register the deployments and run their flow runs until interrupted (Ctrl-C)."""
    serve(*deployments(settings), limit=limit)
