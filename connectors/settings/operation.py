"""How runs operate: batches, runtime, autonomy, review, notifications, alerts, shadow mode, the store."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from connectors.settings.section import Action, Section


class RunSettings(Section):
    batch_size: int = Field(ge=1, le=1_000_000)
    mode: Literal["live", "shadow"]  # shadow: decide and record everything, write nothing to the CRM
    schedule_cron: str  # qualify-signups under `leadq serve`
    schedule_timezone: str
    lock_wait_s: float = Field(ge=0)  # a run waits this long for another run writing to the same store


class RuntimeSettings(Section):
    """Where batches run: in this process, or in parallel on a Dask cluster."""

    task_runner: Literal["threads", "dask"]
    dask_address: str  # e.g. tcp://scheduler:8786; empty: a local cluster of dask_workers processes
    dask_workers: int = Field(ge=1, le=256)
    prefect_api: Literal["local-server", "in-process"]
    prefect_start_timeout_s: float = Field(gt=0)
    flow_heartbeats: bool  # Prefect's flow-run heartbeats from leadq's commands (for a zombie-flow automation)


class AutonomySettings(Section):
    """Per action: `auto` (do it), `approve` (hold the lead for a person first) or `off` (never)."""

    crm_write: Action
    owner_assignment: Action
    notify: Action


class ReviewSettings(Section):
    borderline_points: int = Field(ge=0, le=100)  # hold scores this close to the qualified threshold (0: off)
    timeout_s: int = Field(ge=60)  # how long a review-leads run waits for one form
    max_per_run: int = Field(ge=1, le=1000)  # leads one review-leads run asks about


class SlackSettings(Section):
    """Incoming webhooks: a route (a queue name, `reviews`, `alerts` or `default`) -> the variable holding its URL."""

    webhooks: dict[str, str]
    timeout_s: float = Field(gt=0)
    attempts: int = Field(ge=1, le=10)
    max_backoff_s: float = Field(ge=0)


class NotifySettings(Section):
    kind: Literal["off", "slack"]
    tiers: list[str]  # new leads of these tiers are announced
    slack: SlackSettings


class AlertSettings(Section):
    max_dead_letter_rate: float = Field(ge=0, le=1)  # share of a run's signups; above it, an alert
    on_failure: bool  # a failed or stopped run raises an alert


class SlaSettings(Section):
    """The check-sla flow: leads without activity within their tier's `sla_minutes` (routing.yaml)."""

    schedule_cron: str  # check-sla under `leadq serve` (in run.schedule_timezone)
    lookback_days: float = Field(gt=0)  # leads owned this long ago or less are checked
    max_listed: int = Field(ge=1)  # leads named in one alert; the rest are counted


class ShadowSettings(Section):
    """How `leadq shadow-report` reads what people did in the CRM."""

    qualified_statuses: list[str]
    disqualified_statuses: list[str]


class StoreSettings(Section):
    url: str
