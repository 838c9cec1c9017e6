"""`config/routing.yaml`: segments, territories, rules to queues, and each queue's SDRs."""

from __future__ import annotations

import re
from datetime import date, time
from pathlib import Path
from typing import Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from connectors.errors import ConfigError
from connectors.settings import load_yaml, validation_message


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Segment(_Model):
    name: str
    min_employees: int = Field(ge=0)


class Rule(_Model):
    """Leads matching every given list go to `queue`; an omitted list matches anything."""

    queue: str
    tiers: list[str] | None = None
    segments: list[str] | None = None
    territories: list[str] | None = None


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class Away(_Model):
    """Days off, both ends included: `{from: 2026-12-24, to: 2026-12-31}`."""

    start: date = Field(alias="from")
    end: date = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end < self.start:
            raise ValueError(f"away ends ({self.end}) before it starts ({self.start})")
        return self


class WorkingHours(_Model):
    """When an SDR takes rotation turns, in a time zone: `tz`, `hours: "09:00-18:00"`, `days`."""

    tz: str | None = None  # IANA name (Europe/Berlin); also the zone daily and weekly caps count in; empty: UTC
    hours: str | None = None  # "09:00-18:00"; empty: any hour
    days: list[str] | None = None  # working days when `hours` is set; empty: mon..fri

    @field_validator("tz")
    @classmethod
    def _zone(cls, tz: str | None) -> str | None:
        if tz is not None:
            try:
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone '{tz}' (an IANA name such as Europe/Berlin)") from None
        return tz

    @field_validator("hours")
    @classmethod
    def _hours(cls, hours: str | None) -> str | None:
        if hours is not None:
            match = HOURS.match(hours.replace(" ", ""))
            if not match or match[1] + match[2] >= match[3] + match[4]:
                raise ValueError(f"hours '{hours}' is not a start-end span within one day, like \"09:00-18:00\"")
            return hours.replace(" ", "")
        return hours

    @field_validator("days")
    @classmethod
    def _days(cls, days: list[str] | None) -> list[str] | None:
        wrong = [d for d in days or [] if d.lower()[:3] not in WEEKDAYS]
        if wrong:
            raise ValueError(f"days {wrong} are not weekdays (mon, tue, … sun)")
        return [d.lower()[:3] for d in days] if days is not None else None

    def span(self) -> tuple[time, time] | None:
        """The working hours as two times (24:00 is the end of the day), or None: any hour."""
        if self.hours is None:
            return None
        start, end = self.hours.split("-")
        return time.fromisoformat(start), time.max if end == "24:00" else time.fromisoformat(end)


class Sdr(WorkingHours):
    """One SDR of a queue; `tz`, `hours` and `days`, where given, override the queue's."""

    email: str
    weight: int = Field(1, ge=1, le=100)
    daily_cap: int | None = Field(None, ge=0)  # new leads a day at most (in the SDR's time zone)
    weekly_cap: int | None = Field(None, ge=0)  # new leads a week (Monday to Sunday) at most
    away: list[Away] = Field(default_factory=list)  # out of office: no turns, no new account leads
    calendar: str | None = None  # an iCalendar file or URL: its busy all-day and out-of-office events are away


class Queue(WorkingHours):
    sdrs: list[Sdr] = Field(default_factory=list)
    reassign: bool = False  # True: routing replaces an owner already set in the CRM
    reassign_when_away: bool = False  # True: a lead whose owner is away takes a turn in the rotation


class Account(_Model):
    """A named account, by company domain."""

    approval_required: bool = False  # its leads wait for a person before they are routed or written
    owner: str | None = None  # its leads go to this person, whatever the rotation says
    queue: str | None = None  # its leads go to this queue, whatever the rules say (disqualified ones to none)


class RoutingConfig(_Model):
    # a lead of a company that already has an owner goes to that owner (no rotation turn is taken)
    account_routing: bool = True
    # a free-mail lead's typed company name matches a known company at this similarity (0-100); null: never
    company_name_match: int | None = Field(90, ge=50, le=100)
    accounts: dict[str, Account] = Field(default_factory=dict)
    segments: list[Segment] = Field(default_factory=list)
    territories: dict[str, list[str]] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    fallback_queue: str
    queues: dict[str, Queue]
    # speed to lead: minutes an owner has for the first touch of a lead of this tier (check-sla alerts after)
    sla_minutes: dict[str, int] = Field(default_factory=dict)

    @field_validator("sla_minutes")
    @classmethod
    def _positive(cls, minutes: dict[str, int]) -> dict[str, int]:
        wrong = {tier: m for tier, m in minutes.items() if m < 1}
        if wrong:
            raise ValueError(f"sla_minutes must be whole minutes of at least 1: {wrong}")
        return minutes

    @model_validator(mode="after")
    def _queues_exist(self) -> Self:
        named = [
            self.fallback_queue,
            *(r.queue for r in self.rules),
            *(a.queue for a in self.accounts.values() if a.queue),
        ]
        missing = sorted({q for q in named if q not in self.queues})
        if missing:
            raise ValueError(f"queue(s) {', '.join(missing)} used but not defined under 'queues'")
        segments = {s.name for s in self.segments}
        for i, rule in enumerate(self.rules):
            unknown = set(rule.segments or []) - segments - {"unknown"}
            unknown |= set(rule.territories or []) - set(self.territories) - {"other"}
            if unknown:
                raise ValueError(f"rules[{i}] names unknown segments or territories: {', '.join(sorted(unknown))}")
        return self

    def working_hours(self, queue: str, sdr: Sdr) -> WorkingHours:
        """An SDR's own time zone and hours where given, else the queue's."""
        home = self.queues[queue]
        return WorkingHours(
            tz=sdr.tz or home.tz,
            hours=sdr.hours or home.hours,
            days=sdr.days if sdr.days is not None else home.days,
        )

    def pinned_owners(self) -> dict[str, str]:
        """Company domain -> the owner `accounts:` pins it to."""
        return {d.strip().lower(): a.owner for d, a in self.accounts.items() if a.owner}

    def pinned_queues(self) -> dict[str, str]:
        """Company domain -> the queue `accounts:` pins it to."""
        return {d.strip().lower(): a.queue for d, a in self.accounts.items() if a.queue}

    def approval_domains(self) -> list[str]:
        return sorted(domain.strip().lower() for domain, account in self.accounts.items() if account.approval_required)


def load_routing(path: Path) -> RoutingConfig:
    try:
        return RoutingConfig.model_validate(load_yaml(path))
    except ValidationError as exc:
        raise ConfigError(validation_message(exc, path)) from exc
