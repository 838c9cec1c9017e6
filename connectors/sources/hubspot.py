"""HubSpot as the signup source: contacts created or updated since the watermark, read with the CRM
search API, and written back in place.

- **Cursor**: (`cursor_property`, hs_object_id): `lastmodifieddate` (created or updated) or
  `createdate` (new contacts only), in milliseconds as HubSpot filters them.
- **Paging**: `page_size` results a page (200 at most), sorted by the cursor property. A search stops
  at 10,000 results (HubSpot answers 400 past it), so at `max_results` leadq starts a new search
  from the last time it saw (GTE), skipping the contacts of that time it has already read.
- **Rate**: the search API has its own limit (5 requests a second per token, no rate headers in its
  answers): `window_requests` per `window_s`, and 429s are waited out like any HubSpot 429.
- **Batches** are cut only between two cursor times, so a batch never ends in the middle of the
  contacts that share one time: the watermark after a batch never skips one of them.
- **In place**: each row carries the contact's record id (`_crm_id`); the HubSpot sink updates that
  record (batch/update: it cannot create one) and writes only leadq's own properties and the owner.
- **No loops**: each row also carries `_input_hash`, a hash of the input properties it was read with
  (only `[source.hubspot.properties]`, never leadq's own). A contact that comes back only because
  leadq wrote to it has the same hash as the stored lead and is skipped as known.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import polars as pl

from connectors.crm.api import CrmApi, json_body
from connectors.crm.base import BatchRefused
from connectors.crm.hubspot import classify_hubspot
from connectors.errors import SourceError
from connectors.settings import HubSpotSettings
from connectors.settings.pipeline import HubSpotSourceSettings
from connectors.sources.cursor import ID, TIMESTAMP, Cursor
from connectors.sources.records import cut_between_times, input_hash, signup_frame

SEARCH_PATH = "/crm/v3/objects/contacts/search"


class HubSpotSource:
    """Contacts as signups, after the watermark, from HubSpot's CRM search API."""

    def __init__(self, crm: HubSpotSettings, settings: HubSpotSourceSettings, token: str) -> None:
        self.settings = settings
        self.key = f"hubspot:contacts:{settings.cursor_property}"
        self.base = crm.base_url.rstrip("/")
        limits = crm.model_copy(update={"window_requests": settings.window_requests, "window_s": settings.window_s})
        self.api = CrmApi(
            "hubspot search", limits, classify_hubspot, lambda _refresh: {"Authorization": f"Bearer {token}"}
        )
        self.searches = 0
        self.windows = 0

    def check(self) -> None:
        """One search of one contact: the token, its scope and the properties are good."""
        self._search([], after=None, limit=1)

    def pending(self, after: Cursor, batch_size: int) -> Iterator[pl.DataFrame]:
        start = _millis(after.signed_up_at) if after.signed_up_at is not None else None
        for frame in self._read(start, None, batch_size):
            fresh = frame.filter(after.after(pl.Int64)) if after.signed_up_at is not None else frame
            if not fresh.is_empty():
                yield fresh

    def between(self, start: datetime, end: datetime, batch_size: int) -> Iterator[pl.DataFrame]:
        yield from (f.filter(pl.col(TIMESTAMP) < end) for f in self._read(_millis(start), _millis(end), batch_size))

    def usage(self) -> dict[str, Any]:
        return {"source_searches": self.searches, "source_windows": self.windows}

    # --- reading -------------------------------------------------------------------------------

    def _read(self, start: int | None, end: int | None, batch_size: int) -> Iterator[pl.DataFrame]:
        """Batches of contacts with start <= time (< end), in cursor order, cut between two times."""
        for records in cut_between_times(self._pages(start, end), batch_size):
            yield signup_frame(records, "hubspot", self.key, pl.Int64())

    def _pages(self, start: int | None, end: int | None) -> Iterator[list[dict[str, Any]]]:
        """Every contact from `start` on, page by page, sorted by time; a new window at max_results."""
        since, seen_at_since = start, set[str]()
        while True:
            self.windows += 1
            filters = _range(self.settings.cursor_property, since, end)
            after: str | None = None
            read = 0
            last_time: int | None = None
            ids_at_last: set[str] = set()
            while True:
                limit = min(self.settings.page_size, self.settings.max_results - read)
                body = self._search(filters, after, limit)
                rows = [self._row(r) for r in body.get("results", [])]
                rows = [r for r in rows if not (r["time"] == since and r["id"] in seen_at_since)]
                read += len(body.get("results", []))
                for r in rows:
                    ids_at_last = ids_at_last | {r["id"]} if r["time"] == last_time else {r["id"]}
                    last_time = r["time"]
                if rows:
                    yield rows
                after = ((body.get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    return
                if read >= self.settings.max_results:
                    break
            if last_time is None or last_time == since:
                raise SourceError(
                    f"hubspot: more than {self.settings.max_results} contacts share {self.settings.cursor_property} "
                    f"{_iso(since)}; HubSpot's search cannot page past them"
                )
            since = last_time
            seen_at_since = ids_at_last

    def _search(self, filters: list[dict[str, Any]], after: str | None, limit: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "filterGroups": [{"filters": filters}] if filters else [],
            "sorts": [{"propertyName": self.settings.cursor_property, "direction": "ASCENDING"}],
            "properties": ["email", self.settings.cursor_property, *self.settings.properties.values()],
            "limit": limit,
        }
        if after is not None:
            body["after"] = after
        self.searches += 1
        try:
            return json_body(self.api.call("POST", f"{self.base}{SEARCH_PATH}", json=body))
        except BatchRefused as exc:
            raise SourceError(f"hubspot: the contact search was refused: {exc.message}") from exc

    def _row(self, record: dict[str, Any]) -> dict[str, Any]:
        props = record.get("properties") or {}
        stamp = _parse(props.get(self.settings.cursor_property) or record.get("updatedAt"))
        inputs = {column: props.get(name) for column, name in self.settings.properties.items()}
        return {
            "id": str(record["id"]),
            "time": _millis(stamp) if stamp else 0,
            "row": {"email": props.get("email"), ID: int(record["id"]), TIMESTAMP: stamp, **inputs},
            "hash": input_hash([("email", props.get("email")), *inputs.items()]),
        }


def _range(prop: str, start: int | None, end: int | None) -> list[dict[str, Any]]:
    found = [{"propertyName": prop, "operator": "GTE", "value": str(start)}] if start is not None else []
    return found + ([{"propertyName": prop, "operator": "LT", "value": str(end)}] if end is not None else [])


def _parse(value: Any) -> datetime | None:
    """A HubSpot time (ISO 8601 with Z, or epoch milliseconds) as naive UTC."""
    if value in (None, ""):
        return None
    if str(value).isdigit():
        return datetime.fromtimestamp(int(value) / 1000, UTC).replace(tzinfo=None)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _millis(moment: datetime) -> int:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


def _iso(millis: int | None) -> str:
    return "the start" if millis is None else datetime.fromtimestamp(millis / 1000, UTC).isoformat()
