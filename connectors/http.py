"""The one way leadq talks HTTP: a session per outside service.

Each `ServiceClient` has explicit timeouts, a requests-per-second limit, a cap on
requests in flight, retries on 429 and 5xx that honour `Retry-After` (capped), a
circuit breaker, a credit account with an optional per-run budget, and a total
deadline per call (`Deadline`: connect, redirects, body and retries together).
Every attempt, retries included, goes through the pacer and is counted.

    LeadqError
    ├── RetriableError
    │   ├── ProviderSkipped      breaker open, budget spent or time budget spent: skip the service this run
    │   └── DeadlineExceeded     the call's total deadline passed
    └── FatalError               a 4xx other than 429: the request itself is wrong
        └── EgressRefused        (connectors.egress) the URL or its address must not be fetched
"""

from __future__ import annotations

import logging
import random
import threading
import time
from bisect import insort
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Literal

import requests
from requests.adapters import HTTPAdapter

from connectors.egress import PinnedAdapter, Resolver
from connectors.errors import FatalError, RetriableError

if TYPE_CHECKING:
    from connectors.settings import ServiceSettings

RETRY_STATUSES = (429, 500, 502, 503, 504)
log = logging.getLogger("leadq.http")


class ProviderSkipped(RetriableError):
    """The service is not called again this run (circuit open, budget spent, offline)."""


class DeadlineExceeded(RetriableError):
    """One call's total deadline passed (connect, redirects, body and retries together)."""


@dataclass
class Deadline:
    """A total time allowance for one provider call; 0 seconds means none."""

    seconds: float
    started: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        return self.seconds - (time.monotonic() - self.started) if self.seconds else float("inf")

    def exclude(self, seconds: float) -> None:
        """Time spent queueing for leadq's own limits (pacer, concurrency) is not the service's."""
        self.started += seconds

    def bound(self, timeout: float, what: str) -> float:
        """`timeout` cut to what is left; DeadlineExceeded when nothing is."""
        left = self.remaining()
        if left <= 0:
            raise DeadlineExceeded(f"{what}: the deadline of {self.seconds:g} s passed")
        return min(timeout, left)


@dataclass(frozen=True)
class Verdict:
    """What one answer of a service means: the vendor module (or `classify_get`) says, `send` acts.

    ok       use the response
    wait     a short-window limit, a 5xx or a network error: wait (as long as asked, capped) and retry
    refresh  the credentials expired: get new ones and retry, once
    stop     a daily or account-wide limit: give up for this run
    refused  the request's content is invalid (the caller isolates the bad inputs)
    fatal    anything else: the request itself is wrong
    """

    action: Literal["ok", "wait", "refresh", "stop", "refused", "fatal"]
    why: str = ""
    wait_s: float | None = None  # for "wait": what the service asked for, if it said


Classify = Callable[[requests.Response], Verdict]


@dataclass(frozen=True)
class Retry:
    """How many attempts one request gets, and how long it may wait between them."""

    attempts: int
    max_wait_s: float
    sleep: Callable[[float], None] = time.sleep
    announce: bool = False  # log each wait as a warning (the CRM's waits are worth a line; a website's are not)

    def wait(self, attempt: int, asked_s: float | None) -> float:
        """What the service asked for, else exponential backoff with jitter; never more than `max_wait_s`."""
        backoff = 0.5 * 2 ** (attempt - 1) * (1 + random.random() / 2)
        return min(self.max_wait_s, asked_s if asked_s is not None else backoff)


@dataclass
class Outcome:
    """How one request ended: the last answer (None if the network failed every time) and what it meant."""

    response: requests.Response | None = None
    verdict: Verdict = field(default_factory=lambda: Verdict("wait", "not sent"))
    attempts: int = 0
    waited_s: float = 0.0
    rate_limited: int = 0  # 429s met on the way


