"""Shadow mode and `leadq shadow-report`: leadq decides and writes nothing; then its decisions are compared
with what people did in the CRM (HubSpot hs_lead_status / owner, Salesforce Status / OwnerId, or a file)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from connectors.store.export import export_leads
from crew.shadow import compare
from flows.cli import app
from tests.fake_hubspot import FakeHubSpot
from tests.fake_salesforce import FakeSalesforce
from tests.flows.crm_helpers import run, store, write_signups

pytestmark = pytest.mark.usefixtures("prefect_api")
runner = CliRunner()

# What people did, lead by lead (in the export's order): agreed, disagreed, or no verdict yet.
AGREE, DISAGREE, UNDECIDED = range(3)


def _people_plan(leads: pl.DataFrame) -> list[dict[str, Any]]:
    """Leads 0-9 a person judged as leadq did, 10-14 the other way, the rest are untouched (status New).
    Of the leads with an owner, the first four keep leadq's owner, the next two went to someone else."""
    plan, owned = [], 0
    for i, lead in enumerate(leads.iter_rows(named=True)):
        qualified = lead["tier"] in ("A", "B")
        what = AGREE if i < 10 else DISAGREE if i < 15 else UNDECIDED
        person_qualified = qualified if what == AGREE else not qualified
        owner = None
        if lead["owner"] and owned < 6:
            owner = lead["owner"] if owned < 4 else "someone.else@example.com"
            owned += 1
        plan.append(
            {"email": lead["email"], "qualified": None if what == UNDECIDED else person_qualified, "owner": owner}
        )
    assert owned == 6, "the scenario needs six owned leads"
    return plan


def _seed_hubspot(fake: FakeHubSpot, plan: list[dict[str, Any]]) -> None:
    ids = {o["email"]: o["id"] for o in fake.owners} | {"someone.else@example.com": "999"}
    for p in plan:
        status = {True: "IN_PROGRESS", False: "UNQUALIFIED", None: "NEW"}[p["qualified"]]
        owner = {"hubspot_owner_id": ids[p["owner"]]} if p["owner"] else {}
        fake.seed_contact(p["email"], hs_lead_status=status, **owner)


def _seed_salesforce(fake: FakeSalesforce, plan: list[dict[str, Any]]) -> None:
    ids = {u["Email"]: u["Id"] for u in fake.users} | {"someone.else@example.com": "005ELSE"}
    fake.users.append({"Id": "005ELSE", "Email": "someone.else@example.com", "IsActive": True})
    for i, p in enumerate(plan):
        status = {True: "Working - Contacted", False: "Closed - Not Converted", None: "Open - Not Contacted"}
        owner = ids[p["owner"]] if p["owner"] else fake.integration_user
        fake.leads[f"00Q{i:05d}"] = {"Leadq_Email__c": p["email"], "Status": status[p["qualified"]], "OwnerId": owner}


