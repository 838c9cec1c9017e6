"""Human review: held leads wait for a person; decisions override leadq's, are applied and kept as labels."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run
from typer.testing import CliRunner

from connectors.settings import load_settings
from connectors.store import Store
from flows.cli import app
from flows.qualify import qualify_signups
from flows.review import review_leads

pytestmark = pytest.mark.usefixtures("prefect_api")
runner = CliRunner()


def _store() -> Store:
    return Store(load_settings().store_url)


def _require_approval(config_dir: Path, *domains: str) -> None:
    routing = config_dir / "routing.yaml"
    accounts = "".join(f"  {d}: {{approval_required: true}}\n" for d in domains)
    routing.write_text(routing.read_text().replace("accounts: {}\n", f"accounts:\n{accounts}"))


def _row(store: Store, table: str, email: str) -> dict[str, Any]:
    rows = store.read(f"select * from {table} where email = '{email}'").to_dicts()
    assert len(rows) == 1, (table, email, rows)
    return rows[0]


def test_held_leads_wait_unrouted_and_an_override_is_applied_and_labelled(config_dir: Path) -> None:
    _require_approval(config_dir, "northwind.io")
    summary = qualify_signups()
    assert summary["held_for_review"] == 2 and summary["held_reasons"] == {"account requires approval": 2}
    store = _store()
    held = store.reviews("pending")
    assert sorted(held["email"]) == ["j.chen@northwind.io", "maria.lopez@northwind.io"]
    assert set(held["held_because"]) == {"account northwind.io requires approval"}
    assert store.read("select * from assignments where email like '%northwind.io'").is_empty()
    assert _row(store, "leads", "maria.lopez@northwind.io")["company_domain"] == "northwind.io"
    listed = runner.invoke(app, ["review", "list", "--json"])
    assert listed.exit_code == 0 and len(listed.stdout.splitlines()) == 2

    result = runner.invoke(
        app,
        [
            "review",
            "approve",
            "maria.lopez@northwind.io",
            "--tier",
            "B",
            "--queue",
            "inbound-emea",
            "--owner",
            "gray@example.com",
            "--reason",
            "EU entity signs",
            "--by",
            "rita",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["applied"] == 1 and json.loads(result.stdout)["pending"] == 1
    assessment = _row(store, "assessments", "maria.lopez@northwind.io")
    assert (assessment["tier"], assessment["method"]) == ("B", "review")
    assert assessment["reasons"].startswith("review by rita: EU entity signs")
    assignment = _row(store, "assignments", "maria.lopez@northwind.io")
    assert (assignment["queue"], assignment["owner"]) == ("inbound-emea", "gray@example.com")
    label = _row(store, "labels", "maria.lopez@northwind.io")
    assert (label["decision"], label["label_tier"], label["who"], label["why"]) == (
        "approved",
        "B",
        "rita",
        "EU entity signs",
    )
    review = _row(store, "reviews", "maria.lopez@northwind.io")
    assert review["status"] == "approved" and review["applied_run"]

    rejected = runner.invoke(app, ["review", "reject", "j.chen@northwind.io", "--reason", "a student", "--by", "rita"])
    assert rejected.exit_code == 0, rejected.stderr
    assessment = _row(store, "assessments", "j.chen@northwind.io")
    assert assessment["tier"] == "disqualified" and assessment["disqualified_by"] == "review by rita: a student"
    assert _row(store, "assignments", "j.chen@northwind.io")["queue"] is None
    assert store.reviews("pending").is_empty()

    # the decisions stand when the same signups are qualified again (a rerun from the start)
    store.set_state(f"watermark:file:{(config_dir / 'data' / 'sample_signups.csv').resolve()}", None)
    again = qualify_signups()
    assert again["held_for_review"] == 0 and again["by_method"]["review"] == 2
    assert _row(store, "assignments", "maria.lopez@northwind.io")["owner"] == "gray@example.com"
    assert store.read("select count(*) as n from labels")["n"][0] == 2


def test_bad_decisions_are_refused_with_the_reason_and_change_nothing(config_dir: Path) -> None:
    _require_approval(config_dir, "northwind.io")
    qualify_signups()
    unknown_queue = runner.invoke(
        app, ["review", "approve", "maria.lopez@northwind.io", "--queue", "vip", "--reason", "x"]
    )
    assert unknown_queue.exit_code == 2 and "queue 'vip' is not in routing.yaml" in unknown_queue.stderr
    bad_tier = runner.invoke(app, ["review", "approve", "maria.lopez@northwind.io", "--tier", "Z", "--reason", "x"])
    assert bad_tier.exit_code == 2 and "'Z' is not one of" in bad_tier.stderr  # typer's choice, named in --help
    not_held = runner.invoke(app, ["review", "reject", "priya@acmecloud.com", "--reason", "x"])
    assert not_held.exit_code == 2 and "not waiting for review: priya@acmecloud.com" in not_held.stderr
    assert _store().reviews("pending").height == 2 and _store().read("select * from labels").is_empty()


def test_every_decision_records_who_made_it(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import getpass

    _require_approval(config_dir, "northwind.io")
    qualify_signups()
    monkeypatch.delenv("USER", raising=False)  # the OS user is asked of the system, not of $USER
    blank = runner.invoke(app, ["review", "approve", "maria.lopez@northwind.io", "--by", "  ", "--reason", "fit"])
    assert blank.exit_code == 0, blank.output
    assert _row(_store(), "reviews", "maria.lopez@northwind.io")["decided_by"] == getpass.getuser()
    with pytest.raises(ValueError, match=r"no reviewer given for j\.chen@northwind\.io"):
        _store().decide([{"email": "j.chen@northwind.io", "decision": "approved", "who": " ", "why": "x"}])
    assert _row(_store(), "reviews", "j.chen@northwind.io")["status"] == "pending"


def test_autonomy_dial_holds_or_skips_each_action(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADQ__AUTONOMY__OWNER_ASSIGNMENT", "approve")
    summary = qualify_signups()
    store = _store()
    assigned = store.read("select * from assignments")
    # every lead whose queue has SDRs waits; nurture and disqualified leads go on without an owner
    assert summary["held_for_review"] > 0 and assigned["owner"].null_count() == assigned.height
    assert set(store.reviews("pending")["held_because"]) == {"owner_assignment is set to approve"}
    assert summary["held_for_review"] + assigned.height == summary["leads"]

    monkeypatch.setenv("LEADQ__AUTONOMY__OWNER_ASSIGNMENT", "off")
    monkeypatch.setenv("LEADQ_HOME", str(config_dir.parent / "home-off"))
    off = qualify_signups()
    store = _store()
    assert off["held_for_review"] == 0 and store.read("select * from assignments")["owner"].null_count() == off["leads"]
    assert store.rotation_positions() == {}


def test_a_paused_review_resumes_with_the_submitted_form(config_dir: Path) -> None:
    _require_approval(config_dir, "northwind.io")
    qualify_signups()
    outcome: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: outcome.update(review_leads(limit=1)))
    worker.start()
    paused = _wait_for_paused_run()
    with get_client(sync_client=True) as client:
        inputs = {i.key: i.value for i in client.filter_flow_run_input(paused, "paused-review-", 10, set())}
    description = next(v for k, v in inputs.items() if k.endswith("description"))
    assert "j.chen@northwind.io" in description and "account northwind.io requires approval" in description
    for blank in ("", "   "):  # Prefect drops a field's constraints when the form has initial data for it
        with pytest.raises(Exception, match=r"reviewer|[Vv]alidation"):
            resume_flow_run(paused, run_input={"decision": "approve", "reason": "strategic", "reviewer": blank})
    resume_flow_run(paused, run_input={"decision": "approve", "tier": "A", "reason": "strategic", "reviewer": "sam"})
    worker.join(timeout=120)
    assert outcome == outcome | {"asked": 1, "applied": 1, "pending": 1}
    store = _store()
    assert _row(store, "assessments", "j.chen@northwind.io")["tier"] == "A"
    assert _row(store, "labels", "j.chen@northwind.io")["who"] == "sam"
    assert _row(store, "assignments", "j.chen@northwind.io")["owner"] is not None


def _wait_for_paused_run(timeout_s: float = 180, exclude: Any = None) -> Any:
    """A paused run, or the same run paused again on its next form (a new pause: its state changed).
    A busy machine can take a while to record the pause: the wait is generous, the check is not."""
    deadline = time.monotonic() + timeout_s
    seen_state = None
    paused_runs = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
        id=FlowRunFilterId(any_=[exclude]) if exclude is not None else None,
    )
    with get_client(sync_client=True) as client:
        if exclude is not None:
            seen_state = client.read_flow_run(exclude).state_id
        while time.monotonic() < deadline:
            paused = [  # filtered by the server: an unfiltered read returns only a page of the session's runs
                run.id
                for run in client.read_flow_runs(flow_run_filter=paused_runs)
                if run.state and run.state.is_paused() and (exclude is None or run.state_id != seen_state)
            ]
            if paused:
                return paused[0]
            time.sleep(0.5)
    raise AssertionError(f"no run paused within {timeout_s} s")


def test_one_form_per_company_with_dropdowns_and_each_decision_applied_at_once(config_dir: Path) -> None:
    _require_approval(config_dir, "northwind.io", "acmecloud.com")
    qualify_signups()
    held = set(_store().reviews("pending")["email"])
    assert {"j.chen@northwind.io", "maria.lopez@northwind.io", "priya@acmecloud.com"} <= held
    outcome: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: outcome.update(review_leads()))
    worker.start()
    first = _wait_for_paused_run()
    with get_client(sync_client=True) as client:
        inputs = {i.key: i.value for i in client.filter_flow_run_input(first, "paused-review-", 10, set())}
    schema = next(v for k, v in inputs.items() if k.endswith("schema"))
    fields = (json.loads(schema) if isinstance(schema, str) else schema)["properties"]
    company = sorted(fields["leads"]["items"]["enum"])
    assert company == ["j.chen@northwind.io", "maria.lopez@northwind.io"]  # the oldest held lead's company, whole
    assert fields["tier"]["enum"] == ["keep leadq's", "A", "B", "C", "disqualified"]  # the ICP's tiers, a dropdown
    assert "inbound-emea" in fields["queue"]["enum"] and fields["queue"]["default"] == "by the routing rules"
    answer = {"decision": "approve", "tier": "B", "queue": "inbound-emea", "reason": "one account", "reviewer": "ops"}
    resume_flow_run(first, run_input=answer)
    second = _wait_for_paused_run(exclude=first)
    store = _store()  # the first company's leads were routed and written before the next form was asked
    for email in company:
        assert _row(store, "assessments", email)["tier"] == "B" and _row(store, "assignments", email)["queue"] == (
            "inbound-emea"
        )
    resume_flow_run(second, run_input={"decision": "reject", "reason": "competitor", "reviewer": "ops"})
    worker.join(timeout=180)
    assert outcome["asked"] == outcome["applied"] == len(held) and outcome["pending"] == 0
