from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl

from connectors.sources import Cursor
from connectors.store import Store
from connectors.store.batches import BatchWrite

DECIDED = pl.DataFrame(
    {
        "email": ["ana@acme.io", "bo@acme.io"],
        "signup_id": ["s1", "s2"],
        "first_name": ["Ana", "Bo"],
        "last_name": [None, None],
        "job_title": ["VP Sales", None],
        "seniority": ["vp", None],
        "function": ["sales", None],
        "company_domain": ["acme.io", "acme.io"],
        "email_type": ["business", "business"],
        "country": ["US", "US"],
        "phone": [None, None],
        "source": ["organic", None],
        "signed_up_at": [datetime(2026, 1, 1), datetime(2026, 1, 2)],
        "plan": ["pro", "free"],
        "_signals": ['{"plan":"pro"}', '{"plan":"free"}'],  # what prepare declared from the source's columns
        "company_legal_name": ["Acme", "Acme"],
        "industry": ["computer software"] * 2,
        "employees": [120, 120],
        "company_country": ["US", "US"],
        "company_sources": ["reference"] * 2,
        "score": [90, 40],
        "tier": ["A", "C"],
        "confidence": [1.0, 0.6],
        "reasons": ["industry computer software: +25 of 25", ""],
        "disqualified_by": [None, None],
        "icp_version": ["abc123abc123"] * 2,
        "segment": ["mid_market"] * 2,
        "territory": ["na"] * 2,
        "queue": ["inbound-na", "nurture"],
        "owner": ["devon@example.com", None],
    },
    schema_overrides={"last_name": pl.String, "phone": pl.String, "disqualified_by": pl.String},
)
REJECTS = pl.DataFrame(
    {"signup_id": ["s3"], "_row": [3], "reason": ["email is empty"], "raw": ['{"email":null}']},
    schema_overrides={"_row": pl.UInt32},
)


def _store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'leadq.db'}")
    store.create()
    return store