@pytest.mark.parametrize("vendor", ["hubspot", "salesforce"])
def test_shadow_mode_writes_nothing_and_the_report_measures_agreement_from_the_crm(
    vendor: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = request.getfixturevalue(vendor)
    monkeypatch.setenv("LEADQ__RUN__MODE", "shadow")
    summary = run(source=str(write_signups(tmp_path / "signups.csv", 40)))
    assert summary["mode"] == "shadow" and summary["leads"] == 40 and summary["crm_written"] == 0
    if vendor == "hubspot":
        assert fake.contacts() == {} and fake.companies() == {}
    else:
        assert fake.leads == {} and fake.creates == 0

    leads = export_leads(store())
    plan = _people_plan(leads)
    seed: Callable[[Any, list[dict[str, Any]]], None] = _seed_hubspot if vendor == "hubspot" else _seed_salesforce
    seed(fake, plan)
    result = runner.invoke(app, ["shadow-report", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    print("REPORT", runner.invoke(app, ["shadow-report"], env={"COLUMNS": "200"}).stdout)
    overall = report["overall"]
    assert (overall["leads"], overall["in_crm"], overall["with_verdict"]) == (40, 40, 15)
    assert overall["verdict_agreement"] == round(10 / 15, 3)
    assert (overall["with_owner"], overall["owner_agreement"]) == (6, round(4 / 6, 3))
    by_tier = {row["tier"]: row for row in report["by_tier"]}
    assert sum(r["leads"] for r in by_tier.values()) == 40
    assert sum(r["verdict_agrees"] for r in by_tier.values()) == 10
    expected_tiers = leads.head(15).group_by("tier").len()
    assert {t: by_tier[t]["with_verdict"] for t in expected_tiers["tier"]} == dict(expected_tiers.iter_rows())
    assert sum(r["owner_agrees"] for r in report["by_queue"]) == 4

    table = runner.invoke(app, ["shadow-report"])
    text = " ".join(table.stdout.split())  # the terminal wraps lines
    assert table.exit_code == 0 and "Qualification agreement 66.7%" in text
    assert "agreement by queue" in text and "owner agreement 66.7%" in text


def test_the_report_reads_people_decisions_from_a_file_and_bad_files_are_named(
    config_dir: Path, tmp_path: Path
) -> None:
    run()  # the sample, embedded CRM
    leads = export_leads(store())
    no_file = runner.invoke(app, ["shadow-report"])
    assert no_file.exit_code == 2 and "--actual FILE" in no_file.stderr

    actual = tmp_path / "worked.csv"
    people = leads.sort("email").select(
        "email", pl.col("tier").is_in(["A", "B"]).cast(pl.Int8).alias("qualified"), "owner"
    )
    # people overruled leadq on three leads' verdicts and gave two other owned leads to someone else
    overruled = people["email"].head(3).to_list()
    reassigned = people.filter(pl.col("owner").is_not_null() & ~pl.col("email").is_in(overruled))["email"].head(2)
    people = people.with_columns(
        pl.when(pl.col("email").is_in(overruled))
        .then(1 - pl.col("qualified"))
        .otherwise("qualified")
        .alias("qualified"),
        pl.when(pl.col("email").is_in(reassigned.to_list()))
        .then(pl.lit("someone.else@acme.io"))
        .otherwise("owner")
        .alias("owner"),
        pl.col("email").str.to_uppercase(),  # people's files are not tidy
    )
    people.write_csv(actual)
    result = runner.invoke(app, ["shadow-report", "--actual", str(actual), "--json", "--out", str(tmp_path / "o.csv")])
    assert result.exit_code == 0, result.output
    overall = json.loads(result.stdout)["overall"]
    n, owned = leads.height, leads["owner"].drop_nulls().len()
    assert overall["with_verdict"] == n and overall["verdict_agreement"] == pytest.approx((n - 3) / n, abs=1e-3)
    assert overall["with_owner"] == owned and overall["owner_agreement"] == pytest.approx((owned - 2) / owned, abs=1e-3)
    assert pl.read_csv(tmp_path / "o.csv").height == leads.height

    actual.write_text("email,qualified\na@b.com,1\nc@d.com,maybe\n")
    bad = runner.invoke(app, ["shadow-report", "--actual", str(actual)])
    assert bad.exit_code == 2 and "worked.csv: row 3: column 'qualified' is 'maybe'" in bad.stderr
    actual.write_text("mail,state\na@b.com,Working\n")
    bad = runner.invoke(app, ["shadow-report", "--actual", str(actual)])
    assert bad.exit_code == 2 and "expected an 'email' column" in bad.stderr


def test_compare_counts_only_leads_with_a_verdict_and_people_owners() -> None:
    decisions = pl.DataFrame(
        {
            "email": ["a", "b", "c", "d"],
            "tier": ["A", "C", "B", "disqualified"],
            "queue": ["q1", "q2", "q1", None],
            "owner": ["x@s", None, "y@s", None],
        }
    )
    people = pl.DataFrame(
        {"email": ["a", "b", "c"], "crm_owner": ["X@s", "z@s", None], "crm_status": ["Working", "Qualified", "New"]}
    )
    report = compare(decisions, people, ["A", "B"], ["Working", "Qualified"], ["Unqualified"])
    assert report.overall == {
        "leads": 4,
        "in_crm": 3,
        "with_verdict": 2,
        "verdict_agreement": 0.5,
        "precision": 1.0,
        "recall": 0.5,
        "with_owner": 2,
        "owner_agreement": 0.5,
    }
    q1 = report.by_queue.filter(queue="q1").row(0, named=True)
    assert (q1["leads"], q1["with_verdict"], q1["verdict_agrees"], q1["owner_agrees"]) == (2, 1, 1, 1)
    assert report.by_queue.filter(queue="(none)")["leads"].to_list() == [1]
