"""How fast SQLite itself writes the rows leadq keeps: a lower bound on leadq's store write.

    uv run python bench/store_bound.py 1000000 [--runs 3]

leadq first runs on N realistic signups (untimed) into a new store. Then the rows that run
wrote are written again into a new, empty store of the same schema and SQLite settings, in one
transaction per batch (the store's rows split into as many parts as the run had batches), by
`INSERT … SELECT … ON CONFLICT` from the finished store attached beside it. No Python touches a
row or a value: this is the time SQLite alone needs for leadq's rows, with its keys and
indexes. Whatever leadq does in Python, its store write cannot take less than this.

Prints what each table takes on disk; then the seconds for every table leadq writes per batch,
for those tables without the audit trail and the signup rows, and for the three tables the
floor writes (bench/floor.py), beside the floor measured on the same signups (medians of
`--runs` runs).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import leadq_json, realistic_run, servers_stopped

from connectors.settings import load_settings
from connectors.store.engine import sqlite_pragmas
from connectors.store.models import TABLES

# every table a batch writes, with the key its upsert is on (audit events: only new ones are added)
BATCH_TABLES = {
    "companies": ["domain"],
    "leads": ["email"],
    "assessments": ["email", "icp_version"],
    "audit_events": ["event_key"],
    "assignments": ["email"],
    "sdr_loads": ["owner", "day"],
    "dead_letters": ["key"],
    "signup_rows": ["key"],
}
FLOOR_TABLES = ("leads", "assessments", "assignments")
# the audit trail and where each lead came from: kept so every decision can be explained, not to route
OPTIONAL = ("audit_events", "signup_rows")


def leadq_store(n: int, work: Path) -> tuple[Path, Path, int]:
    """Run leadq on n realistic signups into a new store under `work`: (signups CSV, store, batches)."""
    env = realistic_run(n, work)
    with servers_stopped(work):
        summary = leadq_json(env, "run", "--source", str(work / "signups.csv"))
    return work / "signups.csv", work / "home" / "leadq.db", summary["batches"]


def table_sizes(store: Path) -> dict[str, float]:
    """MB each table takes in the store, with its indexes, largest first (empty without SQLite's dbstat)."""
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as conn:
        try:
            rows = conn.execute(
                "SELECT s.tbl_name, sum(d.pgsize) FROM dbstat d JOIN sqlite_schema s ON s.name = d.name "
                "GROUP BY s.tbl_name ORDER BY 2 DESC"
            ).fetchall()
        except sqlite3.OperationalError:  # built without SQLITE_ENABLE_DBSTAT_VTAB
            rows = []
    return {name: size / 1e6 for name, size in rows}


def copy_seconds(source: Path, target: Path, tables: dict[str, list[str]], parts: int) -> dict[str, float]:
    """Seconds to upsert `tables` of `source` into a new store at `target`, one transaction per part:
    per table, for the commits, and in all; and the rows written."""
    engine = sa.create_engine(f"sqlite:///{target}")
    sa.event.listen(engine, "connect", sqlite_pragmas)
    for model in TABLES:
        model.__table__.create(engine)  # type: ignore[union-attr]
    engine.dispose()
    conn = sqlite3.connect(target, isolation_level=None)
    sqlite_pragmas(conn, None)
    conn.execute("ATTACH DATABASE ? AS src", (f"file:{source}?mode=ro",))
    statements, rows = [], 0
    for table, keys in tables.items():
        columns = [c[1] for c in conn.execute(f"PRAGMA src.table_info({table})") if c[1] != "id"]
        low, high, count = conn.execute(f"SELECT min(rowid), max(rowid), count(*) FROM src.{table}").fetchone()
        if not count:
            continue
        rows += count
        sets = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys)
        action = "DO NOTHING" if table == "audit_events" or not sets else f"DO UPDATE SET {sets}"
        sql = (
            f"INSERT INTO main.{table} ({', '.join(columns)}) SELECT {', '.join(columns)} FROM src.{table} "
            f"WHERE rowid BETWEEN ? AND ? ON CONFLICT ({', '.join(keys)}) {action}"
        )
        step = (high - low) // parts + 1
        statements.append((table, sql, [(low + i * step, low + (i + 1) * step - 1) for i in range(parts)]))
    seconds = dict.fromkeys([name for name, _, _ in statements] + ["commits"], 0.0)
    for part in range(parts):
        conn.execute("BEGIN")
        for name, sql, ranges in statements:
            started = time.perf_counter()
            conn.execute(sql, ranges[part])
            seconds[name] += time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("COMMIT")
        seconds["commits"] += time.perf_counter() - started
    conn.close()
    return seconds | {"all": sum(seconds.values()), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", type=int, help="number of signups")
    parser.add_argument("--runs", type=int, default=3, help="times each copy (and the floor) runs; medians printed")
    args = parser.parse_args()
    batch_size = load_settings().run.batch_size
    with tempfile.TemporaryDirectory(prefix="leadq-bound-") as tmp:
        work = Path(tmp)
        signups, store, batches = leadq_store(args.n, work)
        print(f"{args.n:,} signups: leadq wrote its store in {batches} batches of up to {batch_size:,}")
        sizes = table_sizes(store)
        print(f"store {store.stat().st_size / 1e9:.2f} GB; MB by table with its indexes:")
        print("    " + ", ".join(f"{name} {mb:,.0f}" for name, mb in sizes.items() if mb >= 1))
        floor = [sys.executable, str(Path(__file__).with_name("floor.py")), str(signups)]
        floor_s = statistics.median(
            float(subprocess.run(floor, check=True, capture_output=True, text=True).stdout.split()[1])
            for _ in range(args.runs)
        )
        print(f"{'rows written':<46} {'rows':>11} {'SQLite s':>9} {'x floor':>8}")
        for label, tables in (
            ("every table a batch writes", BATCH_TABLES),
            ("without audit events and signup rows", {t: k for t, k in BATCH_TABLES.items() if t not in OPTIONAL}),
            ("the floor's three tables, leadq's rows", {t: BATCH_TABLES[t] for t in FLOOR_TABLES}),
        ):
            measured = []
            for run in range(args.runs):
                target = work / f"copy-{len(tables)}-{run}.db"
                measured.append(copy_seconds(store, target, tables, batches))
                target.unlink()
            seconds = statistics.median(m["all"] for m in measured)
            print(f"{label:<46} {measured[0]['rows']:>11,.0f} {seconds:>9.1f} {seconds / floor_s:>8.2f}")
            if tables is BATCH_TABLES:
                parts = {k: statistics.median(m[k] for m in measured) for k in measured[0] if k not in ("all", "rows")}
                print("    " + ", ".join(f"{k} {v:.1f}" for k, v in parts.items()))
        print(f"{'the floor (bench/floor.py), median':<46} {'':>11} {floor_s:>9.1f} {1:>8.2f}")
        print(f"1.5x the floor: {1.5 * floor_s:.1f} s")


if __name__ == "__main__":
    main()
