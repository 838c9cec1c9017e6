"""The embedded CRM: the store's lead, company and assignment tables are the system of record.

Publishing is the store write the sync step does for every sink, so this sink itself
calls nothing and refuses nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from connectors.crm.base import ACCOUNT_SCHEMA, ACTIVITY_SCHEMA, OWNER_SCHEMA, CrmPlan, CrmResult
from connectors.errors import ConfigError


class LocalCrm:
    name = "local"
    writes_companies = False  # and has no company owners of its own: the store's are read by routing

    def existing_owners(self, emails: Sequence[str]) -> pl.DataFrame:
        return pl.DataFrame(schema=OWNER_SCHEMA)  # the store's assignments are read by routing itself

    def people_decisions(self, emails: Sequence[str]) -> pl.DataFrame:
        raise ConfigError(
            "the embedded CRM holds only leadq's own decisions, not people's: pass `--actual FILE` "
            "(email, owner, status) or set crm.kind to hubspot or salesforce"
        )

    def account_owners(self, domains: Sequence[str]) -> pl.DataFrame:
        return pl.DataFrame(schema=ACCOUNT_SCHEMA)  # the store's owners are read by routing itself

    def activity(self, emails: Sequence[str]) -> pl.DataFrame:
        return pl.DataFrame(schema=ACTIVITY_SCHEMA)  # touches are the store's own (`leadq lead status … worked`)

    def publish(self, leads: pl.DataFrame) -> CrmResult:
        return CrmResult(written=leads.height)

    def plan(self, leads: pl.DataFrame) -> CrmPlan:
        return CrmPlan(counts={"leads": leads.height}, sample=[])

    def usage(self) -> dict[str, Any]:
        return {"crm_api_calls": 0}
