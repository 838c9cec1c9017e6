"""HubSpot as the signup source: contacts created or updated since the watermark, read with the CRM
search API, and written back in place.

- **Cursor**: (`cursor_property`, hs_object_id): `lastmodifieddate` (created or updated) or
  `createdate` (new contacts only), in milliseconds as HubSpot filters them.
- **Paging by time, not by offset**: `page_size` results a page (200 at most), sorted by the cursor
  property, each page a new search from the last time read (GTE; the contacts of that time already
  read are dropped). leadq writes to the contacts it read while it reads on, which moves them in the
  sort order: an `after` offset would then skip contacts. The same makes HubSpot's cap of 10,000
  results per search irrelevant, except for more contacts than that in one millisecond (an error
  that says so). The read stops at the time it began: later changes, leadq's own writes among them,
  are the next run's.
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
        """Every contact from `start` on (and before `end`, else before this read began), page by page,
        sorted by time.

        Each page is a new search from the last time read (the contacts of that time already read are
        dropped): leadq writes to the contacts it has read while it reads on, and their new times would
        shift the positions an `after` offset counts, skipping contacts. `after` pages only through the
        contacts of one time, which nothing writes to before they are all read. Contacts changed after
        the read began (leadq's own writes among them) are left to the next run."""
        until = end if end is not None else _millis(datetime.now(UTC)) + 1
        since, seen, offset = start, set[str](), 0
        while True:
            limit = self.settings.page_size
            if offset + limit > self.settings.max_results:
                raise SourceError(
                    f"hubspot: more than {offset} contacts share {self.settings.cursor_property} "
                    f"{_iso(since)}; HubSpot's search cannot page past {self.settings.max_results} results"
                )
            body = self._search(
                _range(self.settings.cursor_property, since, until), str(offset) if offset else None, limit
            )
            rows = [self._row(r) for r in body.get("results", [])]
            fresh = [r for r in rows if not (r["time"] == since and r["id"] in seen)]
            if fresh:
                yield fresh
            if not rows or not ((body.get("paging") or {}).get("next") or {}).get("after"):
                return
            last = rows[-1]["time"]
            if last == since:  # the whole page is one time: page on through it
                seen |= {r["id"] for r in rows}
                offset += len(rows)
                continue
            self.windows += 1
            since, seen, offset = last, {r["id"] for r in rows if r["time"] == last}, 0

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
