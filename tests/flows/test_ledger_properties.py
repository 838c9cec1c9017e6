"""Property: over any sequence of runs, backfills and kills on files of mixed good, bad, duplicate,
re-signup and out-of-order rows, the books balance, no accepted email is missing, and no stored
lead is older than its newest signup."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from connectors.settings import load_settings
from connectors.store import Store
from flows.backfill import backfill_signups
from flows.qualify import qualify_signups
from tests.conftest import REPO, offline_settings

pytestmark = pytest.mark.usefixtures("prefect_api")

EMAILS = [f"p{i}@northwind.io" for i in range(6)]  # a small pool, so people sign up again
BAD = {
    "bad_email": "not-an-email",
    "no_email": "",
    "future": "9999-12-31T00:00:00Z",
    "ancient": "1970-01-01T00:00:00Z",
    "bad_date": "last tuesday",
}
START = datetime(2026, 5, 1)


@dataclass(frozen=True)
class Row:
    kind: str  # good | bad_email | no_email | future | ancient | bad_date | duplicate
    person: int
    minute: int | None  # minutes into the step's window; None: no signup time


rows_of_a_step = st.lists(
    st.builds(
        Row,
        kind=st.sampled_from(["good"] * 6 + [*BAD, "duplicate"]),
        person=st.integers(0, len(EMAILS) - 1),
        minute=st.one_of(st.integers(0, 3 * 24 * 60), st.integers(0, 3 * 24 * 60), st.none()),  # a third undated
    ),
    min_size=1,
    max_size=12,
)
# a backfill re-reads the days of one earlier step (any of them: n modulo the steps so far)
actions = st.one_of(
    st.sampled_from(["run", "run", "kill_before_commit", "kill_before_write"]),
    st.tuples(st.just("backfill"), st.integers(0, 10)),
)
steps = st.lists(st.tuples(rows_of_a_step, actions), min_size=1, max_size=4)


class _Source:
    """The signup file as it grows, and what a careful person expects of it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[str] = []
        self.newest: dict[str, datetime | None] = {}  # accepted email -> newest dated signup
        self.count = 0

    def append(self, rows: list[Row], step: int) -> None:
        """Each step's rows are newer than the last step's (a live source only grows forward), but in
        any order within the step; a duplicate repeats the step's previous line exactly."""
        window = START + timedelta(days=4 * step)
        for row in rows:
            if row.kind == "duplicate":
                if self.lines:
                    self.lines.append(self.lines[-1])
                continue
            self.count += 1
            when = window + timedelta(minutes=row.minute) if row.minute is not None else None
            email, stamp = EMAILS[row.person], when.isoformat() + "Z" if when else ""
            if row.kind in ("bad_email", "no_email"):
                email = f"{BAD[row.kind]}{self.count}" if row.kind == "bad_email" else ""
            elif row.kind in ("future", "ancient", "bad_date"):
                stamp = BAD[row.kind]
            else:
                previous = self.newest.get(email)
                self.newest[email] = max((t for t in (previous, when) if t is not None), default=None)
            self.lines.append(f"s{self.count},{email},VP of Sales,Northwind,US,{stamp}\n")
        self.path.write_text("signup_id,email,job_title,company_name,country,signed_up_at\n" + "".join(self.lines))


def _books_balance(summary: dict[str, Any]) -> None:
    books = summary["ledger"]
    assert books["balanced"] and books["processed"] == (
        books["leads"] + books["duplicates"] + books["rejected"] + books["skipped_known"]
    ), books


def _act(action: str | tuple[str, int], source: _Source, step: int) -> None:
    params = {"source": str(source.path)}
    if action == "run":
        _books_balance(qualify_signups(**params))
    elif isinstance(action, tuple):  # a backfill over the days of an earlier step, which may hold older signups
        first = (START + timedelta(days=4 * (action[1] % (step + 1)))).date()
        summary = backfill_signups(start=first, end=first + timedelta(days=3), chunk_days=4, source=str(source.path))
        _books_balance(summary)
    else:  # the process dies: after the CRM write and before the watermark, or before anything is written
        method = "commit_watermark" if action == "kill_before_commit" else "record_batch"
        original = getattr(Store, method)

        def dies(*_args: Any, **_kwargs: Any) -> None:
            raise SystemError("killed")

        setattr(Store, method, dies)
        try:
            with pytest.raises(SystemError):
                qualify_signups(**params)
        finally:
            setattr(Store, method, original)


# each example is several real flow runs (a second or two each): a few dozen runs in all
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequence=steps)
@example(  # the case a backfill got wrong: it re-read an older signup and stored it over the newer one
    sequence=[([Row("good", 0, 10)], "run"), ([Row("good", 0, 10)], "run"), ([Row("good", 1, 5)], ("backfill", 0))]
)
def test_any_sequence_of_runs_backfills_and_kills_loses_nothing(
    sequence: list[tuple[list[Row], str | tuple[str, int]]],
) -> None:
    folder = Path(tempfile.mkdtemp(prefix="leadq-property-"))
    saved = {k: os.environ.get(k) for k in ("LEADQ_CONFIG_DIR", "LEADQ_HOME", "LEADQ__RUN__BATCH_SIZE")}
    try:
        shutil.copytree(REPO / "config", folder / "config")
        offline_settings(folder / "config")
        os.environ |= {
            "LEADQ_CONFIG_DIR": str(folder / "config"),
            "LEADQ_HOME": str(folder / "home"),
            "LEADQ__RUN__BATCH_SIZE": "4",
        }
        source = _Source(folder / "signups.csv")
        for step, (rows, action) in enumerate(sequence):
            source.append(rows, step)
            _act(action, source, step)
        _books_balance(qualify_signups(source=str(source.path)))  # a last clean run

        store = Store(load_settings().store_url)
        stored = store.stored_signups(store.read("select email from leads")["email"].to_list())
        stored_at = dict(stored.select("email", "signed_up_at").iter_rows())
        missing = set(source.newest) - set(stored_at)
        assert not missing, f"accepted emails missing from the store: {sorted(missing)}"
        older = {e: (stored_at[e], t) for e, t in source.newest.items() if stored_at[e] != t}
        assert not older, f"stored signup is not the newest one (stored, newest): {older}"
        assert stored.height == stored["email"].n_unique() == len(source.newest)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(folder, ignore_errors=True)
