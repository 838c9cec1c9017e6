"""`[runtime] task_runner = "dask"`: batches prepared, enriched and scored on a local two-worker Dask cluster."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

from connectors.settings import load_settings
from connectors.store import Store
from connectors.store.export import export_leads
from flows.backfill import backfill_signups
from tests.flows.crm_helpers import write_companies, write_signups

pytestmark = pytest.mark.usefixtures("prefect_api")

RUN_COLUMNS = ("assessed_at",)  # when it happened differs; what was decided must not


def _backfill(path: Path) -> tuple[dict[str, object], pl.DataFrame, pl.DataFrame]:
    summary = backfill_signups(start="2026-03-01", end="2026-03-02", source=str(path))
    store = Store(load_settings().store_url)
    audit = store.read("select email, kind, detail from audit_events order by email, kind, detail")
    return summary, export_leads(store).drop(RUN_COLUMNS).sort("email"), audit


def test_a_backfill_on_two_dask_workers_equals_the_single_process_run(
    config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_signups(tmp_path / "signups.csv", 400)  # on 1 March, a minute apart
    monkeypatch.setenv("LEADQ__ENRICHMENT__REFERENCE__PATH", str(write_companies(tmp_path / "companies.csv")))
    monkeypatch.setenv("LEADQ__RUN__BATCH_SIZE", "25")  # 16 batches in the day's chunk, for two workers to share
    single, single_leads, single_audit = _backfill(path)

    shutil.rmtree(tmp_path / "home")
    monkeypatch.setenv("LEADQ__RUNTIME__TASK_RUNNER", "dask")
    monkeypatch.setenv("LEADQ__RUNTIME__DASK_WORKERS", "2")
    on_dask, dask_leads, dask_audit = _backfill(path)

    assert single_leads.height == 400 and single_leads["industry"].null_count() < 400
    for key in ("chunks_run", "processed", "leads", "qualified", "rejected"):
        assert on_dask[key] == single[key], key
    assert dask_leads.equals(single_leads)
    assert dask_audit.equals(single_audit)
    with get_client(sync_client=True) as client:  # the 16 batches really ran as Dask task runs
        on_workers = client.read_task_runs(task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="decide-")))
    assert len(on_workers) == 16 and all(run.state and run.state.is_completed() for run in on_workers)