def classify_get(response: requests.Response) -> Verdict:
    """A plain GET: 429 and 5xx are worth another try (honouring Retry-After), 404 is an answer, other 4xx fatal."""
    status = response.status_code
    if status in RETRY_STATUSES:
        response.close()
        return Verdict("wait", f"HTTP {status}", retry_after(response))
    if 400 <= status < 500 and status != 404:
        return Verdict("fatal", f"HTTP {status}: {_head(response)}")
    return Verdict("ok")


def _head(response: requests.Response, limit: int = 300) -> str:
    """The start of an error body, read no further: a stranger's 4xx page may be endless."""
    try:
        head = next(response.iter_content(limit), b"")
    except (requests.RequestException, OSError):
        head = b""
    finally:
        response.close()
    return (head if isinstance(head, bytes) else str(head).encode())[:limit].decode("utf-8", errors="replace")


@dataclass
class ServicePolicy:
    """Limits for one outside service; every number is a setting."""

    timeout_s: float = 10.0
    rate_per_s: float = 5.0
    max_concurrency: int = 4
    retries: int = 3
    max_retry_after_s: float = 30.0
    breaker_after: int = 5
    cost_per_call: float = 0.0
    budget: float = 0.0  # credits per run; 0 means no budget
    window_requests: int = 0  # at most this many requests start in any window_s (0: no window)
    window_s: float = 10.0
    deadline_s: float = 0.0  # total seconds for one call, retries included; 0 means none
    time_budget_s: float = 0.0  # seconds this service may take in one run; 0 means no budget


def service_policy(s: ServiceSettings) -> ServicePolicy:
    """The limits of one service as its settings section gives them."""
    return ServicePolicy(
        timeout_s=s.timeout_s,
        rate_per_s=s.rate_per_s,
        max_concurrency=s.max_concurrency,
        retries=s.retries,
        max_retry_after_s=s.max_retry_after_s,
        breaker_after=s.breaker_after,
        cost_per_call=s.cost_per_call,
        budget=s.budget,
        deadline_s=s.deadline_s,
        time_budget_s=s.time_budget_s,
    )


@dataclass(frozen=True)
class ServiceWindow:
    """What a service says about its rate window in a response."""

    limit: int  # requests per window
    seconds: float
    remaining: int | None  # left in the current window, counting every client of the account


class RollingWindow:
    """At most `limit` requests start in any `seconds` (limit 0: no limit), across this process's threads.

    `learn` takes what the service says about its window (e.g. HubSpot's X-HubSpot-RateLimit-*
    headers): a lower limit than configured is adopted, and requests the service counted that this
    window did not make (other processes, other apps on the same account) take slots here too."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self._starts: deque[float] = deque()
        self._lock = threading.Lock()

    def reserve(self, earliest: float) -> float:
        """Book the next slot at or after `earliest` (time.monotonic()); returns its start."""
        with self._lock:
            if not self.limit:
                return earliest
            self._expire(earliest)
            start = earliest
            if len(self._starts) >= self.limit:
                start = max(start, self._starts[-self.limit] + self.seconds)
            insort(self._starts, start)
            return start

    def learn(self, limit: int, seconds: float, remaining: int | None, now: float) -> None:
        """The service's window: `limit` requests per `seconds`, `remaining` of them left now."""
        with self._lock:
            if limit > 0 and (not self.limit or limit < self.limit):
                self.limit, self.seconds = limit, seconds
            if remaining is None or not self.limit:
                return
            self._expire(now)
            counted = sum(1 for t in self._starts if t <= now)
            others = min(self.limit, limit) - remaining - counted
            for _ in range(max(others, 0)):  # slots the service saw used that this window did not book
                insort(self._starts, now)

    def _expire(self, now: float) -> None:
        while self._starts and self._starts[0] <= now - self.seconds:
            self._starts.popleft()


