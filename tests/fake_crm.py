"""What the fake CRM servers share: a server-side rate window, JSON answers, a 5xx storm switch.

The fakes themselves (`tests.fake_hubspot`, `tests.fake_salesforce`) run on `FakeHttp` (a real
local HTTP server) and keep their records in memory, so a test can count contacts, companies,
Leads and associations exactly, and see every call. Either one can be told to answer the next N
requests with a 5xx (a storm).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tests.fakes import FakeHttp, Reply, Seen

JSON = {"Content-Type": "application/json;charset=UTF-8"}


def reply(data: Any, status: int = 200, **headers: str) -> Reply:
    return Reply(status, json.dumps(data), {**JSON, **headers})


@dataclass
class Window:
    """A server-side rolling window: at most `limit` requests in any `seconds`."""

    limit: int = 100
    seconds: float = 10.0
    arrivals: deque[float] = field(default_factory=deque)
    rejected: int = 0

    def admit(self, at: float) -> bool:
        while self.arrivals and self.arrivals[0] <= at - self.seconds:
            self.arrivals.popleft()
        if len(self.arrivals) >= self.limit:
            self.rejected += 1
            return False
        self.arrivals.append(at)
        return True


def sustained_share(times: list[float], limit: int, seconds: float) -> float:
    """Requests per complete window, averaged, as a share of the limit (1.0 = every slot used)."""
    if not times:
        return 0.0
    start, end = times[0], times[-1]
    windows = int((end - start) // seconds)
    if windows < 1:
        return 0.0
    used = sum(1 for t in times if t < start + windows * seconds)
    return used / (windows * limit)


class FakeCrm:
    def __init__(self, fake: FakeHttp, window: Window | None) -> None:
        self.fake = fake
        self.window = window
        self.lock = threading.Lock()
        self.storm: list[int] = []  # statuses to answer the next requests with
        self.storm_on = ""  # only requests whose path contains this get the storm ("": every request)
        self.requests: list[Seen] = []  # every request that reached the API (after auth)
        self.max_inputs = 0
        fake.fallback = self._serve

    def _serve(self, seen: Seen) -> Reply:
        with self.lock:
            return self.handle(seen)

    def handle(self, seen: Seen) -> Reply:
        raise NotImplementedError

    def api_times(self) -> list[float]:
        return [s.at for s in self.requests]


def wait_until(check: Any, timeout_s: float = 5.0) -> None:
    end = time.monotonic() + timeout_s
    while not check() and time.monotonic() < end:
        time.sleep(0.01)
