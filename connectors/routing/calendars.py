"""SDRs' calendars: an iCalendar file or URL per SDR, read once per run, for when they are away.

Only what says "not here" counts: an all-day event that is busy (not marked free, not
cancelled), or any event Outlook marks out of office (`X-MICROSOFT-CDO-BUSYSTATUS: OOF`).
Meetings do not make an SDR away. Recurring events are expanded (recurring-ical-events).
A URL is fetched through leadq's safe HTTP client (no private or metadata addresses unless
`[routing] calendar_allow_private_networks`), with its limits; a calendar that cannot be read
is named in the log and the SDR counts as present: routing goes on.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import icalendar
import recurring_ical_events

from connectors.errors import LeadqError
from connectors.http import ServiceClient, ServicePolicy
from connectors.settings.pipeline import RoutingSettings

log = logging.getLogger("leadq.routing")


@dataclass(frozen=True)
class Absence:
    start: datetime
    end: datetime
    summary: str


@dataclass
class Calendars:
    """Each SDR's calendar, read at most once per run (None client: files only)."""

    client: ServiceClient | None
    base: Path  # where relative calendar paths are found (the config folder)
    max_bytes: int = 2_000_000
    problems: dict[str, str] = field(default_factory=dict)  # calendar -> why it could not be read
    _read: dict[str, list[Absence]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def away_now(self, calendar: str, now: datetime) -> str | None:
        """Why the calendar's owner is away at `now` ("away in calendar: Offsite until …"), or None."""
        with self._lock:
            if calendar not in self._read:
                self._read[calendar] = self._absences(calendar, now)
        for absence in self._read[calendar]:
            if absence.start <= now < absence.end:
                return f"away in calendar: {absence.summary or 'busy all day'} until {absence.end:%Y-%m-%d %H:%M}"
        return None

    def _absences(self, calendar: str, now: datetime) -> list[Absence]:
        try:
            return absences(self._text(calendar), now)
        except (LeadqError, OSError, ValueError) as exc:
            why = str(exc)[:300]
            self.problems[calendar] = why
            log.warning("calendar %s could not be read, its SDR counts as present: %s", calendar, why)
            return []

    def _text(self, calendar: str) -> bytes:
        if calendar.startswith(("http://", "https://", "webcal://")):
            if self.client is None:
                raise ValueError("calendar URLs are not read here")
            url = "https://" + calendar.removeprefix("webcal://") if calendar.startswith("webcal://") else calendar
            response = self.client.get(url, stream=True)
            body = response.raw.read(self.max_bytes + 1, decode_content=True)
            if len(body) > self.max_bytes:
                raise ValueError(f"larger than {self.max_bytes} bytes")
            if response.status_code == 404:
                raise ValueError("HTTP 404: no calendar at this URL")
            return bytes(body)
        path = Path(calendar).expanduser()
        return (path if path.is_absolute() else self.base / path).read_bytes()


def build_calendars(settings: RoutingSettings, config_dir: Path) -> Calendars:
    """A run's calendar reader: URLs through the pinned, SSRF-safe client; paths from the config folder."""
    timeout = settings.calendar_timeout_s
    policy = ServicePolicy(timeout_s=timeout, rate_per_s=0, retries=1, deadline_s=3 * timeout)
    client = ServiceClient(
        "calendar", policy, pinned=True, allow_private_networks=settings.calendar_allow_private_networks
    )
    return Calendars(client, config_dir, settings.calendar_max_bytes)


def absences(text: bytes, now: datetime) -> list[Absence]:
    """The away events of an iCalendar text that touch the week around `now` (UTC datetimes)."""
    try:
        parsed = icalendar.Calendar.from_ical(text)
    except ValueError as exc:
        raise ValueError(f"not an iCalendar file: {exc}") from None
    window = recurring_ical_events.of(parsed).between(now - timedelta(days=1), now + timedelta(days=7))
    found = []
    for event in window:
        all_day = not isinstance(event.get("DTSTART").dt, datetime)
        out_of_office = str(event.get("X-MICROSOFT-CDO-BUSYSTATUS", "")).upper() == "OOF"
        free = str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT"
        cancelled = str(event.get("STATUS", "")).upper() == "CANCELLED"
        if cancelled or not (out_of_office or (all_day and not free)):
            continue
        start, end = _moment(event.get("DTSTART").dt, now), _moment(_end(event), now)
        found.append(Absence(start, end, str(event.get("SUMMARY", "")).strip()))
    return found


def _end(event: Any) -> date | datetime:
    if event.get("DTEND") is not None:
        return event.get("DTEND").dt  # type: ignore[no-any-return]
    start = event.get("DTSTART").dt
    duration = event.get("DURATION")
    return start + (duration.dt if duration is not None else timedelta(days=1))  # type: ignore[no-any-return]


def _moment(value: date | datetime, now: datetime) -> datetime:
    """An event time as a UTC-aware datetime; an all-day date starts at midnight in `now`'s zone."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=now.tzinfo)
    return datetime(value.year, value.month, value.day, tzinfo=now.tzinfo)
