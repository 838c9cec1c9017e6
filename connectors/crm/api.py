"""One CRM REST API under leadq's limits: a rolling-window rate limiter, retries that read the vendor's answer.

The vendor module decides what each response means (`Verdict`); this module does the
waiting, the retrying and the counting, the same way for every CRM:

    ok        use the response
    wait      a short-window limit or a 5xx: wait (as long as the vendor asks, capped) and retry
    refresh   the token expired: get a new one and retry, once
    stop      a daily or org-wide limit: raise CrmStopped, the next run resumes
    refused   the request's content is invalid: raise BatchRefused (the caller isolates the bad inputs)
    fatal     anything else (bad token, missing permission): raise FatalError with the vendor's message
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import requests

from connectors.crm.base import BatchRefused, CrmStopped
from connectors.errors import FatalError, RetriableError
from connectors.http import ServiceClient, ServicePolicy
from connectors.settings import CrmApiSettings

log = logging.getLogger("leadq.crm")


@dataclass(frozen=True)
class Verdict:
    action: Literal["ok", "wait", "refresh", "stop", "refused", "fatal"]
    why: str = ""
    wait_s: float | None = None  # for "wait": what the vendor asked for, if it said


Classify = Callable[[requests.Response], Verdict]


class CrmApi:
    """A sequential client: CRM writes of one run go one request at a time, paced by the window."""

    def __init__(
        self,
        name: str,
        settings: CrmApiSettings,
        classify: Classify,
        auth: Callable[[bool], dict[str, str]],
        sleep: Callable[[float], None] = time.sleep,
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
            retries=0,  # every retry goes through `call`, so each one is paced and counted
            breaker_after=1_000_000,
            window_requests=settings.window_requests,
            window_s=settings.window_s + settings.window_margin_s,
        )
        self.client = ServiceClient(name, policy, headers={"Accept": "application/json"})
        self.waited_s = 0.0
        self.rate_limited = 0  # 429s (or the vendor's equivalent) the CRM answered

    @property
    def calls(self) -> int:
        return self.client.stats.calls

    def usage(self) -> dict[str, Any]:
        """The run summary's figures for this API: calls, 429s met and time spent backing off."""
        return {
            "crm_api_calls": self.calls,
            "crm_rate_limited": self.rate_limited,
            "crm_waited_s": round(self.waited_s, 1),
        }

    def call(
        self, method: str, url: str, accept: tuple[int, ...] = (), authenticate: bool = True, **kwargs: Any
    ) -> requests.Response:
        """The response the vendor accepted (or whose status is in `accept`);
        raises CrmStopped, BatchRefused, FatalError or RetriableError.

        `authenticate=False` sends no token (the token request itself), with the same waits and retries."""
        refreshed = False
        last = ""
        extra_headers = kwargs.pop("headers", None) or {}
        for attempt in range(1, self.settings.attempts + 1):
            try:
                auth = self.auth(False) if authenticate else {}
                response = self.client.request(method, url, headers={**auth, **extra_headers}, **kwargs)
            except RetriableError as exc:
                last = str(exc)
                self._backoff(attempt, None, last)
                continue
            verdict = Verdict("ok") if response.status_code in accept else self.classify(response)
            if verdict.action == "ok":
                return response
            last = f"{method} {_path(url)}: HTTP {response.status_code}: {verdict.why}"
            if verdict.action == "wait":
                if response.status_code == 429:
                    self.rate_limited += 1
                self._backoff(attempt, verdict.wait_s, last)
            elif verdict.action == "refresh" and not refreshed:
                refreshed = True
                self.auth(True)
            elif verdict.action == "stop":
                raise CrmStopped(f"{self.name}: {verdict.why}")
            elif verdict.action == "refused":
                raise BatchRefused(verdict.why)
            else:
                raise FatalError(f"{self.name}: {last}")
        raise RetriableError(f"{self.name}: gave up after {self.settings.attempts} attempts: {last}")

    def _backoff(self, attempt: int, asked_s: float | None, why: str) -> None:
        if attempt >= self.settings.attempts:
            return
        exponential = min(30.0, 0.5 * 2 ** (attempt - 1)) * (1 + random.random() / 2)
        wait = min(self.settings.max_backoff_s, asked_s if asked_s is not None else exponential)
        log.warning("%s: %s; waiting %.1f s (attempt %d of %d)", self.name, why, wait, attempt, self.settings.attempts)
        self.waited_s += wait
        self.sleep(wait)


def json_body(response: requests.Response) -> dict[str, Any]:
    """The answer's JSON object, or {} when it is not one (an HTML error page, a list)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
