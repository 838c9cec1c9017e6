"""Orchestration: the Prefect flows, their artifacts and the `leadq` CLI.

Importing this package sets safe process defaults before Prefect or CrewAI load:
no telemetry, and Prefect's local state under LEADQ_HOME. Anything already set in
the environment wins.
"""

from __future__ import annotations

import os
from pathlib import Path

from connectors.redact import install_log_scrubber


def _process_defaults() -> None:
    home = Path(os.environ.get("LEADQ_HOME") or ".leadq").expanduser().resolve()
    defaults = {
        "CREWAI_DISABLE_TELEMETRY": "true",
        "OTEL_SDK_DISABLED": "true",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # the in-process API needs no UI; `leadq server` turns it back on
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_HOME": str(home / "prefect"),
        # leadq's own loggers (leadq.crm, leadq.crew) reach the run's logs in Prefect
        "PREFECT_LOGGING_EXTRA_LOGGERS": "leadq",
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",  # the same code also runs outside a flow
        # Prefect's in-process API starts a server (and, in a fresh LEADQ_HOME, migrates its database)
        # before the first flow run. Its default 20 s is missed on a busy 2-core machine, and then
        # nothing is processed; a slow start is not a failure, so leadq waits up to 3 minutes.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    }
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)


_process_defaults()
install_log_scrubber()  # no log line of this process carries a secret
