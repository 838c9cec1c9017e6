"""Benchmarks run `leadq` in throwaway LEADQ_HOMEs; each starts its own local Prefect server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from generate import realistic

from flows import local_server


def leadq_json(env: dict[str, str], *args: str) -> dict[str, Any]:
    """`leadq ARGS --json` run with `env`: the summary it prints; or exit with the end of its stderr."""
    leadq = Path(sys.executable).with_name("leadq")
    done = subprocess.run([str(leadq), *args, "--json"], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"leadq {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout))


def realistic_run(n: int, folder: Path, prefect_home: Path | None = None) -> dict[str, str]:
    """Write n realistic signups (signups.csv) and the reference file they are enriched from
    (companies.csv) into `folder`; the environment of a `leadq run` on them: LEADQ_HOME in `folder`,
    PREFECT_HOME in `prefect_home` (default `folder`), and none of this shell's LEADQ__ settings or
    Prefect API address."""
    signups, reference = realistic(n)
    folder.mkdir(parents=True, exist_ok=True)
    signups.write_csv(folder / "signups.csv")
    reference.write_csv(folder / "companies.csv")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADQ__", "PREFECT_API"))}
    return env | {
        "LEADQ_HOME": str(folder / "home"),
        "PREFECT_HOME": str(prefect_home or folder / "prefect"),
        "LEADQ__ENRICHMENT__REFERENCE__PATH": str(folder / "companies.csv"),
    }


@contextmanager
def servers_stopped(root: str | Path) -> Iterator[None]:
    """At the end, stop every leadq local Prefect server started under `root`, so none outlives
    its folder (or keeps a core busy for the next measurement)."""
    try:
        yield
    finally:
        for state in Path(root).rglob(local_server.STATE_FILE):
            local_server.stop(state.parent)
