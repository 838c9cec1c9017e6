"""The floor: the least any tool must do to qualify a signup file into SQLite on this machine.

    uv run python bench/floor.py bench/out/n1000000/signups.csv [--batch-size N]

polars reads the file; then, in one transaction per `batch_size` rows, an executemany upsert
writes one row per lead into the leads, assessments and assignments tables (leadq's own schema
and SQLite settings: WAL, synchronous=NORMAL, 32 KB pages, page cache, checkpoints). No
validation, no enrichment, no scoring: leadq's end-to-end time is measured against this
(bench/run.py).
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from connectors.settings import load_settings
from connectors.store.engine import sqlite_pragmas
from connectors.store.models import Assessment, Assignment, Lead

_UPSERT = "INSERT INTO {table} ({cols}) VALUES ({marks}) ON CONFLICT ({key}) DO UPDATE SET {sets}"


def _upsert(table: str, columns: list[str], key: list[str]) -> str:
    sets = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    marks = ", ".join("?" for _ in columns)
    return _UPSERT.format(table=table, cols=", ".join(columns), marks=marks, key=", ".join(key), sets=sets)


def floor(signups: Path, database: Path, batch_size: int) -> float:
    """Seconds to read `signups` and upsert every row into the three tables of a new `database`."""
    engine = sa.create_engine(f"sqlite:///{database}")
    sa.event.listen(engine, "connect", sqlite_pragmas)  # the tables in leadq's page size
    for model in (Lead, Assessment, Assignment):
        model.__table__.create(engine)  # type: ignore[union-attr]
    engine.dispose()
    started = time.perf_counter()
    frame = pl.read_csv(signups, infer_schema=False)
    conn = sqlite3.connect(database)
    sqlite_pragmas(conn, None)  # leadq's own: WAL, synchronous=NORMAL, page cache, checkpoints
    lead_columns = ["email", "signup_id", "first_name", "last_name", "job_title", "country", "source"]
    leads = _upsert("leads", [*lead_columns, "signed_up_at"], ["email"])
    assessed = _upsert(
        "assessments",
        ["email", "icp_version", "score", "tier", "confidence", "reasons", "method", "needs_review"],
        ["email", "icp_version"],
    )
    assigned = _upsert("assignments", ["email", "queue", "owner", "status"], ["email"])
    for batch in frame.iter_slices(batch_size):
        emails = batch["email"].to_list()
        with conn:  # one transaction per batch
            conn.executemany(leads, batch.select(*lead_columns, "signed_up_at").iter_rows())
            conn.executemany(assessed, ((e, "v1", 50, "B", 0.8, "[]", "rules", False) for e in emails))
            conn.executemany(assigned, ((e, "default", None, "active") for e in emails))
    conn.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("signups", type=Path, help="a CSV of signups (bench/generate.py writes one)")
    parser.add_argument(
        "--batch-size", type=int, help="rows per transaction (default: leadq's [run] batch_size, as leadq runs)"
    )
    args = parser.parse_args()
    batch_size = args.batch_size or load_settings().run.batch_size
    with tempfile.TemporaryDirectory(prefix="leadq-floor-") as work:
        seconds = floor(args.signups, Path(work) / "floor.db", batch_size)
    print(f"floor: {seconds:.3f} s for {args.signups} in transactions of {batch_size:,} rows")


if __name__ == "__main__":
    main()
