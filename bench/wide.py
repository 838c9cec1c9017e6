"""Time `leadq run --source` on wide files: the cost must grow with the cells, not columns squared.

    uv run python bench/wide.py 1000 2500 5000

Each file has 300 signups and N extra product-signal columns (5,000 columns is about
2.9 MB), written under bench/out/. Each run is in a fresh LEADQ_HOME with Prefect's
state shared and warmed once; prints wall time and time per million cells.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import servers_stopped

ROWS = 300
OUT = Path(__file__).resolve().parent / "out"


def wide_file(columns: int) -> Path:
    path = OUT / f"wide-{columns}.csv"
    header = ",".join(["email", "signed_up_at", *(f"signal_{i}" for i in range(columns))])
    body = "".join(
        f"user{r}@company{r % 40}.com,2026-03-01T09:{r % 60:02d}:00Z,"
        + ",".join(str(r % 7) for _ in range(columns))
        + "\n"
        for r in range(ROWS)
    )
    path.write_text(header + "\n" + body)
    return path


def timed_run(path: Path, work: Path, name: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADQ__")}
    env |= {"LEADQ_HOME": str(work / name), "PREFECT_HOME": str(work / "prefect")}
    leadq = Path(sys.executable).with_name("leadq")
    started = time.perf_counter()
    subprocess.run([leadq, "run", "--source", str(path), "--json"], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main(sizes: list[int]) -> None:
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="leadq-wide-") as folder, servers_stopped(folder):
        work = Path(folder)
        timed_run(wide_file(10), work, "warmup")
        print(f"{'columns':>8} {'MB':>6} {'seconds':>8} {'s per M cells':>14}")
        for columns in sizes:
            path = wide_file(columns)
            seconds = timed_run(path, work, f"c{columns}")
            cells = ROWS * (columns + 2)
            print(f"{columns:>8} {path.stat().st_size / 1e6:>6.1f} {seconds:>8.1f} {seconds / cells * 1e6:>14.1f}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 2500, 5000])
