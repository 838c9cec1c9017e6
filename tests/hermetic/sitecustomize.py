"""Loaded by every Python process the test suite starts (tests/conftest.py puts this folder first on
PYTHONPATH): the same loopback-only guard as the suite itself, so `leadq run`, `leadq serve` and the
Prefect server they talk to reach nothing past this machine either."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

if os.environ.get("HERMETIC_ESCAPE_LOG"):
    _spec = importlib.util.spec_from_file_location(
        "leadq_loopback_only", Path(__file__).parents[1] / "loopback_only.py"
    )
    if _spec is not None and _spec.loader is not None:
        _guard = importlib.util.module_from_spec(_spec)
        sys.modules["leadq_loopback_only"] = _guard
        _spec.loader.exec_module(_guard)
        _guard.in_subprocess = True
        _guard.install()
