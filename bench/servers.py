"""Benchmarks run `leadq` in throwaway LEADQ_HOMEs; each starts its own local Prefect server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flows import local_server


@contextmanager
def servers_stopped(root: str | Path) -> Iterator[None]:
    """At the end, stop every leadq local Prefect server started under `root`, so none outlives
    its folder (or keeps a core busy for the next measurement)."""
    try:
        yield
    finally:
        for state in Path(root).rglob(local_server.STATE_FILE):
            local_server.stop(state.parent)
