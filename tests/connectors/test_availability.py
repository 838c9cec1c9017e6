"""Capacity and availability in routing: caps, away days, working hours, calendars, waiting leads."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from connectors.errors import ConfigError
from connectors.routing import availability, load_routing, rotation, route_leads
from connectors.routing.availability import LOAD_SCHEMA
from connectors.routing.calendars import Calendars, build_calendars
from connectors.routing.config import RoutingConfig
from connectors.routing.turns import take_turns
from connectors.settings.pipeline import RoutingSettings
from tests.fakes import FakeHttp, Reply

NO_ASSIGNMENTS = pl.DataFrame(schema={"email": pl.String, "queue": pl.String, "owner": pl.String})
NO_LOADS = pl.DataFrame(schema=LOAD_SCHEMA)
MONDAY_NOON = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _config(queue: dict[str, Any], **extra: Any) -> RoutingConfig:
    return RoutingConfig.model_validate(
        {
            "rules": [{"tiers": ["A"], "queue": "na"}],
            "fallback_queue": "nurture",
            "queues": {"na": queue, "nurture": {"sdrs": []}},
            **extra,
        }
    )


def _leads(n: int, start: int = 0, companies: bool = False) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "email": [f"l{i}@x.io" for i in range(start, start + n)],
            "tier": ["A"] * n,
            "employees": [50] * n,
            "company_domain": [f"c{i}.io" if companies else None for i in range(start, start + n)],
        },
        schema_overrides={"company_domain": pl.String},
    )


def _walk(cycle: list[str], position: int, count: int, left: dict[str, Any], gone: set[str]) -> tuple[list[str], int]:
    """The rotation one slot at a time, as a person would hand leads out: the reference for take_turns."""
    owners: list[str] = []
    while len(owners) < count and any(s not in gone and left.get(s) != 0 for s in cycle):
        sdr, position = cycle[position], (position + 1) % len(cycle)
        if sdr in gone or left.get(sdr) == 0:
            continue
        owners.append(sdr)
        if left.get(sdr) is not None:
            left[sdr] -= 1
    return owners, position


def test_turns_handed_out_in_whole_periods_match_a_slot_by_slot_walk() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        weights = {s: rng.randint(1, 4) for s in "abcd"[: rng.randint(1, 4)]}
        cycle = rotation(weights)
        position, count = rng.randrange(len(cycle)), rng.randint(0, 80)
        left = {s: rng.choice([None, 0, 1, 3, 7, 30]) for s in weights}
        gone = {s for s in weights if rng.random() < 0.2}
        expected_left = dict(left)
        owners, after = _walk(cycle, position, count, expected_left, gone)
        turns = take_turns(cycle, position, count, left, lambda s, gone=gone: s in gone)  # type: ignore[misc]
        assert turns.owners == owners
        assert left == expected_left
        assert len(turns.skipped) == len(owners)
        if owners:
            assert turns.position == after


def test_a_cap_reached_mid_batch_passes_the_turn_on_and_says_so() -> None:
    config = _config({"sdrs": [{"email": "ann@x", "daily_cap": 2}, {"email": "bo@x"}]})
    now = availability(config, MONDAY_NOON, NO_LOADS)
    out, positions = route_leads(_leads(6), config, {}, NO_ASSIGNMENTS, available=now)
    assert out["owner"].to_list() == ["ann@x", "bo@x", "ann@x", "bo@x", "bo@x", "bo@x"]
    assert out["routing_reason"][4] == "rotation of na; skipped ann@x (daily cap 2 reached)"
    assert out["routing_reason"][3] == "rotation of na"
    assert out["load_day"].unique().to_list() == ["2026-12-07"]
    assert positions["na"] == 0  # the last turn was bo's: ann is next when she has room again


def test_caps_count_what_the_store_already_gave_today_and_this_week() -> None:
    config = _config({"sdrs": [{"email": "ann@x", "daily_cap": 3, "weekly_cap": 5}, {"email": "bo@x"}]})
    loads = pl.DataFrame(
        {"owner": ["ann@x", "ann@x", "ann@x"], "day": ["2026-12-07", "2026-12-06", "2026-12-05"], "assigned": [1, 9, 9]}
    )
    # Saturday and Sunday were last week: today she has 2 of 3 left, and 4 of 5 this week
    out, _ = route_leads(_leads(6), config, {}, NO_ASSIGNMENTS, available=availability(config, MONDAY_NOON, loads))
    assert Counter(out["owner"].to_list()) == {"ann@x": 2, "bo@x": 4}
    loads = pl.DataFrame({"owner": ["ann@x"], "day": ["2026-12-05"], "assigned": [9]})
    tuesday = availability(config, MONDAY_NOON + timedelta(days=8), loads.with_columns(day=pl.lit("2026-12-14")))
    assert tuesday.caps[("na", "ann@x")].left == 0 and tuesday.caps[("na", "ann@x")].limit == "weekly cap 5"


def test_a_queue_all_at_capacity_leaves_leads_waiting_unowned_and_its_companys_leads_with_them() -> None:
    config = _config({"sdrs": [{"email": "ann@x", "daily_cap": 1}, {"email": "bo@x", "daily_cap": 0}]})
    leads = pl.concat([_leads(2, companies=True), _leads(1, start=1, companies=True).with_columns(email=pl.lit("z@x"))])
    out, _ = route_leads(leads, config, {}, NO_ASSIGNMENTS, available=availability(config, MONDAY_NOON, NO_LOADS))
    assert out["owner"].to_list() == ["ann@x", None, None]
    assert out["waiting"].to_list() == [False, True, True]
    assert out["routing_reason"][1] == (
        "waiting in na: nobody can take it now (ann@x (daily cap 1 reached), bo@x (daily cap 0 reached))"
    )
    assert out["routing_reason"][2] == "waiting in na with the first lead of c1.io"
    assert out["load_day"].to_list() == ["2026-12-07", None, None]


def test_away_sdrs_take_no_turns_nor_their_accounts_new_leads_and_keep_their_leads_unless_the_queue_says() -> None:
    away = {"email": "ann@x", "away": [{"from": "2026-12-01", "to": "2026-12-08"}]}
    config = _config({"sdrs": [away, {"email": "bo@x"}]})
    now = availability(config, MONDAY_NOON, NO_LOADS)
    assert now.away == {"ann@x": "away until 2026-12-08"}
    owned = pl.DataFrame({"company_domain": ["c0.io"], "account_owner": ["ann@x"]})
    existing = pl.DataFrame({"email": ["l1@x.io"], "queue": ["na"], "owner": ["ann@x"]})
    out, _ = route_leads(_leads(3, companies=True), config, {}, existing, account_owners=owned, available=now)
    assert out["owner"].to_list() == ["bo@x", "ann@x", "bo@x"]
    assert out["routing_reason"][0] == (
        "rotation of na; account owner ann@x of c0.io is away; skipped ann@x (away until 2026-12-08)"
    )
    assert out["routing_reason"][1] == "owner kept"
    config = _config({"sdrs": [away, {"email": "bo@x"}], "reassign_when_away": True})
    out, _ = route_leads(_leads(3, companies=True), config, {}, existing, account_owners=owned, available=now)
    assert out["owner"].to_list() == ["bo@x", "bo@x", "bo@x"]
    assert out["routing_reason"][1].startswith("rotation of na; owner ann@x is away")
    later = availability(config, MONDAY_NOON + timedelta(days=2), NO_LOADS)
    assert later.away == {}


def test_outside_working_hours_an_sdr_takes_no_turns_but_keeps_getting_its_accounts() -> None:
    berlin = {"email": "ann@x", "tz": "Europe/Berlin", "hours": "09:00-18:00"}
    config = _config({"sdrs": [berlin, {"email": "bo@x"}]})
    evening = datetime(2026, 12, 7, 17, 30, tzinfo=UTC)  # 18:30 in Berlin
    now = availability(config, evening, NO_LOADS)
    assert now.off_hours == {"ann@x": "outside working hours 09:00-18:00 mon/tue/wed/thu/fri Europe/Berlin"}
    owned = pl.DataFrame({"company_domain": ["c0.io"], "account_owner": ["ann@x"]})
    out, _ = route_leads(_leads(3, companies=True), config, {}, NO_ASSIGNMENTS, account_owners=owned, available=now)
    assert out["owner"].to_list() == ["ann@x", "bo@x", "bo@x"]
    assert availability(config, evening - timedelta(hours=1), NO_LOADS).off_hours == {}
    saturday = availability(config, evening + timedelta(days=5, hours=-6), NO_LOADS)
    assert "ann@x" in saturday.off_hours
    # a late-night SDR's day for caps is Berlin's: 23:30 UTC on Monday is Tuesday there
    assert availability(config, datetime(2026, 12, 7, 23, 30, tzinfo=UTC), NO_LOADS).days["ann@x"] == "2026-12-08"


def test_over_a_week_of_signups_capped_sdrs_share_fairly_and_nobody_is_lost() -> None:
    config = _config(
        {"sdrs": [{"email": f"{n}@x", "daily_cap": 12} for n in ("ann", "bo", "cy")] + [{"email": "di@x", "weight": 2}]}
    )
    config.queues["na"].sdrs[3].daily_cap = 24  # weight 2, twice the cap: the same share as the others
    rng = random.Random(3)
    loads: Counter[tuple[str, str]] = Counter()
    positions: dict[str, int] = {}
    waiting = pl.DataFrame()
    given: Counter[str] = Counter()
    sent = 0
    for day in range(7):
        for hour in (9, 11, 13, 15, 17):
            now = MONDAY_NOON.replace(hour=hour) + timedelta(days=day)
            fresh = _leads(rng.randint(8, 18), start=sent)
            sent += fresh.height
            batch = pl.concat([waiting, fresh]) if not waiting.is_empty() else fresh
            frame = pl.DataFrame([(o, d, n) for (o, d), n in loads.items()], schema=LOAD_SCHEMA, orient="row")
            out, positions = route_leads(
                batch, config, positions, NO_ASSIGNMENTS, available=availability(config, now, frame)
            )
            for owner, load_day in out.filter(pl.col("load_day").is_not_null()).select("owner", "load_day").rows():
                loads[(owner, load_day)] += 1
                given[owner] += 1
            waiting = out.filter("waiting").select(batch.columns)
            assert max(n for (o, _), n in loads.items() if o != "di@x") <= 12
    assert sum(given.values()) + waiting.height == sent  # every lead is owned or still waiting
    assert any(loads[(o, d)] == 12 for (o, d) in loads)  # the caps were reached
    shares = [given["ann@x"], given["bo@x"], given["cy@x"], given["di@x"] / 2]
    assert max(shares) - min(shares) <= 1


def test_routing_file_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    cases = {
        "tz: Mars/Olympus": "unknown time zone 'Mars/Olympus'",
        'hours: "18:00-09:00"': "hours '18:00-09:00' is not a start-end span",
        "away: [{from: 2026-12-24, to: 2026-12-01}]": "away ends (2026-12-01) before it starts (2026-12-24)",
        "daily_cap: -1": "daily_cap",
    }
    for line, message in cases.items():
        path.write_text("fallback_queue: q\nqueues:\n  q:\n    sdrs:\n      - email: ann@x\n        " + line + "\n")
        with pytest.raises(ConfigError) as err:
            load_routing(path)
        assert message in str(err.value) and "routing.yaml" in str(err.value) and "queues.q.sdrs.0" in str(err.value)


ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//leadq tests//EN
BEGIN:VEVENT
UID:1
DTSTART;VALUE=DATE:20261207
DTEND;VALUE=DATE:20261209
SUMMARY:Offsite
END:VEVENT
BEGIN:VEVENT
UID:2
DTSTART:20261210T090000Z
DTEND:20261210T100000Z
SUMMARY:Pipeline review
END:VEVENT
BEGIN:VEVENT
UID:3
DTSTART:20261210T130000Z
DTEND:20261210T170000Z
SUMMARY:Dentist
X-MICROSOFT-CDO-BUSYSTATUS:OOF
END:VEVENT
BEGIN:VEVENT
UID:4
DTSTART;VALUE=DATE:20261209
DTEND;VALUE=DATE:20261210
SUMMARY:Team birthday
TRANSP:TRANSPARENT
END:VEVENT
BEGIN:VEVENT
UID:5
DTSTART;VALUE=DATE:20261204
DTEND;VALUE=DATE:20261205
RRULE:FREQ=WEEKLY;BYDAY=FR
SUMMARY:Focus Friday
END:VEVENT
END:VCALENDAR
"""


