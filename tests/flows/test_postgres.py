"""PostgreSQL as the store and the signup source: the same results as SQLite, and concurrent runs that
never process a batch twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from connectors.settings import load_settings
from connectors.store import Store
from connectors.store.export import export_leads
from flows.qualify import qualify_signups
from tests.flows.crm_helpers import write_companies, write_signups
from tests.postgres import new_database

pytestmark = pytest.mark.usefixtures("prefect_api")
LEADQ = Path(sys.executable).with_name("leadq")


def _database(server_url: str) -> str:
    """A fresh database on the test server, so every test starts empty."""
    return new_database(server_url, f"t_{uuid.uuid4().hex[:12]}")


def _signups_table(url: str, csv: Path) -> int:
    """The product database's signups table, from a CSV (every column text, signed_up_at a timestamp)."""
    frame = pl.read_csv(csv, infer_schema=False)
    engine = sa.create_engine(url)
    columns = [sa.Column(c, sa.DateTime if c == "signed_up_at" else sa.Text) for c in frame.columns]
    table = sa.Table("signups", sa.MetaData(), *columns)
    table.create(engine)
    rows = frame.with_columns(pl.col("signed_up_at").str.to_datetime(time_zone="UTC").dt.replace_time_zone(None))
    with engine.begin() as conn:
        conn.execute(table.insert(), rows.to_dicts())
    engine.dispose()
    return frame.height


@pytest.fixture
def on_postgres(config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str) -> str:
    url = _database(postgres_url)
    count = _signups_table(url, write_signups(tmp_path / "signups.csv", 1000))
    assert count == 1000
    monkeypatch.setenv("LEADQ__ENRICHMENT__REFERENCE__PATH", str(write_companies(tmp_path / "companies.csv")))
    monkeypatch.setenv("LEADQ__SOURCE__KIND", "sql")
    monkeypatch.setenv("LEADQ__SOURCE__URL", url)
    monkeypatch.setenv("LEADQ__RUN__BATCH_SIZE", "100")
    return url


def _leads() -> pl.DataFrame:
    return export_leads(Store(load_settings().store_url)).drop("assessed_at").sort("email")


def test_a_run_on_postgres_equals_the_same_run_on_sqlite(on_postgres: str, monkeypatch: pytest.MonkeyPatch) -> None:
    on_sqlite = qualify_signups()
    expected = _leads()

    monkeypatch.setenv("LEADQ__STORE__URL", on_postgres)
    first = qualify_signups()
    again = qualify_signups()
    assert Store(on_postgres).engine.dialect.name == "postgresql"
    assert first["processed"] == on_sqlite["processed"] == 1000 and again["processed"] == 0
    assert first["by_tier"] == on_sqlite["by_tier"] and first["by_queue"] == on_sqlite["by_queue"]
    assert _leads().equals(expected)


