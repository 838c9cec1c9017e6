"""Speed to lead: who is past their SLA untouched, and the time to first touch per queue."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from connectors.crm.base import ACTIVITY_SCHEMA
from connectors.routing.sla import breach_alert, first_touch_report, sla_status
from connectors.store.sla import SLA_SCHEMA

NOW = datetime(2026, 12, 7, 12, 0)
SLA = {"A": 15, "B": 60}


def _owned(*rows: tuple[str, str, str, int, int | None]) -> pl.DataFrame:
    """(email, queue, tier, minutes since the owner got it, minutes after that to the store's touch)."""
    return pl.DataFrame(
        [
            (
                email,
                queue,
                "sdr@x",
                tier,
                NOW - timedelta(minutes=ago),
                None if t is None else NOW - timedelta(minutes=ago - t),
            )
            for email, queue, tier, ago, t in rows
        ],
        schema=SLA_SCHEMA,
        orient="row",
    )


def test_a_lead_untouched_past_its_tiers_sla_is_breached_and_one_within_it_is_not() -> None:
    owned = _owned(
        ("late@x", "na", "A", 20, None),  # 15 min SLA, 5 over
        ("fresh@x", "na", "B", 20, None),  # 60 min SLA, 40 left
        ("worked@x", "na", "A", 30, 10),  # touched after 10 min
        ("nurture@x", "nurture", "C", 500, None),  # no SLA for C
    )
    status = sla_status(owned, pl.DataFrame(schema=ACTIVITY_SCHEMA), SLA, NOW)
    by = {r["email"]: r for r in status.iter_rows(named=True)}
    assert set(by) == {"late@x", "fresh@x", "worked@x"}
    assert (by["late@x"]["breached"], by["late@x"]["overdue_minutes"]) == (True, 5)
    assert not by["fresh@x"]["breached"] and by["fresh@x"]["overdue_minutes"] is None
    assert (by["worked@x"]["breached"], by["worked@x"]["minutes_to_touch"]) == (False, 10.0)


def test_crm_activity_counts_only_after_the_owner_got_the_lead() -> None:
    owned = _owned(("a@x", "na", "A", 30, None), ("b@x", "na", "A", 30, None))
    activity = pl.DataFrame(
        {"email": ["a@x", "b@x"], "activity_at": [NOW - timedelta(minutes=40), NOW - timedelta(minutes=25)]},
        schema=ACTIVITY_SCHEMA,
    )
    status = sla_status(owned, activity, SLA, NOW).sort("email")
    assert status["breached"].to_list() == [True, False]  # a's activity was before a's owner had it
    assert status["new_touch"].to_list() == [False, True]
    assert status["minutes_to_touch"].to_list() == [None, 5.0]


def test_time_to_first_touch_per_queue() -> None:
    owned = _owned(
        ("a@x", "na", "A", 100, 5),
        ("b@x", "na", "A", 100, 20),  # touched, but late
        ("c@x", "na", "B", 100, 30),
        ("d@x", "na", "A", 100, None),
        ("e@x", "emea", "B", 10, None),
    )
    report = first_touch_report(sla_status(owned, pl.DataFrame(schema=ACTIVITY_SCHEMA), SLA, NOW))
    assert report.to_dicts() == [
        {
            "queue": "emea",
            "leads": 1,
            "touched": 0,
            "within_sla": 0,
            "open_breaches": 0,
            "median_minutes_to_touch": None,
            "p90_minutes_to_touch": None,
        },
        {
            "queue": "na",
            "leads": 4,
            "touched": 3,
            "within_sla": 2,
            "open_breaches": 1,
            "median_minutes_to_touch": 20.0,
            "p90_minutes_to_touch": 30.0,
        },
    ]


def test_an_alert_names_the_most_overdue_first_and_counts_the_rest() -> None:
    owned = _owned(*[(f"l{i}@x", "na", "A", 20 + i, None) for i in range(5)])
    breaches = sla_status(owned, pl.DataFrame(schema=ACTIVITY_SCHEMA), SLA, NOW)
    alert = breach_alert(breaches, 2)
    assert alert.startswith("5 qualified leads have no activity within their SLA: l4@x (tier A, sdr@x, na, 9 min over)")
    assert alert.endswith("l3@x (tier A, sdr@x, na, 8 min over); and 3 more")
