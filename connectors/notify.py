"""Slack incoming-webhook notifications: new leads in their queue's channel, pending reviews, alerts.

A route (a queue name, `reviews`, `alerts`) maps to the environment variable that holds its
webhook URL; a route with no webhook of its own uses `default`. The URL is a secret: it is
never logged, and errors name the route and the variable instead.

Slack answers 200 `ok`; 400 `invalid_payload` / `no_text`, 403 `invalid_token` /
`action_prohibited`, 404 `no_service`, 410 `channel_is_archived` are refusals (the message
is dropped, and a 403/404/410 webhook is not tried again this run); 429 carries
`Retry-After`; 5xx and network errors are retried with a capped backoff. A notification
never fails a run: what could not be sent is counted and logged.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import requests

from connectors.errors import ConfigError
from connectors.http import Retry, ServiceClient, ServicePolicy, Verdict, retry_after
from connectors.redact import secret
from connectors.settings import NotifySettings

log = logging.getLogger("leadq.notify")

MAX_LINES = 20  # leads listed in one message; the rest are counted
_DEAD_WEBHOOK = (403, 404, 410)


@dataclass
class Delivery:
    sent: int = 0
    failed: int = 0
    problems: list[str] = field(default_factory=list)


class SlackNotifier:
    """Posts messages to Slack incoming webhooks, one route at a time, with retries."""

    def __init__(self, settings: NotifySettings, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.settings = settings.slack
        self.webhooks: dict[str, tuple[str, str]] = {}  # route -> (variable, url)
        for route, variable in self.settings.webhooks.items():
            url = secret(env.get(variable, "").strip())
            if not url:
                raise ConfigError(
                    f"settings.toml: key 'notify.slack.webhooks.{route}': the Slack webhook URL is read from the "
                    f'environment variable {variable}, and it is not set (or set notify.kind = "off")'
                )
            if not url.startswith(("https://", "http://")):
                raise ConfigError(f"environment variable {variable} (notify.slack.webhooks.{route}): not a URL")
            self.webhooks[route] = (variable, url)
        self.delivery = Delivery()
        self._dead: set[str] = set()  # variables whose webhook Slack says is gone
        self._lock = threading.Lock()
        policy = ServicePolicy(timeout_s=self.settings.timeout_s, rate_per_s=0, retries=0, breaker_after=1_000_000)
        self._client = ServiceClient("slack", policy)

    def post(self, route: str, text: str) -> bool:
        """Send one mrkdwn message to the route's channel; True when Slack took it."""
        variable, url = self.webhooks.get(route) or self.webhooks.get("default") or ("", "")
        if not url:
            return self._failed(f"no webhook for route {route!r} and no default")
        where = f"Slack route {route!r} ({variable})"
        if variable in self._dead:
            return self._failed(f"{where}: not tried, Slack refused this webhook earlier in the run")
        body = {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}]}
        retry = Retry(self.settings.attempts, self.settings.max_backoff_s)
        outcome = self._client.send("POST", url, _classify, retry, json=body)
        if outcome.verdict.action == "ok":
            with self._lock:
                self.delivery.sent += 1
            return True
        if outcome.verdict.action == "wait":
            return self._failed(f"{where}: {outcome.verdict.why} after {outcome.attempts} attempts")
        if outcome.verdict.action == "stop":
            self._dead.add(variable)
        return self._failed(f"{where}: {outcome.verdict.why}; check the webhook in Slack")

    def _failed(self, problem: str) -> bool:
        log.warning("notification not sent: %s", problem)
        with self._lock:
            self.delivery.failed += 1
            self.delivery.problems.append(problem)
        return False

    def usage(self) -> dict[str, Any]:
        return {"notifications_sent": self.delivery.sent, "notifications_failed": self.delivery.failed}


def _classify(response: requests.Response) -> Verdict:
    """What Slack's answer to a webhook post means: 429 and 5xx wait, a gone webhook is not used again."""
    status = response.status_code
    if status == 200:
        return Verdict("ok")
    problem = f"HTTP {status} {response.text[:100].strip()!r}"
    if status == 429 or status >= 500:
        return Verdict("wait", problem, retry_after(response))
    return Verdict("stop" if status in _DEAD_WEBHOOK else "fatal", problem)


def build_notifier(settings: NotifySettings) -> SlackNotifier | None:
    """The configured notifier, or None when notifications are off."""
    return SlackNotifier(settings) if settings.kind == "slack" else None


def escape(text: object) -> str:
    """Slack mrkdwn needs &, < and > escaped; everything else is shown as written."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def lead_messages(leads: pl.DataFrame) -> dict[str, tuple[str, list[str]]]:
    """Per queue: one message announcing its leads (name, title, company, tier, score, owner, why),
    and the emails it covers."""
    messages: dict[str, tuple[str, list[str]]] = {}
    for (queue,), group in leads.sort("score", descending=True).group_by("queue", maintain_order=True):
        route = str(queue or "default")
        lines = [_lead_line(row) for row in group.head(MAX_LINES).iter_rows(named=True)]
        more = f"\n…and {group.height - MAX_LINES} more in `{escape(route)}`" if group.height > MAX_LINES else ""
        noun = "lead" if group.height == 1 else "leads"
        text = f"*{group.height} new {noun} for `{escape(route)}`*\n" + "\n".join(lines) + more
        messages[route] = (text, group["email"].to_list())
    return messages


def _lead_line(row: dict[str, Any]) -> str:
    name = " ".join(p for p in (row.get("first_name"), row.get("last_name")) if p) or row["email"]
    title = f", {row['job_title']}" if row.get("job_title") else ""
    company = row.get("company_name") or row.get("company_domain") or "unknown company"
    owner = f" → {row['owner']}" if row.get("owner") else ""
    why = str(row.get("reasons") or "").split("; ")[0]
    return (
        f"• *{escape(name)}*{escape(title)} at {escape(company)} ({escape(row['email'])}): tier {row['tier']}, "
        f"score {row['score']}{escape(owner)}. {escape(why)}"
    )


def review_message(held: pl.DataFrame) -> str:
    """Leads that now wait for a person, with why they are held."""
    lines = [
        f"• {escape(email)} ({escape(domain or '-')}), tier {tier}, score {score}: {escape(why)}"
        for email, domain, tier, score, why in held.select("email", "company_domain", "tier", "score", "hold_reason")
        .head(MAX_LINES)
        .iter_rows()
    ]
    more = f"\n…and {held.height - MAX_LINES} more" if held.height > MAX_LINES else ""
    noun = "lead waits" if held.height == 1 else "leads wait"
    return (
        f"*{held.height} {noun} for review*\n"
        + "\n".join(lines)
        + more
        + "\nDecide in the Prefect UI (review-leads) or with `leadq review list` / `leadq review approve`."
    )


def alert_message(title: str, details: Sequence[str]) -> str:
    return f":rotating_light: *leadq: {escape(title)}*\n" + "\n".join(f"• {escape(d)}" for d in details)
