"""Slack notifications and alerts from real runs: new leads to their queue's channel once, reviews, alerts."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from prefect.artifacts import Artifact

from connectors.errors import SourceError
from connectors.settings import load_settings
from connectors.store import Store
from connectors.store.export import export_leads
from flows.backfill import backfill_signups
from flows.qualify import qualify_signups
from tests.fake_slack import FakeSlack, Webhook
from tests.fakes import FakeHttp

pytestmark = pytest.mark.usefixtures("prefect_api")
ROUTES = ("enterprise-na", "reviews", "alerts", "default")


@pytest.fixture
def channels(config_dir: Path, fake_http: FakeHttp, monkeypatch: pytest.MonkeyPatch) -> dict[str, Webhook]:
    """Slack on, one webhook per route, each URL in its own environment variable."""
    slack = FakeSlack(fake_http)
    hooks = {route: slack.webhook(f"#{route}") for route in ROUTES}
    settings = config_dir / "settings.toml"
    lines = "".join(f'"{route}" = "HOOK_{i}"\n' for i, route in enumerate(ROUTES))
    settings.write_text(settings.read_text().replace('default = "SLACK_WEBHOOK_URL"\n', lines))
    for i, route in enumerate(ROUTES):
        monkeypatch.setenv(f"HOOK_{i}", slack.url(hooks[route]))
    monkeypatch.setenv("LEADQ__NOTIFY__KIND", "slack")
    monkeypatch.setenv("LEADQ__NOTIFY__SLACK__MAX_BACKOFF_S", "0.05")
    return hooks


def _announced(hook: Webhook) -> list[str]:
    """The lead emails a channel's announcements name (each line: '• *name*… (email): tier …')."""
    return [email for m in hook.messages for email in re.findall(r"\(([^()\s]+@[^()\s]+)\): tier", m["text"])]


def test_new_tier_a_leads_are_announced_once_in_their_queues_channel(
    channels: dict[str, Webhook], config_dir: Path
) -> None:
    summary = qualify_signups()
    leads = export_leads(Store(load_settings().store_url))
    tier_a = leads.filter(tier="A")
    assert tier_a.height >= 2 and summary["notifications_failed"] == 0
    enterprise = sorted(tier_a.filter(queue="enterprise-na")["email"])
    others = sorted(tier_a.filter(pl.col("queue") != "enterprise-na")["email"])
    assert sorted(_announced(channels["enterprise-na"])) == enterprise
    assert sorted(_announced(channels["default"])) == others
    assert not channels["reviews"].messages and not channels["alerts"].messages
    sent = summary["notifications_sent"]

    # the same signups again (a backfill over their days): every lead is known, nothing is announced twice
    backfill_signups(start=date(2026, 11, 2), end=date(2026, 11, 3))
    assert sorted(_announced(channels["enterprise-na"]) + _announced(channels["default"])) == sorted(tier_a["email"])
    assert sum(len(h.messages) for h in channels.values()) == sent


def test_held_leads_are_announced_to_reviewers_and_shadow_mode_announces_no_lead(
    channels: dict[str, Webhook], config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    routing = config_dir / "routing.yaml"
    routing.write_text(
        routing.read_text().replace("accounts: {}\n", "accounts:\n  cloudforge.io: {approval_required: true}\n")
    )
    monkeypatch.setenv("LEADQ__RUN__MODE", "shadow")
    summary = qualify_signups()
    assert summary["held_for_review"] == 2
    assert not any(channels[r].messages for r in ("enterprise-na", "default"))  # shadow: no lead announced
    assert not channels["reviews"].messages  # nor anyone asked

    monkeypatch.setenv("LEADQ__RUN__MODE", "live")
    backfill_signups(start=date(2026, 11, 2), end=date(2026, 11, 3))
    [review] = channels["reviews"].messages
    assert "*2 leads wait for review*" in review["text"]
    assert "ben.taylor@cloudforge.io" in review["text"] and "account cloudforge.io requires approval" in review["text"]
    assert "ben.taylor@cloudforge.io" not in str([m["text"] for m in channels["enterprise-na"].messages])


def test_a_dead_letter_rate_above_the_threshold_alerts_in_slack_the_log_and_the_report(
    channels: dict[str, Webhook], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LEADQ__ALERTS__MAX_DEAD_LETTER_RATE", "0.05")
    summary = qualify_signups()
    [alert] = summary["alerts"]
    assert alert.startswith("dead-letter rate 6.7% (2 of 30 signups")
    [message] = channels["alerts"].messages
    assert "dead-letter rate 6.7%" in message["text"] and "leadq dead-letters list" in message["text"]
    report = Artifact.get("qualify-signups-report")
    assert report is not None and "## Alerts" in str(report.data) and "dead-letter rate 6.7%" in str(report.data)
    assert "ALERT qualify-signups run" in caplog.text


def test_a_failed_run_raises_an_alert(channels: dict[str, Webhook], tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.csv"
    with pytest.raises(SourceError):
        qualify_signups(source=str(missing))
    [message] = channels["alerts"].messages
    assert "qualify-signups run" in message["text"] and "failed" in message["text"]
    assert "nowhere.csv" in message["text"]


def test_with_slack_down_the_run_completes_and_counts_what_was_not_sent(
    channels: dict[str, Webhook], fake_http: FakeHttp
) -> None:
    for hook in channels.values():
        hook.gone = FakeSlack.removed()
    summary = qualify_signups()
    assert summary["leads"] == 27 and summary["notifications_sent"] == 0 and summary["notifications_failed"] >= 1
    assert Store(load_settings().store_url).read("select count(*) as n from notifications")["n"][0] == 0
