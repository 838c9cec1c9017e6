"""The Slack notifier against a fake incoming-webhook service: delivery, retries, refusals, secrets."""

from __future__ import annotations

import logging

import polars as pl
import pytest

from connectors.errors import ConfigError
from connectors.notify import MAX_LINES, SlackNotifier, lead_messages, review_message
from connectors.settings import NotifySettings, load_settings
from tests.fake_slack import FakeSlack, Webhook
from tests.fakes import FakeHttp


def _slack_settings(**slack: object) -> NotifySettings:
    """leadq's own notify settings with Slack on, and these Slack settings changed."""
    notify = load_settings({}).notify
    return notify.model_copy(update={"kind": "slack", "slack": notify.slack.model_copy(update=slack)})


def _notifier(slack: FakeSlack, **hooks: Webhook) -> SlackNotifier:
    settings = _slack_settings(webhooks={route: f"HOOK_{route.upper()}" for route in hooks}, max_backoff_s=0.05)
    return SlackNotifier(settings, {f"HOOK_{route.upper()}": slack.url(hook) for route, hook in hooks.items()})


@pytest.fixture
def slack(fake_http: FakeHttp) -> FakeSlack:
    return FakeSlack(fake_http)


def test_a_message_reaches_its_route_and_others_fall_back_to_default(slack: FakeSlack) -> None:
    sales, default = slack.webhook("#enterprise"), slack.webhook("#leads")
    notifier = _notifier(slack, **{"enterprise-na": sales, "default": default})
    assert notifier.post("enterprise-na", "*1 new lead* for <you> & me")
    assert notifier.post("inbound-row", "another")
    assert slack.texts(sales) == ["*1 new lead* for <you> & me"] and slack.texts(default) == ["another"]
    assert sales.messages[0]["blocks"][0]["text"]["type"] == "mrkdwn"
    assert notifier.usage() == {"notifications_sent": 2, "notifications_failed": 0}


def test_429_and_5xx_are_retried_until_slack_takes_the_message(slack: FakeSlack) -> None:
    hook = slack.webhook("#leads")
    hook.script = [slack.rate_limited(30), slack.server_error(), slack.server_error()]
    notifier = _notifier(slack, default=hook)
    assert notifier.post("default", "hello")
    assert hook.hits == 4 and slack.texts(hook) == ["hello"]


def test_a_webhook_that_keeps_failing_gives_up_after_the_attempts_and_the_run_goes_on(slack: FakeSlack) -> None:
    hook = slack.webhook("#leads")
    hook.script = [slack.server_error()] * 10
    notifier = _notifier(slack, default=hook)
    assert not notifier.post("default", "hello")
    assert hook.hits == 4  # [notify.slack] attempts
    assert notifier.delivery.failed == 1 and "HTTP 500 'rollup_error' after 4 attempts" in notifier.delivery.problems[0]


@pytest.mark.parametrize("answer", [FakeSlack.archived(), FakeSlack.removed()])
def test_a_gone_webhook_is_not_retried_nor_tried_again_and_the_url_is_never_logged(
    slack: FakeSlack, answer: object, caplog: pytest.LogCaptureFixture
) -> None:
    hook = slack.webhook("#old")
    hook.gone = answer  # type: ignore[assignment]
    notifier = _notifier(slack, default=hook)
    with caplog.at_level(logging.WARNING, "leadq.notify"):
        assert not notifier.post("default", "one")
        assert not notifier.post("default", "two")
    assert hook.hits == 1
    problem = notifier.delivery.problems[0]
    assert "Slack route 'default' (HOOK_DEFAULT)" in problem and (
        "channel_is_archived" in problem or "no_service" in problem
    )
    assert "not tried" in notifier.delivery.problems[1]
    assert hook.path not in caplog.text and "secret" not in caplog.text


def test_a_message_slack_refuses_is_dropped_without_retry(slack: FakeSlack) -> None:
    hook = slack.webhook("#leads")
    notifier = _notifier(slack, default=hook)
    assert not notifier.post("default", "   ")  # Slack: invalid_blocks (a blank section)
    assert hook.hits == 1 and "HTTP 400 'invalid_blocks'" in notifier.delivery.problems[0]
    assert notifier.post("default", "the webhook still works")


def test_an_unreachable_webhook_fails_without_showing_its_url(caplog: pytest.LogCaptureFixture) -> None:
    settings = _slack_settings(attempts=2, max_backoff_s=0.01, timeout_s=1)
    notifier = SlackNotifier(settings, {"SLACK_WEBHOOK_URL": "http://127.0.0.1:9/services/T1/B1/topsecret"})
    with caplog.at_level(logging.WARNING, "leadq.notify"):
        assert not notifier.post("default", "hello")
    assert "ConnectionError" in caplog.text and "topsecret" not in caplog.text


def test_a_missing_webhook_variable_is_a_config_error_naming_key_and_variable() -> None:
    settings = _slack_settings(webhooks={"alerts": "SLACK_ALERTS_URL"})
    with pytest.raises(ConfigError, match=r"notify\.slack\.webhooks\.alerts.*SLACK_ALERTS_URL"):
        SlackNotifier(settings, {})


def test_lead_messages_one_per_queue_best_first_with_the_rest_counted() -> None:
    rows = [
        {
            "email": f"p{i}@acme.com",
            "first_name": "P",
            "last_name": str(i),
            "job_title": "VP Sales",
            "company_name": "Acme <Inc>",
            "company_domain": "acme.com",
            "tier": "A",
            "score": 80 + i % 10,
            "queue": "enterprise-na" if i < 25 else "inbound-na",
            "owner": "avery@example.com",
            "reasons": "industry software (+20); size 1000+ (+15)",
        }
        for i in range(27)
    ]
    messages = lead_messages(pl.DataFrame(rows))
    text, emails = messages["enterprise-na"]
    assert len(emails) == 25 and sorted(messages["inbound-na"][1]) == ["p25@acme.com", "p26@acme.com"]
    assert text.startswith("*25 new leads for `enterprise-na`*") and f"…and {25 - MAX_LINES} more" in text
    assert text.count("• ") == MAX_LINES and "score 89" in text.splitlines()[1]
    assert "Acme &lt;Inc&gt;" in text and "→ avery@example.com. industry software (+20)" in text


def test_review_message_says_why_each_lead_is_held() -> None:
    held = pl.DataFrame(
        {
            "email": ["a@globex.com"],
            "company_domain": ["globex.com"],
            "tier": ["A"],
            "score": [91],
            "hold_reason": ["account globex.com requires approval"],
        }
    )
    text = review_message(held)
    assert "*1 lead waits for review*" in text and "account globex.com requires approval" in text
    assert "leadq review list" in text
