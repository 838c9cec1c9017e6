"""Time `leadq run --source` end to end on the embedded default against the floor, for N signups.

    uv run python bench/run.py                       # 100k, 1M and 2M realistic signups
    uv run python bench/run.py 10000 100000
    uv run python bench/run.py 100000 --task-runner dask     # batches on a local 2-worker Dask cluster
    uv run python bench/run.py 100000 1000000 --postgres      # leadq's store on PostgreSQL

Signups are realistic (bench/generate.py: ~0.45 company domains per signup, 95 % of companies
unknown to the reference file). For each size, in one process per size:

- the floor (bench/floor.py): polars reads the file and an executemany upsert writes one row per
  lead into leads, assessments and assignments, a transaction per batch_size rows; the median of
  `--floor-runs` runs (3), as a single run of it moves by a third on a shared machine;
- leadq: `leadq run --source` in a fresh LEADQ_HOME (a new SQLite store), as a user runs it, with
  leadq's local Prefect server already running (an untimed warm-up run starts it).

Prints wall seconds, leadq / floor, signups per second, and the peak memory (RSS) of each
process (measured from a small launcher: a child forked from this process would count the
generated signups this process holds).
With 1M and 2M, also the 10M time projected from them (linear). With --postgres, leadq's store
is a new database per size on a throwaway PostgreSQL server started from the installed binaries
(as the tests start theirs); the floor stays SQLite's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # tests.postgres, for --postgres
from servers import realistic_run

from tests.postgres import PostgresServer, find_binaries, new_database  # the throwaway server the tests start


@dataclass
class Measured:
    stdout: str
    wall_s: float
    peak_mb: float


# Linux counts in a child's peak RSS the memory of the process it was forked from (this one holds
# the generated signups), so the command is started from a small Python launcher that reports
# its child's own peak on the last line of stderr.
_LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(child.pid, 0)
sys.stderr.write(f"\\nPEAK_RSS_KB {usage.ru_maxrss}\\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def measured(command: list[str], env: dict[str, str]) -> Measured:
    """Run a command; its wall time and its own peak RSS, or exit with its stderr."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *command], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    peak_kb = int(done.stderr.strip().splitlines()[-1].split()[1])
    return Measured(done.stdout, wall, peak_kb / 1024)


def run_once(
    n: int, work: Path, task_runner: str = "threads", floor_runs: int = 3, store_url: str = ""
) -> dict[str, float]:
    """One timed `leadq run --source` on n signups; Prefect state is shared under `work`."""
    folder = work / f"n{n}"
    env = realistic_run(n, folder, prefect_home=work / "prefect") | {"LEADQ__RUNTIME__TASK_RUNNER": task_runner}
    if store_url:
        env["LEADQ__STORE__URL"] = store_url
    floor = [sys.executable, str(Path(__file__).with_name("floor.py")), str(folder / "signups.csv")]
    floor_runs_measured = [measured(floor, env) for _ in range(floor_runs)]
    floor_s = statistics.median(float(run.stdout.split()[1]) for run in floor_runs_measured)
    leadq = Path(sys.executable).with_name("leadq")
    proc = measured([str(leadq), "run", "--source", str(folder / "signups.csv"), "--json"], env)
    wall, peak_mb, floor_mb = proc.wall_s, proc.peak_mb, max(run.peak_mb for run in floor_runs_measured)
    summary = json.loads(proc.stdout)
    return {
        "signups": n,
        "floor_s": round(floor_s, 1),
        "x_floor": round(wall / floor_s, 2),
        "floor_mb": round(floor_mb),
        "wall_s": round(wall, 1),
        "signups_per_s": round(n / wall),
        "peak_mb": round(peak_mb),
        "leads": summary["leads"],
        "rejected": summary["rejected"],
        "batches": summary["batches"],
        "slowest_step": max(summary["step_seconds"], key=summary["step_seconds"].get),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "sizes", type=int, nargs="*", default=[100_000, 1_000_000, 2_000_000], help="numbers of signups"
    )
    parser.add_argument(
        "--task-runner",
        choices=["threads", "dask"],
        default="threads",
        help="[runtime] task_runner for the timed runs (dask: a local cluster of dask_workers)",
    )
    parser.add_argument(
        "--floor-runs", type=int, default=3, help="times the floor runs per size; its median is printed (default 3)"
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="leadq's store on a throwaway PostgreSQL server (a new database per size)",
    )
    parser.add_argument("--store-url", default="", help=argparse.SUPPRESS)  # internal: with --one-in
    parser.add_argument("--one-in", type=Path, help=argparse.SUPPRESS)  # internal: time one size in this folder
    args = parser.parse_args()
    if args.one_in:
        print(json.dumps(run_once(args.sizes[0], args.one_in, args.task_runner, args.floor_runs, args.store_url)))
        return
    print(f"task runner: {args.task_runner}; store: {'PostgreSQL' if args.postgres else 'SQLite'}")
    print(
        f"{'signups':>9} {'floor s':>8} {'leadq s':>8} {'x floor':>8} {'signups/s':>10} "
        f"{'floor MB':>9} {'leadq MB':>9} {'leads':>9}  slowest step"
    )
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="leadq-bench-") as tmp, contextlib.ExitStack() as stack:
        server = stack.enter_context(postgres_server(Path(tmp))) if args.postgres else None
        run_once(100, Path(tmp), floor_runs=1)  # warm-up: starts leadq's local Prefect server
        try:
            for n in args.sizes:
                # one process per size, so the peak memory is that size's alone
                command = [sys.executable, __file__, str(n), "--one-in", tmp, "--task-runner", args.task_runner]
                command += ["--floor-runs", str(args.floor_runs)]
                command += ["--store-url", new_database(server.url, f"leadq_{n}")] if server else []
                out = subprocess.run(command, capture_output=True, text=True, check=True)
                r = results[n] = json.loads(out.stdout.strip().splitlines()[-1])
                print(
                    f"{r['signups']:>9,} {r['floor_s']:>8} {r['wall_s']:>8} {r['x_floor']:>8.2f} "
                    f"{r['signups_per_s']:>10,} {r['floor_mb']:>9,} {r['peak_mb']:>9,} {r['leads']:>9,}  "
                    f"{r['slowest_step']}",
                    flush=True,
                )
        finally:
            env = {**os.environ, "PREFECT_HOME": str(Path(tmp) / "prefect")}
            subprocess.run([str(Path(sys.executable).with_name("leadq")), "server", "--stop"], env=env, check=False)
    if 1_000_000 in results and 2_000_000 in results:
        one, two = results[1_000_000]["wall_s"], results[2_000_000]["wall_s"]
        print(f"10M projected from 1M and 2M (linear): {two + 8 * (two - one):,.0f} s")


def postgres_server(folder: Path) -> PostgresServer:
    binaries = find_binaries()
    if binaries is None:
        raise SystemExit("--postgres: no PostgreSQL server is installed (apt-get install postgresql)")
    (folder / "postgres").mkdir()
    os.chmod(folder, 0o755)  # the server runs as the postgres user when this runs as root
    return PostgresServer(binaries, folder / "postgres")


if __name__ == "__main__":
    main()
