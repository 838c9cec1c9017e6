"""How long leadq takes before it does any work: `--help`, first runs, and a run with nothing to do.

    uv run python bench/startup.py [--repeat 5]

In a fresh LEADQ_HOME, with the installed `leadq` command and the bundled sample (30 signups;
website and DNS enrichment off, as on a machine without internet):

- `leadq --help` (median of --repeat);
- the first run on a fresh machine (median, each in a new LEADQ_HOME): it starts leadq's local
  Prefect server, which creates its database, and then processes the sample;
- a first run on a fresh store while the server runs (median): what every later new store,
  or a run after `leadq server`, costs;
- a run with nothing to do (median): it answers from the store without starting a flow;
- the local Prefect server alone on a new home (median): from its start to its first answer.

Every server is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LEADQ = Path(sys.executable).with_name("leadq")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed(args: list[str], env: dict[str, str], repeat: int = 1, fresh_store: Path | None = None) -> float:
    times = []
    for i in range(repeat):
        run_env = env | ({"LEADQ__STORE__URL": f"sqlite:///{fresh_store}/store{i}.db"} if fresh_store else {})
        started = time.perf_counter()
        subprocess.run([str(LEADQ), *args], env=run_env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def fresh_machine(env: dict[str, str], work: Path, repeat: int) -> float:
    """The first run in a new LEADQ_HOME with no server running (median); the last one's server is kept."""
    times = []
    for i in range(repeat):
        if i:
            subprocess.run([str(LEADQ), "server", "--stop"], env=env, check=True, capture_output=True)
            env["LEADQ_HOME"] = str(work / f"home{i}")
        times.append(timed(["run", "--json"], env))
    return statistics.median(times)


def server_first_answer(work: Path, repeat: int) -> float:
    """Seconds from starting leadq's local Prefect server on a new home to its first answer (median)."""
    from flows import local_server

    times = []
    for i in range(repeat):
        home = work / f"server{i}"
        started = time.perf_counter()
        try:
            local_server.start_or_reuse(home)[0].wait_until_ready(300)
            times.append(time.perf_counter() - started)
        finally:
            local_server.stop(home)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per median figure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="leadq-startup-") as work:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADQ__", "PREFECT_"))}
        env |= {
            "LEADQ_HOME": str(Path(work) / "home"),
            "LEADQ__ENRICHMENT__WEBSITE__ENABLED": "false",
            "LEADQ__ENRICHMENT__DNS__ENABLED": "false",
        }
        try:
            help_s = timed(["--help"], env, args.repeat)
            first_s = fresh_machine(env, Path(work), args.repeat)
            fresh_store_s = timed(["run", "--json"], env, args.repeat, fresh_store=Path(work))
            noop_s = timed(["run", "--json"], env, args.repeat)
        finally:
            subprocess.run([str(LEADQ), "server", "--stop"], env=env, check=False, capture_output=True)
        server_s = server_first_answer(Path(work), args.repeat)
    rows = [
        ("leadq --help", help_s),
        ("first run, fresh machine", first_s),
        ("first run, server running", fresh_store_s),
        ("leadq run (nothing to do)", noop_s),
        ("server's first answer, new home", server_s),
    ]
    print(f"{'what':<32}{'seconds':>9}")
    for what, seconds in rows:
        print(f"{what:<32}{seconds:>9.2f}")


if __name__ == "__main__":
    main()
