"""`leadq serve` against a real `prefect server start`: deployments, schedules, artifacts, a suspended review."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import requests
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from connectors.store import Store
from tests.conftest import REPO, offline_settings

LEADQ = Path(sys.executable).with_name("leadq")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(what: str, check: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout_s} s")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A Prefect server and `leadq serve` in their own processes, with a config that holds one account's leads."""
    root = tmp_path_factory.mktemp("serve")
    config = root / "config"
    shutil.copytree(REPO / "config", config)
    offline_settings(config)
    routing = config / "routing.yaml"
    routing.write_text(
        routing.read_text().replace("accounts: {}\n", "accounts:\n  northwind.io: {approval_required: true}\n")
    )
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADQ", "PREFECT_"))}
    env |= {
        "LEADQ_CONFIG_DIR": str(config),
        "LEADQ_HOME": str(root / "home"),
        "CREWAI_DISABLE_TELEMETRY": "true",
        "OTEL_SDK_DISABLED": "true",
        "LEADQ__RUN__SCHEDULE_CRON": "*/5 * * * *",
        "LEADQ__SLA__SCHEDULE_CRON": "0 0 1 1 *",  # registered, never due while the test runs
    }
    server_env = env | {
        "PREFECT_HOME": str(root / "server"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
    }
    logs = root / "logs"
    logs.mkdir()
    server_log, serve_log = (logs / "server.log").open("w"), (logs / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=server_env,
        stdout=server_log,
        stderr=subprocess.STDOUT,
    )
    serving = None
    try:
        _wait("the Prefect server answered", lambda: _healthy(url), 120)
        serving = subprocess.Popen(
            [str(LEADQ), "serve"],
            cwd=REPO,
            env=env | {"PREFECT_API_URL": url},
            stdout=serve_log,
            stderr=subprocess.STDOUT,
        )
        with temporary_settings(updates={PREFECT_API_URL: url}), get_client(sync_client=True) as client:
            _wait("four deployments registered", lambda: len(client.read_deployments()) == 4, 120)
            yield {"client": client, "store": Store(f"sqlite:///{root / 'home' / 'leadq.db'}"), "logs": logs}
    finally:
        for process in (serving, server):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
        server_log.close()
        serve_log.close()


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=2).ok
    except requests.RequestException:
        return False


def test_serve_shows_three_deployments_with_their_schedules(served: dict[str, Any]) -> None:
    client: SyncPrefectClient = served["client"]
    deployments = {d.name: d for d in client.read_deployments()}
    assert set(deployments) == {"qualify-signups", "backfill-signups", "review-leads", "check-sla"}
    crons = [s.schedule.cron for s in deployments["qualify-signups"].schedules]  # type: ignore[union-attr]
    assert crons == ["*/5 * * * *"]  # the setting, here from LEADQ__RUN__SCHEDULE_CRON
    sla = [s.schedule.cron for s in deployments["check-sla"].schedules]  # type: ignore[union-attr]
    assert sla == ["0 0 1 1 *"]  # [sla] schedule_cron, here from LEADQ__SLA__SCHEDULE_CRON
    assert deployments["backfill-signups"].schedules == [] and deployments["review-leads"].schedules == []
    schema = deployments["backfill-signups"].parameter_openapi_schema or {}
    fields = schema.get("properties", {})
    assert list(fields) == ["start", "end", "chunk_days", "source", "dry_run"]  # one form field each
    assert fields["chunk_days"]["description"].startswith("Days per chunk")  # words for an operator
    qualify = deployments["qualify-signups"].parameter_openapi_schema or {}
    assert list(qualify.get("properties", {})) == ["source", "dry_run", "refresh_enrichment"]

    def scheduled() -> list[Any]:
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployments["qualify-signups"].id])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
            ),
        )

    runs = _wait("the server's scheduler created qualify-signups runs from the cron", scheduled, 120)
    starts = sorted(r.expected_start_time for r in runs if r.expected_start_time is not None)
    assert len(starts) >= 2 and all(t.minute % 5 == 0 and t.second == 0 for t in starts)
    assert all(later - earlier >= timedelta(minutes=5) for earlier, later in pairwise(starts))


def test_a_served_run_publishes_its_artifacts_and_a_review_suspends_and_resumes(served: dict[str, Any]) -> None:
    client: SyncPrefectClient = served["client"]
    run = run_deployment("qualify-signups/qualify-signups", timeout=300, poll_interval=1)
    assert run.state is not None and run.state.is_completed(), (served["logs"] / "serve.log").read_text()[-3000:]
    artifacts = client.read_artifacts(
        artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
    )
    assert {"qualify-signups-summary", "qualify-signups-report"} <= {a.key for a in artifacts}
    store: Store = served["store"]
    assert sorted(store.reviews("pending")["email"]) == ["j.chen@northwind.io", "maria.lopez@northwind.io"]

    review = run_deployment("review-leads/review-leads", parameters={"limit": 1}, timeout=0)
    suspended = _wait("the review run suspended", lambda: _paused(client, review.id), 180)
    assert suspended.state.name == "Suspended"
    resume = {"decision": "approve", "tier": "B", "queue": "inbound-emea", "reason": "EU subsidiary", "reviewer": "ops"}
    from prefect.flow_runs import resume_flow_run

    resume_flow_run(review.id, run_input=resume)
    finished = _wait("the review run finished", lambda: _final(client, review.id), 300)
    assert finished.state.is_completed(), (served["logs"] / "serve.log").read_text()[-3000:]
    server_errors = [line for line in (served["logs"] / "server.log").read_text().splitlines() if "ERROR" in line]
    assert server_errors == []
    decided = store.reviews("approved")
    assert decided["email"].to_list() == ["j.chen@northwind.io"] and decided["decided_by"][0] == "ops"
    row = store.read(
        "select a.tier, a.method, s.queue from assessments a join assignments s using (email) "
        "where email = 'j.chen@northwind.io'"
    ).row(0)
    assert row == ("B", "review", "inbound-emea")
    assert store.read("select who, why from labels").row(0) == ("ops", "EU subsidiary")


def _paused(client: SyncPrefectClient, run_id: Any) -> Any:
    run = client.read_flow_run(run_id)
    return run if run.state and run.state.is_paused() else None


def _final(client: SyncPrefectClient, run_id: Any) -> Any:
    run = client.read_flow_run(run_id)
    return run if run.state and run.state.is_final() else None
