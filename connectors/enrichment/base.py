"""What every enrichment provider returns: values with a confidence and how they were found.

A provider looks up one company domain and returns a `Lookup`: the fields it found,
or a reason it found nothing (not found, refused, skipped). Lookups are cached per
(domain, provider) in the store, so they must be plain JSON.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from connectors.domain import COMPANY_FIELDS

FIELDS = COMPANY_FIELDS


_clock: tuple[int, str] = (0, "")


def _now_iso() -> str:
    """Now (naive UTC, to the second) as ISO text; made once a second, not once per lookup."""
    global _clock
    second = int(time.time())
    if second != _clock[0]:
        _clock = (second, datetime.fromtimestamp(second, UTC).replace(tzinfo=None).isoformat(timespec="seconds"))
    return _clock[1]


@dataclass(frozen=True)
class Found:
    value: Any
    confidence: float
    method: str
    url: str | None = None  # the page the value was read from, where one was


@dataclass
class Lookup:
    """One provider's answer for one domain."""

    status: str  # ok | not_found | refused | skipped | error
    fields: dict[str, Found] = field(default_factory=dict)
    reason: str | None = None
    fetched_at: str = field(default_factory=_now_iso)
    from_cache: bool = False

    @property
    def cacheable(self) -> bool:
        """Answers worth keeping: a skipped or failed call says nothing about the company."""
        return self.status in ("ok", "not_found", "refused")

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "fetched_at": self.fetched_at,
            "fields": {
                k: {
                    "value": f.value,
                    "confidence": f.confidence,
                    "method": f.method,
                    **({"url": f.url} if f.url else {}),
                }
                for k, f in self.fields.items()
            },
        }

    def cache_row(self, domain: str, provider: str) -> dict[str, Any]:
        """This answer as a row of the store's enrichment cache."""
        return {
            "domain": domain,
            "provider": provider,
            "status": self.status,
            "payload": json.dumps(self.to_json()),
            "fetched_at": datetime.fromisoformat(self.fetched_at),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Lookup:
        fields = {
            k: Found(v["value"], v["confidence"], v["method"], v.get("url")) for k, v in data.get("fields", {}).items()
        }
        return cls(data["status"], fields, data.get("reason"), data["fetched_at"], from_cache=True)


class Provider(Protocol):
    """One source of company facts; `fields` says what it can fill, so the waterfall skips it otherwise."""

    name: str
    fields: frozenset[str]

    def lookup(self, domain: str) -> Lookup: ...

    def off_reason(self) -> str | None:
        """Why the provider is off for the rest of this run (offline, breaker open, budget spent), or None."""
        ...

    def usage(self) -> tuple[int, float]:
        """(calls made, credits spent) in this run."""
        ...
