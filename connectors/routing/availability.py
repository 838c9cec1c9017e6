"""Who can take a lead now: SDRs away (dates in routing.yaml, their calendar), outside their
working hours, or at their daily or weekly cap.

- Away: no rotation turns and no new leads of their accounts (those take a turn instead);
  their existing leads stay theirs unless the queue says `reassign_when_away: true`.
- Outside working hours: no rotation turns; their accounts' leads still reach them.
- At a cap: no rotation turns; their accounts' leads still reach them and count.

Caps count the leads given to each SDR per day in the SDR's time zone (`tz`, else UTC);
the counts live in the store (`sdr_loads`), written in the batch's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl

from connectors.routing.calendars import Calendars
from connectors.routing.config import WEEKDAYS, Away, RoutingConfig, WorkingHours

LOAD_SCHEMA = {"owner": pl.String, "day": pl.String, "assigned": pl.Int64}


@dataclass(frozen=True)
class Cap:
    left: int  # new leads the SDR may still take in this queue now
    limit: str  # which cap: "daily cap 20", "weekly cap 80"


@dataclass(frozen=True)
class Availability:
    """Who can take a lead at one moment (`now`)."""

    now: datetime
    away: dict[str, str]  # SDR -> why they are away
    off_hours: dict[str, str]  # SDR -> the working hours they are outside of
    caps: dict[tuple[str, str], Cap]  # (queue, SDR) -> the cap that limits them
    days: dict[str, str]  # SDR -> today in the zone its caps count in (ISO date)

    @classmethod
    def anytime(cls, now: datetime | None = None) -> Availability:
        """Everyone, with no caps."""
        return cls(now or datetime.now(UTC), {}, {}, {}, {})

    def day_of(self, owner: str) -> str:
        """Today for this owner's caps (UTC for an owner that is no SDR of a queue)."""
        return self.days.get(owner) or self.now.astimezone(UTC).date().isoformat()

    def cannot_take(self, queue: str, sdr: str) -> str | None:
        """Why the SDR takes no rotation turn in this queue now, or None."""
        if sdr in self.away:
            return self.away[sdr]
        if sdr in self.off_hours:
            return self.off_hours[sdr]
        return None


def availability(
    config: RoutingConfig, now: datetime, loads: pl.DataFrame, calendars: Calendars | None = None
) -> Availability:
    """Each SDR's state at `now`; `loads` = (owner, day, assigned) as the store counts them."""
    away: dict[str, str] = {}
    off_hours: dict[str, str] = {}
    caps: dict[tuple[str, str], Cap] = {}
    days: dict[str, str] = {}
    for name in config.queues:
        for sdr in config.queues[name].sdrs:
            hours = config.working_hours(name, sdr)
            local = now.astimezone(ZoneInfo(hours.tz or "UTC"))
            days.setdefault(sdr.email, local.date().isoformat())
            why = _away(sdr.away, local.date())
            if why is None and sdr.calendar and calendars is not None:
                why = calendars.away_now(sdr.calendar, local)
            if why is not None:
                away.setdefault(sdr.email, why)
            outside = _outside(hours, local)
            if outside is not None:
                off_hours[sdr.email] = outside
            cap = _cap(sdr.daily_cap, sdr.weekly_cap, _counts(loads, sdr.email, local.date()))
            if cap is not None:
                caps[(name, sdr.email)] = cap
    return Availability(now, away, off_hours, caps, days)


def _away(ranges: list[Away], today: date) -> str | None:
    for span in ranges:
        if span.start <= today <= span.end:
            return f"away until {span.end.isoformat()}"
    return None


def _outside(hours: WorkingHours, local: datetime) -> str | None:
    span = hours.span()
    if span is None:
        return None
    working_days = hours.days or list(WEEKDAYS[:5])
    start, end = span
    if WEEKDAYS[local.weekday()] in working_days and start <= local.time() < end:
        return None
    return f"outside working hours {hours.hours} {'/'.join(working_days)} {hours.tz or 'UTC'}"


def _counts(loads: pl.DataFrame, owner: str, today: date) -> tuple[int, int]:
    """Leads given to `owner` today and this week (Monday on)."""
    monday = (today - timedelta(days=today.weekday())).isoformat()
    mine = loads.filter(pl.col("owner") == owner, pl.col("day") >= monday)
    daily = int(mine.filter(pl.col("day") == today.isoformat())["assigned"].sum())
    return daily, int(mine["assigned"].sum())


def _cap(daily_cap: int | None, weekly_cap: int | None, counts: tuple[int, int]) -> Cap | None:
    daily, weekly = counts
    limits = []
    if daily_cap is not None:
        limits.append(Cap(max(daily_cap - daily, 0), f"daily cap {daily_cap}"))
    if weekly_cap is not None:
        limits.append(Cap(max(weekly_cap - weekly, 0), f"weekly cap {weekly_cap}"))
    return min(limits, key=lambda c: c.left) if limits else None
