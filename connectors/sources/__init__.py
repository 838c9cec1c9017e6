"""Signup sources: a file (CSV, Parquet, JSONL) or a SQL table, read incrementally by cursor."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from connectors.errors import ConfigError
from connectors.settings import Settings
from connectors.sources.cursor import Cursor, last_cursor
from connectors.sources.files import FileSource
from connectors.sources.memory import FrameSource
from connectors.sources.sql import SqlSource

__all__ = ["Cursor", "FileSource", "FrameSource", "SignupSource", "SqlSource", "last_cursor", "open_source"]


class SignupSource(Protocol):
    key: str

    def check(self) -> None:
        """Raise SourceError now if the source cannot be read as signups."""
        ...

    def pending(self, after: Cursor, batch_size: int) -> Iterator[pl.DataFrame]:
        """Canonical signup batches strictly after `after`, in cursor order."""
        ...

    def between(self, start: datetime, end: datetime, batch_size: int) -> Iterator[pl.DataFrame]:
        """Canonical signup batches with start <= signed_up_at < end, in cursor order (for backfills)."""
        ...

    def usage(self) -> dict[str, Any]:
        """What reading cost, for the run summary (a CRM source's searches or query pages); {} for the rest."""
        ...


def open_source(settings: Settings, path: Path | None = None) -> SignupSource:
    """The configured source, or the file at `path` when one is given."""
    src = settings.source
    if path is not None:
        return FileSource(path, src.columns, src.lookback_s)
    if src.kind == "sql":
        return SqlSource(src.url, src.table, src.columns, src.lookback_s)
    if src.kind == "hubspot":
        _needs_crm(settings, "hubspot")
        from connectors.crm import env_secret
        from connectors.sources.hubspot import HubSpotSource

        token = env_secret(settings.crm.hubspot.token_env, "crm.hubspot.token_env")
        return HubSpotSource(settings.crm.hubspot, src.hubspot, token)
    if src.kind == "salesforce":
        _needs_crm(settings, "salesforce")
        from connectors.crm import build_crm
        from connectors.crm.salesforce import SalesforceCrm
        from connectors.sources.salesforce import SalesforceSource

        crm = build_crm(settings)
        assert isinstance(crm, SalesforceCrm)
        return SalesforceSource(crm, src.salesforce)
    return FileSource(settings.config_path(src.path), src.columns, src.lookback_s)


def _needs_crm(settings: Settings, kind: str) -> None:
    if settings.crm.kind != kind:
        raise ConfigError(
            f"settings.toml: key 'source.kind': \"{kind}\" writes each lead back to its own record, "
            f'so [crm] kind must be "{kind}" too (it is "{settings.crm.kind}")'
        )
