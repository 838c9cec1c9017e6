"""backfill-signups: day chunks as subflows, skipped when done, idempotent with scheduled runs."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from connectors.settings import load_settings
from connectors.sources import FileSource
from connectors.store import Store
from flows import backfill as backfill_module
from flows.backfill import backfill_signups, chunks
from flows.cli import app
from tests.flows.crm_helpers import run

pytestmark = pytest.mark.usefixtures("prefect_api")


def _thirty_days(path: Path) -> Path:
    """300 signups, ten a day from 1 to 30 April 2026."""
    rows = [
        {
            "signup_id": f"b-{i}",
            "email": f"user{i}@firm{i % 40}.com",
            "first_name": "Sam",
            "last_name": f"Doe{i}",
            "job_title": "Head of Sales",
            "company_name": f"Firm {i % 40}",
            "country": "US",
            "signed_up_at": (datetime(2026, 4, 1) + timedelta(hours=2.4 * i)).isoformat() + "Z",
        }
        for i in range(300)
    ]
    pl.DataFrame(rows).write_csv(path)
    return path


def test_chunks_cover_the_range_end_inclusive() -> None:
    days = chunks(date(2026, 4, 1), date(2026, 4, 30), 1)
    assert len(days) == 30 and days[0] == (datetime(2026, 4, 1), datetime(2026, 4, 2))
    assert days[-1][1] == datetime(2026, 5, 1)
    weeks = chunks(date(2026, 4, 1), date(2026, 4, 30), 7)
    assert len(weeks) == 5 and weeks[-1] == (datetime(2026, 4, 29), datetime(2026, 5, 1))


def test_an_interrupted_backfill_resumes_without_redoing_chunks_or_duplicating(
    config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = str(_thirty_days(tmp_path / "april.csv"))
    params: dict[str, Any] = {"start": date(2026, 4, 1), "end": date(2026, 4, 30), "source": source}
    real = backfill_module.qualify
    calls: list[Any] = []

    def interrupted(*args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(kwargs["window"])
        if len(calls) == 16:
            raise KeyboardInterrupt("the worker was stopped")
        return real(*args, **kwargs)

    monkeypatch.setattr(backfill_module, "qualify", interrupted)
    with pytest.raises(KeyboardInterrupt):
        backfill_signups(**params)
    store = Store(load_settings().store_url)
    assert store.counts()["leads"] == 150

    calls.clear()
    summary = backfill_signups(**params)
    assert summary["chunks_skipped"] == 15 and summary["chunks_run"] == 15
    assert calls[0][0] == datetime(2026, 4, 16)
    counts = store.counts()
    assert counts["leads"] == 300 and counts["assessments"] == 300 and counts["assignments"] == 300
    assert counts["audit_events"] == 300
    # the live watermark was never moved: a scheduled run still sees every signup, and adds nothing new
    assert store.watermark(FileSource(Path(source), {}).key).is_start
    scheduled = run(source=source)
    assert scheduled["processed"] == 300
    assert store.counts()["leads"] == 300 and store.counts()["audit_events"] == 300

    # a third backfill has nothing left to do
    assert backfill_signups(**params)["chunks_run"] == 0


def test_the_cli_backfill_prints_chunks_and_refuses_reversed_dates(config_dir: Path, tmp_path: Path) -> None:
    source = str(_thirty_days(tmp_path / "april.csv"))
    runner = CliRunner()
    bad = runner.invoke(app, ["backfill", "--start", "2026-04-10", "--end", "2026-04-01", "--source", source])
    assert bad.exit_code == 2 and "before --start" in bad.stderr
    result = runner.invoke(
        app,
        [
            "backfill",
            "--start",
            "2026-04-01",
            "--end",
            "2026-04-07",
            "--chunk-days",
            "7",
            "--source",
            source,
            "--dry-run",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert '"chunks": 1' in result.stdout and '"processed": 70' in result.stdout
    assert not Store(load_settings().store_url).exists()
