"""Time `leadq run --source` end to end on the embedded default, for N synthetic signups.

    uv run python bench/run.py 10000 100000 1000000
    uv run python bench/run.py 100000 --task-runner dask     # batches on a local 2-worker Dask cluster

Each size runs in a fresh LEADQ_HOME (a new SQLite store), as a user would run it,
with Prefect's local API; prints wall time, signups per second and peak memory.
Prefect's own database is created once by an untimed warm-up run (on a fresh machine
that first-ever run adds Prefect's schema migration, about 7 s here), so the figures
are what every later scheduled run costs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate


def run_once(n: int, work: Path, task_runner: str = "threads") -> dict[str, float]:
    """One timed `leadq run --source` on n signups; Prefect state is shared under `work`."""
    signups, reference = generate(n)
    folder = work / f"n{n}"
    folder.mkdir(parents=True, exist_ok=True)
    signups.write_csv(folder / "signups.csv")
    reference.write_csv(folder / "companies.csv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADQ__")}
    env |= {
        "LEADQ_HOME": str(folder / "home"),
        "PREFECT_HOME": str(work / "prefect"),
        "LEADQ__ENRICHMENT__REFERENCE__PATH": str(folder / "companies.csv"),
        "LEADQ__RUNTIME__TASK_RUNNER": task_runner,
    }
    leadq = Path(sys.executable).with_name("leadq")
    started = time.perf_counter()
    proc = subprocess.run(
        [str(leadq), "run", "--source", str(folder / "signups.csv"), "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"leadq run failed for n={n}:\n{proc.stderr[-3000:]}")
    summary = json.loads(proc.stdout)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "signups": n,
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
    parser.add_argument("sizes", type=int, nargs="+", help="numbers of signups, e.g. 10000 100000")
    parser.add_argument(
        "--task-runner",
        choices=["threads", "dask"],
        default="threads",
        help="[runtime] task_runner for the timed runs (dask: a local cluster of dask_workers)",
    )
    parser.add_argument("--one-in", type=Path, help=argparse.SUPPRESS)  # internal: time one size in this folder
    args = parser.parse_args()
    if args.one_in:
        print(json.dumps(run_once(args.sizes[0], args.one_in, args.task_runner)))
        return
    print(f"task runner: {args.task_runner}")
    print(f"{'signups':>9} {'wall s':>7} {'signups/s':>10} {'peak MB':>8} {'leads':>8} {'rejected':>8}  slowest step")
    with tempfile.TemporaryDirectory(prefix="leadq-bench-") as tmp:
        run_once(100, Path(tmp))  # warm-up: creates Prefect's database
        for n in args.sizes:
            # one process per size, so the peak memory is that size's alone
            command = [sys.executable, __file__, str(n), "--one-in", tmp, "--task-runner", args.task_runner]
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"{r['signups']:>9,} {r['wall_s']:>7} {r['signups_per_s']:>10,} {r['peak_mb']:>8,} "
                f"{r['leads']:>8,} {r['rejected']:>8,}  {r['slowest_step']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
