"""The qualify-signups flow end to end under Prefect's test harness."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from prefect import task
from prefect.artifacts import Artifact
from sqlalchemy.engine import make_url

from connectors.settings import load_settings
from connectors.store import Store
from connectors.store.export import export_leads
from flows import steps
from flows.qualify import qualify_signups

pytestmark = pytest.mark.usefixtures("prefect_api")


def _store() -> Store:
    return Store(load_settings().store_url)


def _run(**params: Any) -> dict[str, Any]:
    return qualify_signups(**params)


def test_sample_runs_end_to_end_and_publishes_artifacts(config_dir: Path) -> None:
    summary = _run()
    assert (summary["processed"], summary["rejected"], summary["duplicates"]) == (30, 2, 1)
    assert summary["leads"] == 27
    assert sum(summary["by_tier"].values()) == 27
    assert summary["qualified"] == summary["by_tier"].get("A", 0) + summary["by_tier"].get("B", 0)
    assert summary["by_tier"]["disqualified"] == 3
    counts = _store().counts()
    assert counts["leads"] == 27 and counts["dead_letters"] == 2 and counts["assignments"] == 27
    reasons = _store().read("select reason from dead_letters order by row_number")["reason"].to_list()
    assert reasons == ["email 'not-an-email' is not valid: expected name@domain.tld", "email is empty"]
    artifact = Artifact.get("qualify-signups-report")
    assert artifact is not None and "| processed | rejected |" in str(artifact.data)
    assert Artifact.get("qualify-signups-summary") is not None


def test_second_run_processes_nothing_and_changes_nothing(config_dir: Path) -> None:
    _run()
    before = _store().counts()
    exported = export_leads(_store())
    summary = _run()
    assert summary["processed"] == 0 and summary["leads"] == 0
    after = _store().counts()
    assert {k: v for k, v in after.items() if k != "runs"} == {k: v for k, v in before.items() if k != "runs"}
    assert export_leads(_store()).drop("assessed_at").equals(exported.drop("assessed_at"))


def test_new_signups_appended_later_are_picked_up(config_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "signups.csv"
    rows = pl.read_csv(config_dir / "data" / "sample_signups.csv", infer_schema=False)
    rows.head(10).write_csv(path)
    assert _run(source=str(path))["processed"] == 10
    rows.write_csv(path)
    assert _run(source=str(path))["processed"] == 20
    assert _store().counts()["leads"] == 27


def test_crash_between_sync_and_commit_is_redone_without_duplicates(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LEADQ__RUN__BATCH_SIZE", "10")

    @task(name="commit")
    def crash(*_args: Any) -> None:
        raise RuntimeError("machine lost after the CRM write")

    original = steps.commit_step
    monkeypatch.setattr(steps, "commit_step", crash)
    with pytest.raises(RuntimeError, match="machine lost"):
        _run()
    assert _store().counts()["leads"] > 0  # the first batch reached the CRM
    assert _store().read("select status from runs")["status"].to_list() == ["failed"]
    monkeypatch.setattr(steps, "commit_step", original)
    summary = _run()
    assert summary["processed"] == 30  # the uncommitted batch was redone, not skipped
    redone = export_leads(_store())

    monkeypatch.setenv("LEADQ_HOME", str(tmp_path / "clean"))
    _run()
    clean = export_leads(_store())
    assert redone.height == clean.height == 27
    columns = ["email", "score", "tier", "queue", "owner"]
    assert redone.select(columns).sort("email").equals(clean.select(columns).sort("email"))
    monkeypatch.setenv("LEADQ_HOME", str(tmp_path / "home"))


def test_dry_run_writes_nothing(config_dir: Path) -> None:
    summary = _run(dry_run=True)
    assert summary["processed"] == 30 and summary["dry_run"] is True
    assert not _store().exists()


def test_bad_rows_never_lose_valid_ones(config_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "messy.csv"
    huge = "y" * (10 * 1024 * 1024)
    path.write_bytes(
        b"email,first_name,company_name,signed_up_at,favourite_colour\n"
        b"ana@northwind.io,Ana,Northwind,2026-11-01T10:00:00Z,blue\n"
        b"broken@@,Bad,Nope,2026-11-01T10:01:00Z,red\n"
        b"jos\xe9@acme,Jose,Acme,2026-11-01T10:02:00Z,green\n"
        + f"big@northwind.io,Big,{huge},2026-11-01T10:03:00Z,grey\n".encode()
        + b"bo@acmecloud.com,Bo\xff,Acme Cloud,2026-11-01T10:04:00Z,\n"
        b"cy@acmecloud.com,Cy,Acme Cloud,last tuesday,pink\n"
    )
    summary = _run(source=str(path))
    assert (summary["processed"], summary["leads"], summary["rejected"]) == (6, 2, 4)
    leads = _store().read("select email, signals from leads order by email")
    assert leads["email"].to_list() == ["ana@northwind.io", "bo@acmecloud.com"]
    assert '"favourite_colour":"blue"' in leads["signals"][0]
    reasons = _store().read("select row_number, reason from dead_letters order by row_number").rows()
    assert [r[0] for r in reasons] == [3, 4, 5, 7]  # lines of the file; the header is line 1
    assert "field 'company_name' is 10485760 characters long" in reasons[2][1]
    assert "signed_up_at 'last tuesday'" in reasons[3][1]


def test_task_runs_are_named_after_their_batch(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    monkeypatch.setenv("LEADQ__RUN__BATCH_SIZE", "12")
    summary = _run()
    step_names = ("prepare", "enrich", "score", "review", "route", "sync", "commit")
    expected = {f"{step} batch {n}" for step in step_names for n in (1, 2, 3)}
    names: set[str] = set()
    deadline = time.monotonic() + 120  # Prefect records task runs from their events, a little after they ran
    with get_client(sync_client=True) as client:
        while not expected <= names and time.monotonic() < deadline:
            time.sleep(0.5)
            flow_run = FlowRunFilter(id=FlowRunFilterId(any_=[UUID(summary["run_id"])]))
            names = {r.name for r in client.read_task_runs(flow_run_filter=flow_run)}
    assert expected <= names, sorted(expected - names)


def test_flows_send_prefects_heartbeats_only_when_configured(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventResourceFilter

    from flows.console import heartbeats

    with heartbeats(load_settings().runtime):  # flow_heartbeats = false, as shipped
        quiet = _run()["run_id"]
    monkeypatch.setenv("LEADQ__RUNTIME__FLOW_HEARTBEATS", "true")
    with heartbeats(load_settings().runtime):
        beating = _run()["run_id"]
    events: dict[str, set[str]] = {quiet: set(), beating: set()}
    resources = {f"prefect.flow-run.{run_id}": run_id for run_id in events}
    deadline = time.monotonic() + 120  # Prefect stores events a little after they happen
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline and not all("prefect.flow-run.Completed" in seen for seen in events.values()):
            time.sleep(0.5)
            page = client.read_events(filter=EventFilter(resource=EventResourceFilter(id=list(resources))), limit=50)
            for event in page.events:
                events[resources[event.resource.id]].add(event.event)
    assert "prefect.flow-run.Completed" in events[quiet]
    assert "prefect.flow-run.heartbeat" not in events[quiet]
    assert "prefect.flow-run.heartbeat" in events[beating]


def test_a_signup_without_evidence_is_neither_qualified_nor_given_an_owner(config_dir: Path, tmp_path: Path) -> None:
    # as `leadq calibrate` writes it: the points leads can reach map onto 0..100, so no evidence lands mid-scale
    icp = config_dir / "icp.yaml"
    icp.write_text(icp.read_text() + "\npoints_floor: -70\npoints_range: 100\n")
    path = tmp_path / "one.csv"
    path.write_text("email,signed_up_at\nnobody123@gmail.com,2026-11-01T10:00:00Z\n")
    summary = _run(source=str(path))
    assert summary["leads"] == 1 and summary["qualified"] == 0
    lead = export_leads(_store()).row(0, named=True)
    assert (lead["score"], lead["confidence"]) == (65, 0.1)  # tier B by score alone
    assert (lead["tier"], lead["queue"], lead["owner"]) == ("C", "nurture", None)
    assert lead["reasons"].startswith("not enough evidence (confidence 0.1 < 0.3)")


def test_a_later_lead_of_an_owned_company_goes_to_the_same_owner(config_dir: Path, tmp_path: Path) -> None:
    first = tmp_path / "first.csv"
    header = "email,job_title,country,seats_requested,signed_up_at\n"
    first.write_text(
        header
        + "vp@northwind.io,VP Sales,US,30,2026-11-01T10:00:00Z\nvp@acmecloud.com,VP Sales,US,30,2026-11-01T10:01:00Z\n"
    )
    _run(source=str(first))
    owners = {r["email"]: r for r in export_leads(_store()).to_dicts()}
    northwind_owner = owners["vp@northwind.io"]["owner"]
    assert northwind_owner is not None and owners["vp@northwind.io"]["routing_reason"].startswith("rotation of ")
    later = tmp_path / "later.csv"
    later.write_text(header + "cro@northwind.io,CRO,US,30,2026-11-02T10:00:00Z\n")
    _run(source=str(later))
    lead = {r["email"]: r for r in export_leads(_store()).to_dicts()}["cro@northwind.io"]
    # the rotation would have given the next SDR of inbound-na; the account keeps its owner instead
    assert (lead["owner"], lead["routing_reason"]) == (northwind_owner, "account owner of northwind.io")


def test_a_free_mail_lead_that_typed_an_owned_company_goes_to_its_account_owner(
    config_dir: Path, tmp_path: Path
) -> None:
    routing = config_dir / "routing.yaml"  # a free-mail lead scores C: here C leads are worked by inbound-na too
    routing.write_text(routing.read_text().replace("{tiers: [C], queue: nurture}", "{tiers: [C], queue: inbound-na}"))
    first = tmp_path / "first.csv"
    header = "email,job_title,country,company_name,seats_requested,signed_up_at\n"
    first.write_text(header + "vp@northwind.io,VP Sales,US,,30,2026-11-01T10:00:00Z\n")
    _run(source=str(first))
    owner = export_leads(_store()).row(0, named=True)["owner"]
    assert owner is not None
    later = tmp_path / "later.csv"
    later.write_text(header + 'jane.doe@gmail.com,VP Sales,US,"Northwind Analytics, Inc.",30,2026-11-02T10:00:00Z\n')
    _run(source=str(later))
    lead = {r["email"]: r for r in export_leads(_store()).to_dicts()}["jane.doe@gmail.com"]
    assert lead["queue"] is not None and lead["owner"] == owner
    assert lead["routing_reason"] == "account owner of northwind.io (company name 'Northwind Analytics, Inc.')"


def test_a_run_leaves_no_write_ahead_log_for_the_next_to_replay(config_dir: Path) -> None:
    _run()
    database = Path(str(make_url(load_settings().store_url).database))
    assert database.exists()
    assert not Path(f"{database}-wal").exists(), "the run left the store's WAL behind"
