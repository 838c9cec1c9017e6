"""What every CRM reached over an API shares, so a third CRM is a module of declarations and its quirks.

A subclass sets `name`, `limit_header` and `limit_key` (the vendor's header that tells how much
of its API limit is left, and the summary key that shows it), builds its `CrmApi` with
`self.classify` as the classifier, and implements `people_decisions`, `publish` and `plan`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import polars as pl
import requests

from connectors.crm.api import CrmApi
from connectors.crm.base import OWNER_SCHEMA
from connectors.http import Verdict

log = logging.getLogger("leadq.crm")


class ApiSink:
    name = "api"
    limit_header = ""  # e.g. X-HubSpot-RateLimit-Daily-Remaining
    limit_key = ""  # e.g. crm_daily_remaining
    api: CrmApi

    def __init__(self) -> None:
        self.unknown_owners: set[str] = set()  # owners routing named that the CRM does not know
        self.limit_seen: str | None = None

    def people_decisions(self, emails: Sequence[str]) -> pl.DataFrame:
        raise NotImplementedError

    def existing_owners(self, emails: Sequence[str]) -> pl.DataFrame:
        """Records that already have an owner in the CRM: (email, crm_owner as an SDR email or the CRM's id)."""
        people = self.people_decisions(emails)
        return people.filter(pl.col("crm_owner").is_not_null()).select(list(OWNER_SCHEMA))

    def usage(self) -> dict[str, Any]:
        """The run summary's CRM figures: calls, 429s, waits, unknown owners and the vendor's limit header."""
        if self.limit_seen:
            log.info("%s: %s %s", self.name, self.limit_header, self.limit_seen)
        return {
            **self.api.usage(),
            "crm_unknown_owners": sorted(self.unknown_owners),
            self.limit_key: self.limit_seen,
        }

    def classify(self, response: requests.Response) -> Verdict:
        """Remember the vendor's limit header, then let the vendor module say what the answer means."""
        value = response.headers.get(self.limit_header)
        if value is not None:
            self.limit_seen = value
        return self.verdict(response)

    def verdict(self, response: requests.Response) -> Verdict:
        raise NotImplementedError

    def unknown_owner(self, owner: str, consequence: str) -> None:
        """Warn once per run about an owner routing.yaml names and the CRM does not know."""
        if owner not in self.unknown_owners:
            self.unknown_owners.add(owner)
            log.warning("%s: %s (routing.yaml) %s", self.name, owner, consequence)
