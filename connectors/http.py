"""The one way leadq talks HTTP: a session per outside service.

Each `ServiceClient` has explicit timeouts, a requests-per-second limit, a cap on
requests in flight, retries on 429 and 5xx that honour `Retry-After` (capped), a
circuit breaker, and a credit account with an optional per-run budget.

    LeadqError
    ├── RetriableError
    │   └── ProviderSkipped      breaker open or budget spent: skip the service this run
    └── FatalError               a 4xx other than 429: the request itself is wrong
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from connectors.errors import FatalError, RetriableError

RETRY_STATUSES = (429, 500, 502, 503, 504)


class ProviderSkipped(RetriableError):
    """The service is not called again this run (circuit open, budget spent, offline)."""


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


@dataclass
class ServiceStats:
    calls: int = 0
    cost: float = 0.0
    failures: int = 0
    skipped: int = 0
    open_reason: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class _CappedRetry(Retry):
    """urllib3's retry, with `Retry-After` honoured up to a cap so one header cannot stall a run."""

    cap_s: float = 30.0

    def get_retry_after(self, response: Any) -> float | None:
        value = super().get_retry_after(response)
        return None if value is None else min(value, self.cap_s)

    def new(self, **kw: Any) -> _CappedRetry:
        retry = super().new(**kw)
        retry.cap_s = self.cap_s
        return retry


class ServiceClient:
    """A requests session for one service, safe to share between the threads of a batch."""

    def __init__(self, name: str, policy: ServicePolicy, headers: dict[str, str] | None = None) -> None:
        self.name = name
        self.policy = policy
        self.stats = ServiceStats()
        self._session = requests.Session()
        self._session.headers.update({"User-Agent": "leadq/0.1 (+https://github.com/leadq)", **(headers or {})})
        retry = _CappedRetry(
            total=policy.retries,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "HEAD"}),
            backoff_factor=0.5,
            respect_retry_after_header=True,
            raise_on_status=False,
            redirect=False,
        )
        retry.cap_s = policy.max_retry_after_s
        adapter = HTTPAdapter(max_retries=retry, pool_maxsize=max(policy.max_concurrency, 1))
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._in_flight = threading.BoundedSemaphore(max(policy.max_concurrency, 1))
        self._pace_lock = threading.Lock()
        self._next_slot = 0.0
        self._window: deque[float] = deque()

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        """GET with the service's limits; 404 is returned, other 4xx raise FatalError."""
        self._admit()
        with self._in_flight:
            self._pace()
            try:
                response = self._session.get(url, timeout=self.policy.timeout_s, **kwargs)
            except requests.RequestException as exc:
                cause = _root_cause(exc)
                self._failed(cause)
                raise RetriableError(f"{self.name}: {url}: {cause}") from exc
        with self.stats._lock:
            self.stats.calls += 1
        if response.status_code in RETRY_STATUSES:
            self._failed(f"HTTP {response.status_code}")
            raise RetriableError(f"{self.name}: {url}: HTTP {response.status_code} after {self.policy.retries} retries")
        self._succeeded()
        if 400 <= response.status_code < 500 and response.status_code != 404:
            raise FatalError(f"{self.name}: {url}: HTTP {response.status_code}: {response.text[:300]}")
        return response

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One request under the service's limits; the caller reads the status (no retry on it)."""
        self._admit()
        with self._in_flight:
            self._pace()
            try:
                response = self._session.request(method, url, timeout=self.policy.timeout_s, **kwargs)
            except requests.RequestException as exc:
                cause = _root_cause(exc)
                self._failed(cause)
                raise RetriableError(f"{self.name}: {method} {url}: {cause}") from exc
        with self.stats._lock:
            self.stats.calls += 1
        return response

    def succeeded(self) -> None:
        self._succeeded()

    def failed(self, what: str) -> None:
        self._failed(what)

    def charge(self, credits: float | None = None) -> None:
        """Book the credits of one billable call."""
        with self.stats._lock:
            self.stats.cost += self.policy.cost_per_call if credits is None else credits

    def skip(self, reason: str) -> None:
        """Stop calling this service for the rest of the run."""
        with self.stats._lock:
            self.stats.open_reason = self.stats.open_reason or reason

    def _admit(self) -> None:
        with self.stats._lock:
            if self.stats.open_reason:
                self.stats.skipped += 1
                raise ProviderSkipped(f"{self.name}: skipped for this run ({self.stats.open_reason})")
            budget = self.policy.budget
            if budget and self.stats.cost + self.policy.cost_per_call > budget:
                self.stats.open_reason = f"credit budget of {budget:g} spent"
                self.stats.skipped += 1
                raise ProviderSkipped(f"{self.name}: skipped for this run ({self.stats.open_reason})")

    def _pace(self) -> None:
        """At most `rate_per_s` requests start per second, and `window_requests` per rolling window."""
        with self._pace_lock:
            now = time.monotonic()
            wait = self._next_slot - now if self.policy.rate_per_s > 0 else 0.0
            if self.policy.rate_per_s > 0:
                self._next_slot = max(now, self._next_slot) + 1.0 / self.policy.rate_per_s
            if self.policy.window_requests:
                start = now + max(wait, 0.0)
                while self._window and self._window[0] <= start - self.policy.window_s:
                    self._window.popleft()
                if len(self._window) >= self.policy.window_requests:
                    start = self._window[0] + self.policy.window_s
                    wait = max(wait, start - now)
                    self._window.popleft()
                self._window.append(start)
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
