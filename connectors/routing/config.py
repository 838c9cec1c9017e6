"""`config/routing.yaml`: segments, territories, rules to queues, and each queue's SDRs."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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


class Sdr(_Model):
    email: str
    weight: int = Field(1, ge=1, le=100)


class Queue(_Model):
    sdrs: list[Sdr] = Field(default_factory=list)
    reassign: bool = False  # True: routing replaces an owner already set in the CRM


class Account(_Model):
    """A named account, by company domain."""

    approval_required: bool = False  # its leads wait for a person before they are routed or written
    owner: str | None = None  # its leads go to this person, whatever the rotation says


class RoutingConfig(_Model):
    # a lead of a company that already has an owner goes to that owner (no rotation turn is taken)
    account_routing: bool = True
    accounts: dict[str, Account] = Field(default_factory=dict)
    segments: list[Segment] = Field(default_factory=list)
    territories: dict[str, list[str]] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    fallback_queue: str
    queues: dict[str, Queue]

    @model_validator(mode="after")
    def _queues_exist(self) -> Self:
        named = [self.fallback_queue, *(r.queue for r in self.rules)]
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

    def pinned_owners(self) -> dict[str, str]:
        """Company domain -> the owner `accounts:` pins it to."""
        return {d.strip().lower(): a.owner for d, a in self.accounts.items() if a.owner}

    def approval_domains(self) -> list[str]:
        return sorted(domain.strip().lower() for domain, account in self.accounts.items() if account.approval_required)


def load_routing(path: Path) -> RoutingConfig:
    try:
        return RoutingConfig.model_validate(load_yaml(path))
    except ValidationError as exc:
        raise ConfigError(validation_message(exc, path)) from exc