def test_concurrent_runs_on_postgres_never_process_a_batch_twice(
    on_postgres: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two `leadq run` processes started at once on one store: one processes everything, the other waits
    for it (the store's writer lock) and then finds nothing new."""
    monkeypatch.setenv("LEADQ__STORE__URL", on_postgres)
    runs = [
        subprocess.Popen(
            [str(LEADQ), "run", "--json"],
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-2000:] for _, err in outputs]
    summaries = [json.loads(out) for out, _ in outputs]
    assert sorted(s["processed"] for s in summaries) == [0, 1000]
    store = Store(on_postgres)
    events = store.read("select email, count(*) as n from audit_events group by email")
    assert events.height == 1000 and events["n"].max() == 1
    per_sdr = store.read("select owner, count(*) as n from assignments where owner is not null group by owner")

    # the same signups in one run on a fresh database: the same owners, so no rotation turn was taken twice
    monkeypatch.setenv("LEADQ__STORE__URL", _database(on_postgres))
    qualify_signups()
    alone = Store(load_settings().store_url)
    expected = alone.read("select owner, count(*) as n from assignments where owner is not null group by owner")
    assert per_sdr.sort("owner").equals(expected.sort("owner"))


def test_a_naive_utc_watermark_compares_correctly_with_timestamptz_in_any_session_zone(postgres_url: str) -> None:
    """The watermark is naive UTC. Bound as naive, PostgreSQL would read it in the session's zone
    (here New York, 5 hours behind), and the rows of those hours would be read again or skipped."""
    from connectors.sources import Cursor, SqlSource, last_cursor

    url = _database(postgres_url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("create table users (id bigint primary key, email text, created_at timestamptz)"))
        values = [
            "(1, 'a@acme.io', '2026-03-01 09:00:00+00')",
            "(2, 'b@acme.io', '2026-03-01 12:00:00+00')",
            "(10, 'c@acme.io', '2026-03-01 12:00:00+00')",
        ]
        conn.execute(sa.text("insert into users values " + ", ".join(values)))
    engine.dispose()
    in_new_york = url + "?options=-c%20TimeZone%3DAmerica/New_York"
    source = SqlSource(in_new_york, "users", {"signed_up_at": "created_at", "signup_id": "id"})
    first = next(source.pending(Cursor(), 2))
    assert first["email"].to_list() == ["a@acme.io", "b@acme.io"]
    assert first["signed_up_at"][1].isoformat() == "2026-03-01T12:00:00"  # read back as naive UTC
    cursor = last_cursor(first, Cursor())
    assert [b["email"].to_list() for b in source.pending(cursor, 100)] == [["c@acme.io"]]


def test_a_batch_copied_into_postgres_is_stored_as_row_by_row_upserts_store_it(postgres_url: str) -> None:
    """Frames reach PostgreSQL by COPY (CSV from polars) and one INSERT ... SELECT. Text with quotes,
    commas, newlines, a backslash-N, an empty string beside a null, booleans, floats, microsecond
    times, a key given twice (the later wins) and kept columns must come out as SQLAlchemy's row-by-row
    upserts store them."""
    from datetime import datetime

    from connectors.store.models import Assessment, Assignment

    now = datetime(2026, 12, 7, 21, 30, 0, 123456)
    assessments = pl.DataFrame(
        {
            "email": ["ana@acme.io", "bo@acme.io", "cy@acme.io", "ana@acme.io"],
            "icp_version": ["v1"] * 4,
            "score": [90, 40, 0, 91],
            "tier": ["A", "C", "D", "A"],
            "confidence": [1.0, 0.6, 0.125, 0.95],
            "reasons": ['size 120: +10 of 20; "quoted", comma', "", None, "line one\nline two \\N"],
            "disqualified_by": [None, "\\N", "", None],
            "method": ["rules", "crew", "review", "rules"],
            "needs_review": [False, True, False, True],
            "evidence": [None, '{"a": "b\'c"}', None, None],
            "run_id": ["r1"] * 4,
            "assessed_at": [now] * 4,
        },
        schema_overrides={"needs_review": pl.Boolean, "evidence": pl.String, "disqualified_by": pl.String},
    )
    first = pl.DataFrame({"email": ["ana@acme.io"], "queue": ["q"], "owner": ["devon@example.com"], "owned_at": [now]})
    again = first.with_columns(pl.lit("sam@example.com").alias("owner"), pl.lit(datetime(2027, 1, 1)).alias("owned_at"))
    statements: list[str] = []
    copied, bound = Store(_database(postgres_url)), Store(_database(postgres_url))
    sa.event.listen(copied.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    for store in (copied, bound):
        store.create()
        as_rows = store is bound
        with store.engine.begin() as conn:
            rows = assessments.unique("email", keep="last", maintain_order=True).to_dicts() if as_rows else assessments
            store._upsert(conn, Assessment, rows, ["email", "icp_version"])
            store._upsert(conn, Assignment, first.to_dicts() if as_rows else first, ["email"])
        with store.engine.begin() as conn:  # a second write keeps the owner's clock, takes the new owner
            store._upsert(conn, Assignment, again.to_dicts() if as_rows else again, ["email"], keep=("owned_at",))
    for table in ("assessments", "assignments"):
        assert copied.read(f"select * from {table} order by email").equals(
            bound.read(f"select * from {table} order by email")
        ), table
    assert copied.read("select owner, owned_at from assignments").rows() == [("sam@example.com", now)]
    assert copied.read("select score from assessments where email = 'ana@acme.io'").item() == 91
    assert any(s.startswith("CREATE TEMPORARY TABLE") for s in statements)  # the frames went by COPY
