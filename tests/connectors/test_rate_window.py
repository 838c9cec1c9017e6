"""Pacing by the vendor's own window: a lower limit is adopted, and other apps' requests take slots."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from connectors.crm.hubspot import HubSpotCrm
from connectors.http import RollingWindow
from connectors.settings import load_settings
from tests.fake_crm import Window
from tests.fake_hubspot import FakeHubSpot
from tests.fakes import FakeHttp


def test_a_window_adopts_a_lower_limit_and_books_what_others_used() -> None:
    window = RollingWindow(limit=100, seconds=10.0)
    window.learn(limit=20, seconds=2.0, remaining=None, now=0.0)
    window.learn(limit=200, seconds=1.0, remaining=None, now=0.0)  # a higher one is not taken
    assert (window.limit, window.seconds) == (20, 2.0)
    assert [window.reserve(0.0) for _ in range(20)] == [0.0] * 20
    assert window.reserve(0.0) == 2.0  # the 21st waits for the first to leave the window

    shared = RollingWindow(limit=10, seconds=1.0)
    assert [shared.reserve(0.0) for _ in range(2)] == [0.0, 0.0]
    shared.learn(limit=10, seconds=1.0, remaining=3, now=0.1)  # the account used 7: 5 were others'
    assert [shared.reserve(0.1) for _ in range(3)] == [0.1] * 3
    assert shared.reserve(0.1) == 1.0
    shared.learn(limit=10, seconds=1.0, remaining=0, now=0.2)  # already counted: nothing more to book
    assert shared.reserve(0.2) == 1.0


@pytest.fixture
def portal(config_dir: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHubSpot]:
    with FakeHttp().running() as server:
        fake = FakeHubSpot(server, window=Window(limit=20, seconds=1.0))
        monkeypatch.setenv("LEADQ__CRM__HUBSPOT__BASE_URL", server.url)
        monkeypatch.setenv("LEADQ__CRM__HUBSPOT__WINDOW_S", "1.0")
        monkeypatch.setenv("LEADQ__CRM__HUBSPOT__WINDOW_MARGIN_S", "0.05")
        monkeypatch.setenv("LEADQ__CRM__HUBSPOT__MAX_BACKOFF_S", "2")
        yield fake


def _rejections_after_another_app(portal: FakeHubSpot) -> int:
    """Another app of the account has just used 15 of its 20 requests a second; then leadq makes 20 calls."""
    crm = HubSpotCrm(load_settings().crm.hubspot, portal.token)
    for _ in range(15):
        requests.get(f"{crm.base}/crm/v3/owners", headers={"Authorization": f"Bearer {portal.token}"}, timeout=5)
    for _ in range(20):
        crm.api.call("GET", f"{crm.base}/crm/v3/owners")
    return crm.api.rate_limited


def test_what_another_app_used_of_the_window_is_left_to_it(portal: FakeHubSpot) -> None:
    """The account's window is shared by every app: HubSpot's Remaining header says what the others
    used, and leadq waits for the window instead of meeting a 429. Without the header, it meets one."""
    assert _rejections_after_another_app(portal) == 0
    time.sleep(1.1)
    portal.rate_headers = False
    assert _rejections_after_another_app(portal) == 1
