"""Salesforce as the signup source: Leads created or changed since the watermark, read with SOQL, and
written back in place.

- **Cursor**: (`cursor_field`, Id): `SystemModstamp` (created or changed) or `CreatedDate` (new Leads
  only). The query asks for `cursor_field >= the watermark's time` (SOQL datetime literal), ordered
  by it and by Id; the rows of the watermark's own time that were done are dropped here.
- **Paging**: Salesforce pages a query's records (2,000 at a time) behind `nextRecordsUrl`; no cap.
  Batches are cut only between two cursor times (`connectors.sources.records`).
- **In place**: each row carries the Lead's Id (`_crm_id`); the Salesforce sink updates that record by Id
  (sObject Collections update: it cannot create one) and writes only leadq's own fields and the owner.
- **No loops**: each row carries `_input_hash` over the input fields read (`[source.salesforce.fields]`,
  never leadq's own); a Lead that comes back only because leadq wrote to it is skipped as known.
- Converted Leads are left out (`IsConverted = false`) unless `include_converted`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import polars as pl

from connectors.crm.base import BatchRefused
from connectors.crm.salesforce import SalesforceCrm
from connectors.errors import SourceError
from connectors.settings.pipeline import SalesforceSourceSettings
from connectors.sources.cursor import ID, TIMESTAMP, Cursor
from connectors.sources.records import cut_between_times, input_hash, signup_frame


class SalesforceSource:
    """Leads as signups, after the watermark, from a SOQL query."""

    def __init__(self, crm: SalesforceCrm, settings: SalesforceSourceSettings) -> None:
        self.crm = crm
        self.settings = settings
        self.sobject = crm.settings.sobject
        self.key = f"salesforce:{self.sobject}:{settings.cursor_field}"
        self.pages = 0

    def check(self) -> None:
        """One query of one Lead: the credentials, the fields and the permission are good."""
        list(self._pages(self._soql(None, None, limit=1)))

    def pending(self, after: Cursor, batch_size: int) -> Iterator[pl.DataFrame]:
        for frame in self._read(after.signed_up_at, None, batch_size):
            fresh = frame.filter(after.after(pl.String)) if after.signed_up_at is not None else frame
            if not fresh.is_empty():
                yield fresh

    def between(self, start: datetime, end: datetime, batch_size: int) -> Iterator[pl.DataFrame]:
        yield from self._read(start, end, batch_size)

    def usage(self) -> dict[str, Any]:
        return {"source_pages": self.pages}

    def _read(self, start: datetime | None, end: datetime | None, batch_size: int) -> Iterator[pl.DataFrame]:
        records = (list(map(self._row, page)) for page in self._pages(self._soql(start, end)))
        for batch in cut_between_times(records, batch_size):
            yield signup_frame(batch, "salesforce", self.key, pl.String())

    def _soql(self, start: datetime | None, end: datetime | None, limit: int | None = None) -> str:
        cursor = self.settings.cursor_field
        fields = ", ".join(dict.fromkeys(["Id", cursor, *self.settings.fields.values()]))
        where = [f"{cursor} >= {_literal(start)}"] if start is not None else []
        where += [f"{cursor} < {_literal(end)}"] if end is not None else []
        where += [] if self.settings.include_converted else ["IsConverted = false"]
        soql = f"SELECT {fields} FROM {self.sobject}"
        soql += f" WHERE {' AND '.join(where)}" if where else ""
        return soql + f" ORDER BY {cursor}, Id" + (f" LIMIT {limit}" if limit else "")

    def _pages(self, soql: str) -> Iterator[list[dict[str, Any]]]:
        try:
            for page in self.crm.query_pages(soql):
                self.pages += 1
                yield page
        except BatchRefused as exc:
            raise SourceError(f"salesforce: the Lead query was refused: {exc.message}") from exc

    def _row(self, record: dict[str, Any]) -> dict[str, Any]:
        stamp = _parse(record.get(self.settings.cursor_field))
        inputs = {column: record.get(name) for column, name in self.settings.fields.items()}
        return {
            "id": str(record["Id"]),
            "time": stamp or datetime.min,
            "row": {**inputs, ID: str(record["Id"]), TIMESTAMP: stamp},
            "hash": input_hash(inputs.items()),
        }


def _literal(moment: datetime) -> str:
    """A SOQL datetime literal (UTC, no quotes)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse(value: Any) -> datetime | None:
    """Salesforce's datetime (2026-11-01T10:00:00.000+0000) as naive UTC."""
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    parsed = datetime.fromisoformat(text)
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
