"""Every row accounted for: the ways a run could lose a lead, or overwrite newer data with older
data, without a crash and with exit code 0; and the ledger that shows where each row went."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from prefect import task
from prefect.artifacts import Artifact
from typer.testing import CliRunner

from connectors.errors import LedgerError, RetriableError
from connectors.settings import load_settings
from connectors.sources import Cursor
from connectors.store import Store
from connectors.store.export import export_leads
from flows import steps
from flows.backfill import backfill_signups
from flows.cli import app
from flows.qualify import qualify_signups
from tests.fake_hubspot import FakeHubSpot
from tests.flows.crm_helpers import write_signups

pytestmark = pytest.mark.usefixtures("prefect_api")
runner = CliRunner()
HEADER = "signup_id,email,job_title,company_name,country,signed_up_at,seats_requested\n"


def _store() -> Store:
    return Store(load_settings().store_url)


def _run(**params: Any) -> dict[str, Any]:
    return qualify_signups(**params)


def _balanced(summary: dict[str, Any]) -> bool:
    ledger = summary["ledger"]
    return ledger["processed"] == ledger["leads"] + ledger["duplicates"] + ledger["rejected"] + ledger["skipped_known"]


def test_a_far_future_signup_is_a_dead_letter_and_never_moves_the_watermark(config_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(
        HEADER
        + "s1,ana@northwind.io,VP Sales,Northwind,US,2026-11-01T10:00:00Z,10\n"
        + "s2,bo@northwind.io,VP Sales,Northwind,US,9999-12-31T00:00:00Z,10\n"
        + "s3,cy@northwind.io,VP Sales,Northwind,US,1970-01-01T00:00:00Z,10\n"
    )
    first = _run(source=str(path))
    assert (first["leads"], first["rejected"]) == (1, 2)
    reasons = _store().read("select row_number, reason from dead_letters order by row_number").rows()
    assert [r[0] for r in reasons] == [3, 4]
    assert all("is not plausible" in r[1] for r in reasons) and "9999-12-31" in reasons[0][1]
    watermark = _store().watermark(f"file:{path.resolve()}")
    assert watermark.signed_up_at is not None and watermark.signed_up_at.year == 2026
    with path.open("a") as f:  # a real signup arriving after the bad one is still picked up
        f.write("s4,dee@northwind.io,VP Sales,Northwind,US,2026-11-02T10:00:00Z,10\n")
    second = _run(source=str(path))
    assert second["leads"] == 1 and "dee@northwind.io" in _store().stored_signups(["dee@northwind.io"])["email"]
    assert second["rejected"] == 0 and second["skipped_known"] == 1  # the 9999 row is a known dead letter


def test_n_rejected_rows_are_n_dead_letters_even_sharing_an_id_or_having_none(config_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    shared = "".join(f"dup,not-an-email-{i},VP,X,US,2026-11-01T10:{i:02d}:00Z,1\n" for i in range(20))
    nothing = "".join(f",,Row {i},X,US,2026-11-01T11:{i:02d}:00Z,1\n" for i in range(9))
    twins = ",,Row,X,US,,1\n,,Row,X,US,,1\n"  # identical rows: still two rows of the file
    path.write_text(HEADER + shared + nothing + twins)
    summary = _run(source=str(path))
    assert summary["rejected"] == 31 and summary["processed"] == 31 and _balanced(summary)
    listed = runner.invoke(app, ["dead-letters", "list", "--json"])
    assert listed.exit_code == 0 and len(listed.stdout.strip().splitlines()) == 31
    again = _run(source=str(path))  # the undated twins are read again: known, not new dead letters
    assert (again["rejected"], again["skipped_known"]) == (0, 2) and _store().counts()["dead_letters"] == 31


def test_a_malformed_csv_row_is_a_dead_letter_naming_its_line(config_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(
        HEADER
        + "s1,ana@northwind.io,VP Sales,Northwind,US,2026-11-01T10:00:00Z,10\n"
        + "s2,bo@northwind.io,VP Sales,Northwind,US,2026-11-01T10:01:00Z,10,surplus\n"
        + 's3,cy@northwind.io,VP Sales,"Northwind,US,2026-11-01T10:02:00Z,10\n'
        + "s4,dee@northwind.io,VP Sales,North\rwind,US,2026-11-01T10:03:00Z,10\n"
        + "s5,eve@northwind.io,VP Sales,Northwind,US,2026-11-01T10:04:00Z,10\n"
    )
    result = runner.invoke(app, ["run", "--source", str(path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["leads"], summary["rejected"]) == (2, 3)
    letters = _store().read("select row_number, reason from dead_letters order by row_number").rows()
    assert [r[0] for r in letters] == [3, 4, 5]
    assert letters[0][1].startswith("malformed CSV at line 3: 8 fields where the header has 7")
    unreadable = tmp_path / "bad.parquet"
    unreadable.write_bytes(b"PAR1 not really")
    failed = runner.invoke(app, ["run", "--source", str(unreadable)])
    assert failed.exit_code == 2 and "bad.parquet: cannot be read as parquet" in failed.stderr
    assert "Traceback" not in failed.output


def test_a_requalified_lead_keeps_its_owner_and_a_disqualified_one_keeps_the_record(
    config_dir: Path, tmp_path: Path
) -> None:
    _run()
    before = _store().read("select email, queue, owner from assignments where owner is not null").sort("email")
    positions = _store().rotation_positions()
    moved, dropped = "priya@acmecloud.com", "noah.wilson@payfast.io"
    owners = dict(before.select("email", "owner").iter_rows())
    again = tmp_path / "again.csv"
    again.write_text(
        HEADER
        + f"s-2001,{moved},Data Analyst,Acme Cloud,US,2026-11-20T10:00:00Z,2\n"  # a weaker fit: another queue
        + f"s-2002,{dropped},Marketing Intern,PayFast,Canada,2026-11-20T11:00:00Z,1\n"  # a student: disqualified
    )
    _run(source=str(again))
    after = {row["email"]: row for row in _store().read("select * from assignments").to_dicts()}
    old_queue = dict(before.select("email", "queue").iter_rows())
    assert after[moved]["queue"] != old_queue[moved], "the test needs a lead whose queue changes"
    assert after[moved]["owner"] == owners[moved] and after[moved]["status"] == "active"
    assert after[dropped]["owner"] == owners[dropped] and after[dropped]["status"] == "disqualified"
    assert after[dropped]["queue"] is None
    assert _store().rotation_positions() == positions  # nobody took a turn


def test_a_backfill_never_overwrites_a_newer_signup(config_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    rows = [
        f"a{i},p{i}@northwind.io,Marketing Intern,Northwind,US,2026-11-0{1 + i % 3}T10:00:00Z,1\n" for i in range(9)
    ]
    newer = [f"b{i},p{i}@northwind.io,VP of Sales,Northwind,US,2026-11-20T10:00:00Z,40\n" for i in range(9)]
    path.write_text(HEADER + "".join(rows + newer))
    _run(source=str(path))
    clean = export_leads(_store()).select("email", "signed_up_at", "tier", "queue", "owner").sort("email")
    assert set(clean["tier"]) != {"disqualified"}  # the newer signups decided
    summary = backfill_signups(start="2026-11-01", end="2026-11-05", source=str(path))
    assert summary["skipped_known"] == 9 and summary["leads"] == 0
    after = export_leads(_store()).select("email", "signed_up_at", "tier", "queue", "owner").sort("email")
    assert after.equals(clean)
    outcomes = _store().read("select outcome, count(*) as n from signup_rows group by outcome order by outcome")
    assert outcomes.rows() == [("lead", 9), ("stale", 9)]  # a row read again keeps its latest outcome


def test_a_backfill_in_hubspot_mode_sends_no_older_data(hubspot: FakeHubSpot, tmp_path: Path) -> None:
    old = write_signups(tmp_path / "old.csv", 50)
    newer = pl.read_csv(old, infer_schema=False).with_columns(
        pl.col("signed_up_at").str.replace("2026-03-01", "2026-04-01"),
        pl.col("signup_id") + "-again",
        pl.lit("Chief Revenue Officer").alias("job_title"),
    )
    both = tmp_path / "both.csv"
    pl.concat([pl.read_csv(old, infer_schema=False), newer]).write_csv(both)
    _run(source=str(both))
    sent = {e: c.get("jobtitle") for e, c in hubspot.contacts().items()}
    writes = len(hubspot.requests)
    summary = backfill_signups(start="2026-03-01", end="2026-03-02", source=str(both))
    assert summary["skipped_known"] == 50
    assert {e: c.get("jobtitle") for e, c in hubspot.contacts().items()} == sent
    assert not [r for r in hubspot.requests[writes:] if "batch/upsert" in r.path]


def test_a_run_left_running_by_a_dead_process_is_marked_crashed(config_dir: Path) -> None:
    _run()
    _store().record_run({"run_id": "killed-1", "source_key": "x", "started_at": None, "status": "running"})
    _run()
    runs = {r["run_id"]: r for r in _store().read("select run_id, status, finished_at from runs").to_dicts()}
    assert runs["killed-1"]["status"] == "crashed" and runs["killed-1"]["finished_at"] is not None
    assert [r["status"] for k, r in runs.items() if k != "killed-1"] == ["completed", "completed"]


def test_the_owner_read_survives_a_storm_like_the_sync_and_a_failure_names_the_step(
    hubspot: FakeHubSpot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADQ__CRM__SYNC_RETRIES", "2")
    monkeypatch.setenv("LEADQ__CRM__SYNC_RETRY_DELAY_S", "[0, 0]")
    _run(source=str(write_signups(tmp_path / "a.csv", 20)))
    hubspot.storm_on, hubspot.storm = "batch/read", [503] * 7  # more than one request's 5 attempts
    assert _run(source=str(write_signups(tmp_path / "b.csv", 20, first=20)))["crm_written"] == 20
    hubspot.storm = [503] * 40
    more = write_signups(tmp_path / "c.csv", 20, first=40)
    with pytest.raises(RetriableError, match="route step: reading the lead owners from hubspot failed"):
        _run(source=str(more))
    hubspot.storm = []
    assert _run(source=str(more))["crm_written"] == 20 and len(hubspot.contacts()) == 60


def test_every_run_records_its_books(config_dir: Path) -> None:
    summary = _run()
    assert summary["ledger"] == {
        "processed": 30,
        "leads": 27,
        "duplicates": 1,
        "rejected": 2,
        "skipped_known": 0,
        "balanced": True,
    }
    row = _store().read("select processed, leads, duplicates, rejected, skipped_known from runs").to_dicts()[0]
    assert row == {"processed": 30, "leads": 27, "duplicates": 1, "rejected": 2, "skipped_known": 0}
    report = Artifact.get("qualify-signups-report")
    assert report is not None and "| 30 | 27 | 1 | 2 | 0 | yes |" in str(report.data)


def test_a_run_whose_books_do_not_balance_fails_before_writing_the_batch(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = steps.prepare_step.fn

    @task(name="prepare")
    def loses_a_lead(*args: Any) -> Any:
        prepared, skipped = original(*args)
        return type(prepared)(prepared.leads.slice(1), prepared.rejects, prepared.duplicates, prepared.seen), skipped

    monkeypatch.setattr(steps, "prepare_step", loses_a_lead)
    with pytest.raises(LedgerError, match="do not balance: processed 30, leads 26, duplicates 1, rejected 2"):
        _run()
    assert _store().counts()["leads"] == 0 and _store().watermark("x") == Cursor()
    assert _store().read("select status from runs")["status"].to_list() == ["failed"]


def test_a_backfill_keeps_a_ledger_per_chunk_and_a_table_of_chunks(config_dir: Path) -> None:
    summary = backfill_signups(start="2026-11-02", end="2026-11-03")
    assert summary["processed"] == 30 and _balanced(summary)
    chunks = _store().read("select processed, leads, rejected, parent_run from runs where parent_run is not null")
    assert chunks.height == 2 and chunks["processed"].sum() == 30
    artifact = Artifact.get("backfill-signups-summary")
    assert artifact is not None and "| 2026-11-02 |" in str(artifact.data) and "| 2026-11-03 |" in str(artifact.data)
