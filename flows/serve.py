"""`leadq serve`: leadq's three deployments, served from one process with their schedules."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prefect import serve
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from connectors.errors import ConfigError
from connectors.settings import Settings
from flows.backfill import backfill_signups
from flows.qualify import qualify_signups
from flows.review import review_leads


def deployments(settings: Settings) -> list[RunnerDeployment]:
    """qualify-signups on the configured cron; backfill-signups and review-leads when started by a person."""
    run = settings.run
    try:
        ZoneInfo(run.schedule_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"settings.toml: key 'run.schedule_timezone': unknown time zone {run.schedule_timezone!r}"
            " (an IANA name such as UTC or Europe/Berlin)"
        ) from None
    try:
        schedule = Cron(run.schedule_cron, timezone=run.schedule_timezone)
    except ValueError as exc:
        raise ConfigError(f"settings.toml: key 'run.schedule_cron': {exc} (e.g. '*/15 * * * *')") from exc
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
        review_leads.to_deployment(
            name="review-leads",
            description="Ask a person about the leads leadq held, one form each; then route and write them.",
            tags=["leadq"],
        ),
    ]
    # to_deployment returns a coroutine only when called from async code
    return [d for d in made if isinstance(d, RunnerDeployment)]


def serve_all(settings: Settings, limit: int) -> None:
    """Register the deployments and run their flow runs until interrupted (Ctrl-C)."""
    serve(*deployments(settings), limit=limit)
