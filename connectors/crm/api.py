"""One CRM REST API under leadq's limits: a rolling-window rate limiter, retries that read the vendor's answer.

The vendor module decides what each response means (`Verdict`); `ServiceClient.send`
(connectors/http.py, the one retry loop) does the waiting, the retrying and the counting,
and this module turns the outcome into the CRM's errors, the same way for every CRM:

    ok        use the response
    wait      a short-window limit or a 5xx: wait (as long as the vendor asks, capped) and retry
    refresh   the token expired: get a new one and retry, once
    stop      a daily or org-wide limit: raise CrmStopped, the next run resumes
    refused   the request's content is invalid: raise BatchRefused (the caller isolates the bad inputs)
    fatal     anything else (bad token, missing permission): raise FatalError with the vendor's message
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

from connectors.crm.base import BatchRefused, CrmStopped
from connectors.errors import FatalError, RetriableError
from connectors.http import Classify, Retry, ServiceClient, ServicePolicy, ServiceWindow, Verdict
from connectors.settings import CrmApiSettings


class CrmApi:
    """A sequential client: CRM writes of one run go one request at a time, paced by the window."""

    def __init__(
        self,
        name: str,
        settings: CrmApiSettings,
        classify: Classify,
        auth: Callable[[bool], dict[str, str]],
        sleep: Callable[[float], None] = time.sleep,
        read_window: Callable[[requests.Response], ServiceWindow | None] | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.classify = classify
        self.auth = auth  # auth(refresh) -> headers; refresh=True asks for a new token
        self.sleep = sleep
        policy = ServicePolicy(
            timeout_s=settings.timeout_s,
            rate_per_s=0,
            max_concurrency=1,
            retries=0,  # `call` sets the CRM's own attempts (`[crm.*] attempts`)
            breaker_after=1_000_000,
            window_requests=settings.window_requests,
            window_s=settings.window_s + settings.window_margin_s,
        )
        self.client = ServiceClient(name, policy, headers={"Accept": "application/json"})
        self.read_window = read_window
        if read_window is not None:
            self.client.observe = self._learn
        self.waited_s = 0.0
        self.rate_limited = 0  # 429s (or the vendor's equivalent) the CRM answered

    @property
    def calls(self) -> int:
        return self.client.stats.calls

    def usage(self) -> dict[str, Any]:
        """The run summary's figures for this API: calls, 429s met, time spent backing off, and the
        rate window it kept (the vendor's, when lower than configured)."""
        window = self.client.window
        return {
            "crm_api_calls": self.calls,
            "crm_rate_limited": self.rate_limited,
            "crm_waited_s": round(self.waited_s, 1),
            "crm_window": f"{window.limit} per {window.seconds:g} s" if window.limit else "none",
        }

    def _learn(self, response: requests.Response) -> None:
        """Pace by what the vendor says of its window: its limit if lower, and what others used of it."""
        assert self.read_window is not None
        seen = self.read_window(response)
        if seen is not None:
            seconds = seen.seconds + self.settings.window_margin_s
            self.client.window.learn(seen.limit, seconds, seen.remaining, time.monotonic())

    def call(
        self, method: str, url: str, accept: tuple[int, ...] = (), authenticate: bool = True, **kwargs: Any
    ) -> requests.Response:
        """The response the vendor accepted (or whose status is in `accept`);
        raises CrmStopped, BatchRefused, FatalError or RetriableError.

        `authenticate=False` sends no token (the token request itself), with the same waits and retries."""

        def classify(response: requests.Response) -> Verdict:
            return Verdict("ok") if response.status_code in accept else self.classify(response)

        retry = Retry(self.settings.attempts, self.settings.max_backoff_s, self.sleep, announce=True)
        outcome = self.client.send(method, url, classify, retry, auth=self.auth if authenticate else None, **kwargs)
        self.waited_s += outcome.waited_s
        self.rate_limited += outcome.rate_limited
        verdict, response = outcome.verdict, outcome.response
        status = f"HTTP {response.status_code}: " if response is not None else ""
        if verdict.action == "ok" and response is not None:
            return response
        if verdict.action == "wait":
            raise RetriableError(
                f"{self.name}: gave up after {outcome.attempts} attempts: {method} {_path(url)}: {status}{verdict.why}"
            )
        if verdict.action == "stop":
            raise CrmStopped(f"{self.name}: {verdict.why}")
        if verdict.action == "refused":
            raise BatchRefused(verdict.why)
        raise FatalError(f"{self.name}: {method} {_path(url)}: {status}{verdict.why}")


def json_body(response: requests.Response) -> dict[str, Any]:
    """The answer's JSON object, or {} when it is not one (an HTML error page, a list)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
