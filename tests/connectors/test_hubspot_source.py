"""The HubSpot source against the fake HubSpot: paging, the 10,000-result cap, ties, the search limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import polars as pl
import pytest

from connectors.errors import SourceError
from connectors.settings import load_settings
from connectors.sources import Cursor
from connectors.sources.hubspot import HubSpotSource
from tests.fake_hubspot import FakeHubSpot
from tests.fakes import FakeHttp

START = datetime(2026, 11, 1, tzinfo=UTC)


def _stamp(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _source(fake: FakeHubSpot, **source: object) -> HubSpotSource:
    settings = load_settings()
    crm = settings.crm.hubspot.model_copy(update={"base_url": fake.fake.url, "max_backoff_s": 2.0})
    return HubSpotSource(crm, settings.source.hubspot.model_copy(update=source), fake.token)


def _seed(fake: FakeHubSpot, n: int, tied_from: int = -1, tied_to: int = -1) -> None:
    """n contacts a second apart, except those in [tied_from, tied_to), which share one time."""
    for i in range(n):
        at = _stamp(tied_from if tied_from <= i < tied_to else i)
        fake.seed_contact(f"person{i}@company{i % 50}.com", firstname=f"P{i}", jobtitle="VP Sales", lastmodifieddate=at)


@pytest.mark.usefixtures("config_dir")
def test_more_than_ten_thousand_contacts_are_read_once_each_in_cursor_order_within_the_search_limit() -> None:
    with FakeHttp().running() as server:
        fake = FakeHubSpot(server)
        _seed(fake, 10_450, tied_from=9_900, tied_to=10_150)  # 250 contacts share the time at the cap
        source = _source(fake, window_requests=5, window_s=1.0)
        frames = list(source.pending(Cursor(), 5000))
        rows = pl.concat(frames)
        assert rows.height == 10_450 and rows["email"].n_unique() == 10_450
        assert rows.select(pl.col("signed_up_at").is_sorted()).item()
        # a batch never ends inside the contacts of one time: the watermark after it skips none of them
        for earlier, later in pairwise(frames):
            assert earlier["signed_up_at"].max() < later["signed_up_at"].min()
        assert fake.searches == source.searches <= 55  # about one search per 200 contacts (each page a search)
        assert any(b.get("after") for b in (s.body for s in fake.requests))  # paged on through the tie
        assert fake.search_window.rejected == 0  # paced under HubSpot's 5 searches a second
        bodies = [s.body for s in fake.requests if s.path.endswith("/search")]
        assert max(int(b.get("after") or 0) + b["limit"] for b in bodies) <= 10_000
        assert not any(p.startswith("leadq_") for b in bodies for p in b["properties"])


@pytest.mark.usefixtures("config_dir")
def test_a_watermark_reads_only_what_came_after_it_including_the_rest_of_its_own_second() -> None:
    with FakeHttp().running() as server:
        fake = FakeHubSpot(server)
        _seed(fake, 30, tied_from=10, tied_to=15)
        source = _source(fake)
        first = pl.concat(list(source.pending(Cursor(), 1000)))
        at_ten = first.filter(pl.col("signed_up_at") == first["signed_up_at"][10])
        middle = at_ten.sort("signup_id")[2]  # a watermark that stopped inside the tie
        cursor = Cursor(middle["signed_up_at"].item(), int(middle["signup_id"].item()))
        rest = pl.concat(list(source.pending(cursor, 1000)))
        assert rest.height == 30 - 10 - 3
        assert set(rest["email"]) == set(first["email"]) - set(first.head(10)["email"]) - set(
            at_ten.sort("signup_id").head(3)["email"]
        )
        assert rest["_crm_id"].null_count() == 0 and rest["_input_hash"].n_unique() == rest.height


@pytest.mark.usefixtures("config_dir")
def test_more_contacts_in_one_millisecond_than_a_search_can_page_is_a_clear_error() -> None:
    with FakeHttp().running() as server:
        fake = FakeHubSpot(server)
        _seed(fake, 260, tied_from=0, tied_to=260)
        source = _source(fake, max_results=200)
        with pytest.raises(SourceError, match="more than 200 contacts share lastmodifieddate"):
            list(source.pending(Cursor(), 1000))


def test_the_hubspot_source_needs_the_hubspot_crm(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.errors import ConfigError
    from connectors.sources import open_source

    monkeypatch.setenv("LEADQ__SOURCE__KIND", "hubspot")
    with pytest.raises(ConfigError, match='\\[crm\\] kind must be "hubspot" too'):
        open_source(load_settings())
    monkeypatch.setenv("LEADQ__CRM__KIND", "hubspot")
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="HUBSPOT_ACCESS_TOKEN"):
        open_source(load_settings())


@pytest.mark.usefixtures("config_dir")
def test_writing_back_to_the_contacts_already_read_while_reading_on_loses_none() -> None:
    """As in a run: each batch is written back (its contacts' lastmodifieddate moves to now) before the
    next is read. Paging by offset would skip contacts; paging by time skips none and does not read the
    written ones again in the same run."""
    with FakeHttp().running() as server:
        fake = FakeHubSpot(server)
        _seed(fake, 1_000)
        source = _source(fake, page_size=100)
        read: list[str] = []
        for frame in source.pending(Cursor(), 150):
            read += frame["email"].to_list()
            for record_id in frame["_crm_id"]:
                fake.records["contacts"][record_id]["lastmodifieddate"] = fake._now()
        assert len(read) == 1_000 and len(set(read)) == 1_000