@pytest.mark.parametrize(
    ("moment", "away"),
    [
        (datetime(2026, 12, 8, 15, 0, tzinfo=UTC), "Offsite"),  # an all-day busy event
        (datetime(2026, 12, 9, 15, 0, tzinfo=UTC), None),  # all-day but marked free
        (datetime(2026, 12, 10, 9, 30, tzinfo=UTC), None),  # a meeting is not being away
        (datetime(2026, 12, 10, 14, 0, tzinfo=UTC), "Dentist"),  # Outlook's out of office
        (datetime(2026, 12, 11, 14, 0, tzinfo=UTC), "Focus Friday"),  # a weekly all-day event, expanded
    ],
)
def test_a_calendar_counts_all_day_busy_and_out_of_office_events_as_away(
    tmp_path: Path, moment: datetime, away: str | None
) -> None:
    (tmp_path / "ann.ics").write_text(ICS)
    found = Calendars(None, tmp_path).away_now("ann.ics", moment)
    assert (found.split(" until ")[0] if found else None) == (f"away in calendar: {away}" if away else None)


def test_a_calendar_url_is_read_once_through_the_safe_client_and_a_broken_one_leaves_the_sdr_present(
    tmp_path: Path,
) -> None:
    settings = RoutingSettings(
        file="routing.yaml", calendar_timeout_s=5, calendar_max_bytes=100_000, calendar_allow_private_networks=True
    )
    with FakeHttp().running() as server:
        server.routes["/ann.ics"] = Reply(200, ICS, {"Content-Type": "text/calendar"})
        url = f"{server.url}/ann.ics"
        config = _config({"sdrs": [{"email": "ann@x", "calendar": url}, {"email": "bo@x", "calendar": "missing.ics"}]})
        calendars = build_calendars(settings, tmp_path)
        now = availability(config, datetime(2026, 12, 8, 15, 0, tzinfo=UTC), NO_LOADS, calendars)
        availability(config, datetime(2026, 12, 8, 16, 0, tzinfo=UTC), NO_LOADS, calendars)
        assert server.hits("/ann.ics") == 1
    assert now.away["ann@x"].startswith("away in calendar: Offsite until 2026-12-09")
    assert "bo@x" not in now.away and "missing.ics" in calendars.problems
    private = build_calendars(settings.model_copy(update={"calendar_allow_private_networks": False}), tmp_path)
    assert private.away_now(url, datetime(2026, 12, 8, 15, 0, tzinfo=UTC)) is None
    assert "private" in private.problems[url] or "refused" in private.problems[url]


def test_no_caps_no_calendars_routes_as_before() -> None:
    config = _config({"sdrs": [{"email": "ann@x", "weight": 2}, {"email": "bo@x"}]})
    plain, p1 = route_leads(_leads(7), config, {}, NO_ASSIGNMENTS)
    timed, p2 = route_leads(
        _leads(7), config, {}, NO_ASSIGNMENTS, available=availability(config, MONDAY_NOON, NO_LOADS)
    )
    assert plain["owner"].to_list() == timed["owner"].to_list() == ["ann@x", "bo@x", "ann@x"] * 2 + ["ann@x"]
    assert p1 == p2 and not timed["waiting"].any()
    assert date.fromisoformat(timed["load_day"][0]) == MONDAY_NOON.date()
