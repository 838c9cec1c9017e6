"""How long leadq takes before it does any work: `leadq --help`, and a run with nothing to do.

    uv run python bench/startup.py [--repeat 5]

Each figure is the median of `--repeat` wall times of the installed `leadq` command, in a
fresh LEADQ_HOME seeded by one untimed run of the bundled sample (so the no-op run finds
every signup already processed). The run uses Prefect's in-process API, as a scheduled run
on the embedded default does.
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


def timed(args: list[str], env: dict[str, str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([str(LEADQ), *args], env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per figure (the median is printed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="leadq-startup-") as work:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADQ__", "PREFECT_"))}
        env |= {
            "LEADQ_HOME": str(Path(work) / "home"),
            "LEADQ__ENRICHMENT__WEBSITE__ENABLED": "false",
            "LEADQ__ENRICHMENT__DNS__ENABLED": "false",
        }
        subprocess.run([str(LEADQ), "run", "--json"], env=env, check=True, capture_output=True)  # seeds the store
        help_s = timed(["--help"], env, args.repeat)
        noop_s = timed(["run", "--json"], env, args.repeat)
    print(f"{'what':<28}{'median s':>10}")
    print(f"{'leadq --help':<28}{help_s:>10.2f}")
    print(f"{'leadq run (nothing to do)':<28}{noop_s:>10.2f}")


if __name__ == "__main__":
    main()