def test_writing_the_same_batch_twice_changes_no_counts(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.record_batch(BatchWrite(DECIDED, REJECTS, {"inbound-na": 1}), "run-1", "file:x")
    first = store.counts()
    store.record_batch(BatchWrite(DECIDED, REJECTS, {"inbound-na": 1}), "run-2", "file:x")
    assert store.counts() == first
    assert first["leads"] == 2 and first["companies"] == 1 and first["audit_events"] == 2 and first["dead_letters"] == 1
    assert store.rotation_positions() == {"inbound-na": 1}
    signals = store.read("select signals from leads where email = 'ana@acme.io'")["signals"][0]
    assert signals == '{"plan":"pro"}'


def test_a_changed_decision_is_a_new_audit_event_and_updates_the_lead(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.record_batch(BatchWrite(DECIDED, REJECTS, {}), "run-1", "file:x")
    rescored = DECIDED.with_columns(pl.when(pl.col("email") == "bo@acme.io").then(65).otherwise("score").alias("score"))
    store.record_batch(BatchWrite(rescored, REJECTS.clear(), {}), "run-2", "file:x")
    assert store.counts()["audit_events"] == 3
    assert store.read("select score from assessments where email = 'bo@acme.io'")["score"].to_list() == [65]
    assigned = store.existing_assignments(["ana@acme.io", "nobody@x.io"])
    assert assigned.rows() == [("ana@acme.io", "inbound-na", "devon@example.com")]


def test_watermark_round_trips_and_starts_empty(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert store.watermark("file:x").is_start
    store.commit_watermark("file:x", Cursor(datetime(2026, 1, 2, 3, 4, 5), "s9"))
    assert store.watermark("file:x") == Cursor(datetime(2026, 1, 2, 3, 4, 5), "s9")
    assert store.watermark("file:other").is_start


def test_a_fresh_store_does_not_exist_until_created(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'nested' / 'leadq.db'}")
    assert not store.exists()
    assert not (tmp_path / "nested").exists()
    store.create()
    assert store.exists()


def test_a_new_store_has_32_kb_pages_and_an_older_store_keeps_its_own(tmp_path: Path) -> None:
    import sqlite3

    new = _store(tmp_path)
    new.record_batch(BatchWrite(DECIDED, REJECTS, {}), "run-1", "file:x")
    assert new.read("pragma page_size").item() == 32768
    older = tmp_path / "older.db"
    with sqlite3.connect(older) as conn:  # a store made with SQLite's default 4 KB pages, in WAL mode
        conn.execute("pragma journal_mode=wal")
        conn.execute("create table kept (x)")
    conn.close()
    store = Store(f"sqlite:///{older}")
    store.create()
    store.record_batch(BatchWrite(DECIDED, REJECTS, {}), "run-1", "file:x")
    assert store.read("pragma page_size").item() == 4096
    assert store.counts()["leads"] == 2


# --- values every row of a batch shares, written once into the statement ------------------------

# quotes, SQL, a ? and the placeholders SQLAlchemy itself uses while it compiles a statement
HOSTILE = "o'brien's \"100%\" list?; drop table leads; -- %(email)s __[POSTCOMPILE_email]"


def test_a_value_every_row_shares_is_stored_as_if_it_were_bound_row_by_row(tmp_path: Path) -> None:
    """SQLite writes of a batch put the values all its rows share (the run, the time, a null column)
    into the statement once. Quotes, percent signs, nulls, integers, floats, booleans and times must
    come back exactly as SQLAlchemy's own row-by-row binding stores them."""
    import sqlalchemy as sa

    from connectors.store.models import Assessment, Lead
    from connectors.store.rows import assessments_rows, leads_rows

    decided = DECIDED.with_columns(
        pl.lit(HOSTILE).alias("source"),
        pl.lit("Côte d'Ivoire").alias("country"),
        pl.lit("a\x00b").alias("job_title"),  # NUL: never written into SQL text, always bound
        pl.lit(0.75).alias("confidence"),
        pl.lit(None, dtype=pl.String).alias("reasons"),
        pl.lit(True).alias("needs_review"),
        pl.lit("review").alias("method"),
    )
    now = datetime(2026, 12, 7, 21, 30, 0, 123456)
    tables = [
        (Lead, leads_rows(decided, "run'1", now), ["email"]),
        (Assessment, assessments_rows(decided, "run'1", now), ["email", "icp_version"]),
    ]
    statements: list[str] = []
    inlined, bound = _store(tmp_path / "inlined"), _store(tmp_path / "bound")
    sa.event.listen(inlined.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    for store, as_dicts in ((inlined, False), (bound, True)):
        with store.engine.begin() as conn:
            for model, rows, keys in tables:
                store._upsert(conn, model, rows.to_dicts() if as_dicts else rows, keys)
    for table in ("leads", "assessments"):
        assert inlined.read(f"select * from {table} order by email").equals(
            bound.read(f"select * from {table} order by email")
        ), table
    written = " ".join(statements)
    assert "'o''brien''s \"100%\" list?; drop table leads; -- %(email)s __[POSTCOMPILE_email]'" in written
    assert "'Côte d''Ivoire'" in written and "'run''1'" in written
    assert "a\x00b" not in written  # bound
    assert inlined.read("select source, job_title from leads").rows() == [(HOSTILE, "a\x00b")] * 2


def test_only_a_non_key_value_shared_by_every_row_is_written_into_the_statement() -> None:
    from connectors.store.bulk import shared_literals

    frame = pl.DataFrame(
        {
            "email": ["a@x.io", "a@x.io"],  # a key: always bound, even when the rows share it
            "run_id": ["r1", "r1"],
            "employees": [12, 12],
            "phone": pl.Series([None, None], dtype=pl.String),
            "confidence": [0.5, 0.5],  # floats are bound
            "owner": [None, "devon@example.com"],  # a null and a value: not shared
            "tier": ["A", "B"],
        }
    )
    assert shared_literals(frame, ["email"]) == {"run_id": "'r1'", "employees": "12", "phone": "NULL"}
    assert shared_literals(frame.head(1), ["email"]) == {}  # one row: nothing to save