@dataclass
class ServiceStats:
    calls: int = 0
    cost: float = 0.0
    failures: int = 0
    skipped: int = 0
    time_s: float = 0.0  # wall time spent in this service's calls this run (summed over threads)
    open_reason: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class ServiceClient:
    """A requests session for one service, safe to share between the threads of a batch.

    With `pinned=True` (strangers' URLs) every connection resolves its host once and
    connects only to an address the egress policy allows (`connectors.egress`)."""

    def __init__(
        self,
        name: str,
        policy: ServicePolicy,
        headers: dict[str, str] | None = None,
        pinned: bool = False,
        allow_private_networks: bool = False,
        resolve: Resolver | None = None,
    ) -> None:
        self.name = name
        self.policy = policy
        self.stats = ServiceStats()
        self._session = requests.Session()
        self._session.headers.update({"User-Agent": "leadq/0.1 (+https://github.com/leadq)", **(headers or {})})
        pool = max(policy.max_concurrency, 1)
        adapter: HTTPAdapter
        if pinned:
            self._session.trust_env = False  # a proxy would resolve the host instead of the pinned connection
            adapter = PinnedAdapter(allow_private_networks, resolve, pool_maxsize=pool, max_retries=0)
        else:
            adapter = HTTPAdapter(pool_maxsize=pool, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._in_flight = threading.BoundedSemaphore(pool)
        self._pace_lock = threading.Lock()
        self._next_slot = 0.0
        self.window = RollingWindow(policy.window_requests, policy.window_s)
        self.observe: Callable[[requests.Response], None] | None = None  # sees every response (e.g. rate headers)

    def get(self, url: str, deadline: Deadline | None = None, **kwargs: Any) -> requests.Response:
        """GET with the service's limits and retries; 404 is returned, other 4xx raise FatalError."""
        retry = Retry(self.policy.retries + 1, self.policy.max_retry_after_s)
        outcome = self.send("GET", url, classify_get, retry, deadline, **kwargs)
        if outcome.verdict.action == "wait":
            self._failed(outcome.verdict.why)
            raise RetriableError(f"{self.name}: {url}: {outcome.verdict.why} after {outcome.attempts} attempt(s)")
        self._succeeded()
        if outcome.verdict.action != "ok" or outcome.response is None:
            raise FatalError(f"{self.name}: {url}: {outcome.verdict.why}")
        return outcome.response

    def send(
        self,
        method: str,
        url: str,
        classify: Classify,
        retry: Retry,
        deadline: Deadline | None = None,
        auth: Callable[[bool], dict[str, str]] | None = None,
        **kwargs: Any,
    ) -> Outcome:
        """One logical request, the one retry loop of leadq: attempts until the service's answer is not
        "wait" (a 429, a 5xx, a network error), each attempt admitted, paced and counted; a wait honours
        what the service asked for, capped, and never runs past the deadline. `auth(refresh)` gives the
        headers; a "refresh" answer asks it for new ones, once."""
        deadline = deadline or Deadline(self.policy.deadline_s)
        headers = kwargs.pop("headers", None) or {}
        outcome = Outcome()
        refreshed = False
        for attempt in range(1, retry.attempts + 1):
            outcome.attempts = attempt
            try:
                sent = {**(auth(False) if auth else {}), **headers}
                outcome.response = self._send(method, url, deadline, headers=sent, **kwargs)
            except (ProviderSkipped, DeadlineExceeded):
                raise
            except RetriableError as exc:
                outcome.response, outcome.verdict = None, Verdict("wait", str(exc).removeprefix(f"{self.name}: "))
            else:
                outcome.verdict = classify(outcome.response)
            if outcome.verdict.action == "refresh" and auth is not None and not refreshed:
                refreshed = True
                auth(True)
                continue
            if outcome.verdict.action != "wait":
                return outcome
            if outcome.response is not None and outcome.response.status_code == 429:
                outcome.rate_limited += 1
            wait = retry.wait(attempt, outcome.verdict.wait_s)
            if attempt == retry.attempts or wait >= deadline.remaining():
                break
            if retry.announce:
                log.warning(
                    "%s: %s; waiting %.1f s (attempt %d of %d)",
                    self.name,
                    outcome.verdict.why,
                    wait,
                    attempt,
                    retry.attempts,
                )
            retry.sleep(wait)
            outcome.waited_s += wait
        return outcome

    @contextmanager
    def timed(self) -> Iterator[None]:
        """Count the wall time of a whole provider call (several requests, the body) against the run."""
        started = time.monotonic()
        try:
            yield
        finally:
            with self.stats._lock:
                self.stats.time_s += time.monotonic() - started

    def charge(self, credits: float | None = None) -> None:
        """Book the credits of one billable call."""
        with self.stats._lock:
            self.stats.cost += self.policy.cost_per_call if credits is None else credits

    def skip(self, reason: str) -> None:
        """Stop calling this service for the rest of the run."""
        with self.stats._lock:
            self.stats.open_reason = self.stats.open_reason or reason

    def _send(self, method: str, url: str, deadline: Deadline, **kwargs: Any) -> requests.Response:
        """One attempt: admitted, paced, counted, and bounded by what is left of the deadline."""
        self._admit()
        queued = time.monotonic()
        with self._in_flight:
            self._pace()
            deadline.exclude(time.monotonic() - queued)
            timeout = deadline.bound(self.policy.timeout_s, f"{self.name}: {method} {url}")
            with self.stats._lock:
                self.stats.calls += 1
            try:
                response = self._session.request(method, url, timeout=timeout, **kwargs)
            except requests.RequestException as exc:
                raise RetriableError(f"{self.name}: {method} {url}: {_root_cause(exc)}") from exc
            if self.observe is not None:
                self.observe(response)
            return response

    def _admit(self) -> None:
        with self.stats._lock:
            if not self.stats.open_reason:
                budget, time_budget = self.policy.budget, self.policy.time_budget_s
                if budget and self.stats.cost + self.policy.cost_per_call > budget:
                    self.stats.open_reason = f"credit budget of {budget:g} spent"
                elif time_budget and self.stats.time_s >= time_budget:
                    self.stats.open_reason = f"time budget of {time_budget:g} s spent"
            if self.stats.open_reason:
                self.stats.skipped += 1
                raise ProviderSkipped(f"{self.name}: skipped for this run ({self.stats.open_reason})")

    def _pace(self) -> None:
        """At most `rate_per_s` requests start per second, and `window_requests` per rolling window."""
        with self._pace_lock:
            now = time.monotonic()
            wait = max(self._next_slot - now, 0.0) if self.policy.rate_per_s > 0 else 0.0
            if self.policy.rate_per_s > 0:
                self._next_slot = max(now, self._next_slot) + 1.0 / self.policy.rate_per_s
            wait = self.window.reserve(now + wait) - now
        if wait > 0:
            time.sleep(wait)

    def _failed(self, what: str) -> None:
        with self.stats._lock:
            self.stats.failures += 1
            if self.stats.failures >= self.policy.breaker_after and not self.stats.open_reason:
                self.stats.open_reason = f"{self.stats.failures} failures in a row, last: {what}"

    def _succeeded(self) -> None:
        with self.stats._lock:
            self.stats.failures = 0


def retry_after(response: requests.Response) -> float | None:
    """Seconds the service asked for in `Retry-After` (a number or an HTTP date), if it did."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _root_cause(exc: BaseException) -> str:
    """'ReadTimeoutError: … Read timed out.' rather than requests' generic ConnectionError."""
    inner: BaseException = exc
    while True:
        reason = getattr(inner, "reason", None)
        if isinstance(reason, BaseException) and reason is not inner:
            inner = reason
        elif (
            inner.__context__ is not None
            and inner.__context__ is not inner
            and isinstance(inner, requests.RequestException)
        ):
            inner = inner.__context__
        else:
            break
    return f"{type(inner).__name__}: {str(inner)[:200]}"
