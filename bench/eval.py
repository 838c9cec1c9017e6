"""Time `leadq eval` and `leadq calibrate` on N labelled signups (the golden generator, rules mode).

    uv run python bench/eval.py 100000

Each command runs as a user would run it (a fresh process, the shipped config); prints wall
time, peak memory and the headline figures.
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
from golden import generate


def timed(command: list[str], env: dict[str, str]) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - started, json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sizes", type=int, nargs="+", help="labelled rows, e.g. 100000")
    args = parser.parse_args()
    leadq = str(Path(sys.executable).with_name("leadq"))
    print(f"{'rows':>9} {'command':<10} {'wall s':>7} {'peak MB':>8}  figures")
    with tempfile.TemporaryDirectory(prefix="leadq-bench-eval-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEADQ__")} | {"LEADQ_HOME": f"{tmp}/home"}
        for n in args.sizes:
            path = Path(tmp) / f"labelled-{n}.csv"
            generate(n).write_csv(path)
            wall, m = timed([leadq, "eval", str(path), "--json"], env)
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            print(f"{n:>9,} {'eval':<10} {wall:>7.1f} {peak:>8,.0f}  ROC AUC {m['roc_auc']}, F1 {m['f1']}", flush=True)
            out = Path(tmp) / "icp.calibrated.yaml"
            wall, h = timed(
                [leadq, "calibrate", str(path), "--outcome", "label_qualified", "--out", str(out), "--json"], env
            )
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            print(
                f"{n:>9,} {'calibrate':<10} {wall:>7.1f} {peak:>8,.0f}  held-out ROC AUC: active "
                f"{h['auc_active_icp']}, tuned LR {h['auc_logistic_regression']}, calibrated "
                f"{h['auc_calibrated_icp']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
