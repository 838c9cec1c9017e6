"""Where a run's time goes: `leadq run --source` on N realistic signups under cProfile.

    uv run python bench/profile.py 1000000 [--top 15]

Writes bench/out/profile-N.prof (open it with `python -m pstats` or snakeviz) and prints the
time per pipeline step (the run summary's step_seconds) and the functions with the most time
of their own, in the flow's thread and the helper thread that decides the next batch beside it
(bench/profiled.py; their times add up, so the total exceeds the wall time). Step times
overlap the same way: prepare, enrich and score run while route and sync do.
"""

from __future__ import annotations

import argparse
import io
import json
import pstats
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import realistic_run

OUT = Path(__file__).resolve().parent / "out"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", type=int, help="number of signups")
    parser.add_argument("--top", type=int, default=15, help="functions to print")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    profile = OUT / f"profile-{args.n}.prof"
    leadq = Path(sys.executable).with_name("leadq")
    with tempfile.TemporaryDirectory(prefix="leadq-profile-") as tmp:
        work = Path(tmp)
        env = realistic_run(args.n, work)
        try:
            subprocess.run([str(leadq), "server"], env=env, check=True, capture_output=True)  # started, untimed
            command = [sys.executable, str(Path(__file__).with_name("profiled.py")), str(profile), str(leadq), "run"]
            done = subprocess.run(
                [*command, "--source", str(work / "signups.csv"), "--json"],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
        finally:
            subprocess.run([str(leadq), "server", "--stop"], env=env, check=False, capture_output=True)
    summary = json.loads(done.stdout)
    steps = ", ".join(f"{k} {v:.1f}" for k, v in summary["step_seconds"].items())
    print(f"{args.n:,} signups, {summary['duration_s']:.1f} s in the flow; seconds per step: {steps}")
    text = io.StringIO()
    stats = pstats.Stats(str(profile), stream=text)
    stats.sort_stats("tottime").print_stats(args.top)
    lines = text.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    print("\n".join(line.replace(str(Path(sys.prefix)), "<venv>") for line in lines[start - 1 :] if line.strip()))
    print(f"profile written to {profile}")


if __name__ == "__main__":
    main()
