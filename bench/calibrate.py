"""Calibrate on a wide labelled set: N rows, about 200 one-hot features, against logistic regression and boosting.

    uv run python bench/calibrate.py            # 10,000 rows
    uv run python bench/calibrate.py 20000

The rows have a known shape: the shipped ICP's fields, ten text signals of 20 values each
(two of them matter), a U-shaped numeric signal and a rare category. `calibrate` runs in
this process (no pipeline around it) and prints its seconds, the one-hot feature count and
held-out ROC AUC of the active ICP, the tuned logistic regression, gradient boosting on the
same features and split, and the calibrated (additive, readable) ICP.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LEADQ_CONFIG_DIR", str(ROOT / "config"))

from crew.calibrate import calibrate, design, learn_levels, with_signals  # noqa: E402
from crew.icp import load_icp  # noqa: E402

INDUSTRIES = ["computer software", "internet", "financial services", "retail", "e-learning", "biotechnology"]


def labelled(n: int, seed: int = 11) -> pl.DataFrame:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        row: dict[str, object] = {
            "email": f"lead{i}@co{i}.io",
            "industry": rng.choice(INDUSTRIES) if rng.random() > 0.1 else None,
            "employees": int(math.exp(rng.uniform(1, 9))),
            "seniority": rng.choice(["c_level", "vp", "director", "manager", "individual"]),
            "function": rng.choice(["revops", "sales", "marketing", "engineering", "other"]),
            "email_type": rng.choice(["business"] * 8 + ["free", "role"]),
            "logins": rng.randint(0, 100),
        }
        for k in range(10):
            row[f"signal_{k}"] = f"v{rng.randint(0, 19)}"
        logit = -1.2 + (0.9 if row["industry"] in ("computer software", "internet") else 0.0)
        logit += 0.4 * math.log10(int(row["employees"]))  # type: ignore[call-overload]
        logit += 0.8 if row["seniority"] in ("c_level", "vp") else 0.0
        logit += 0.7 if row["signal_0"] in ("v1", "v2", "v3") else 0.0
        logit -= 0.6 if row["signal_1"] in ("v0", "v5") else 0.0
        logit += 0.7 if int(row["logins"]) < 15 or int(row["logins"]) > 85 else 0.0  # type: ignore[call-overload]
        logit -= 1.0 if row["industry"] is None else 0.0
        row["label_qualified"] = int(rng.random() < 1 / (1 + math.exp(-logit)))
        rows.append(row)
    return pl.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", type=int, nargs="?", default=10_000, help="labelled rows")
    args = parser.parse_args()
    icp = load_icp(ROOT / "config" / "icp.yaml")
    leads = labelled(args.n)
    signals = ["logins", *(f"signal_{k}" for k in range(10))]
    wide, _ = learn_levels(with_signals(icp, leads, signals), leads, 30)
    features = len(design(leads, wide)[1])
    started = time.perf_counter()
    result = calibrate(leads, icp, signals)
    seconds = time.perf_counter() - started
    h = result.holdout
    print(f"{args.n:,} rows, {features} one-hot features: calibrate {seconds:.1f} s")
    print(
        f"held-out ROC AUC: active ICP {h['auc_active_icp']}, logistic regression {h['auc_logistic_regression']}, "
        f"boosting {h['auc_boosting']}, calibrated ICP {h['auc_calibrated_icp']}"
    )


if __name__ == "__main__":
    main()
