"""qualify-signups publishing to a fake Salesforce that behaves as Salesforce documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.errors import FatalError
from tests.fake_crm import Window, sustained_share
from tests.fake_salesforce import FakeSalesforce
from tests.flows.crm_helpers import (
    crash_once_before_the_watermark,
    run,
    sdr_emails,
    store,
    write_signups,
)

pytestmark = pytest.mark.usefixtures("prefect_api")

STAFFED = ["enterprise-na", "enterprise-intl", "inbound-na", "inbound-emea", "inbound-row"]  # queues with SDRs


def test_a_thousand_leads_reach_salesforce_once_each_in_collections_of_200(
    salesforce: FakeSalesforce, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_signups(tmp_path / "signups.csv", 1000)
    summary = run(source=str(source))

    assert summary["crm_written"] == 1000 and summary["crm_failed"] == 0
    assert salesforce.max_inputs == 200
    leads = salesforce.by_email()
    assert len(leads) == 1000 == salesforce.creates
    assert summary["crm_api_calls"] <= 40
    assert leads["person9@gmail.com"]["LastName"] == "Last9" and leads["person9@gmail.com"]["Company"] == "Company 9"
    assert summary["crm_limit_info"].startswith("api-usage=")

    # routed leads are owned by the SDR's user id, and those calls turn the assignment rules off
    users = {u["Email"]: u["Id"] for u in salesforce.users}
    assigned = store().read("select email, owner from assignments where owner is not null")
    assert assigned.height > 0
    for email, owner in assigned.iter_rows():
        assert leads[email]["OwnerId"] == users[owner]
    assert {header for sets_owner, header in salesforce.auto_assign_headers if sets_owner} == {"FALSE"}
    assert {header for sets_owner, header in salesforce.auto_assign_headers if not sets_owner} == {None}

    # reruns add nothing, even with leadq's local state lost
    assert run(source=str(source))["processed"] == 0
    monkeypatch.setenv("LEADQ_HOME", str(tmp_path / "lost-home"))
    assert run(source=str(source))["crm_written"] == 1000
    assert salesforce.creates == 1000
    assert {e: r["OwnerId"] for e, r in salesforce.by_email().items()} == {e: r["OwnerId"] for e, r in leads.items()}


def test_an_expired_token_is_refreshed_once_and_the_call_repeated(salesforce: FakeSalesforce, tmp_path: Path) -> None:
    source = write_signups(tmp_path / "a.csv", 50)
    original = salesforce._upsert

    def expire_then_upsert(ext: str, seen: Any, headers: dict[str, str]) -> Any:
        salesforce._upsert = original  # type: ignore[method-assign]
        salesforce.expire_token()
        return original(ext, seen, headers)

    salesforce._upsert = expire_then_upsert  # type: ignore[method-assign]
    summary = run(source=str(source))
    assert summary["crm_written"] == 50
    assert len(salesforce.tokens) == 2  # one at the start, one after the 401
    assert len(salesforce.by_email()) == 50


def test_wrong_client_credentials_fail_naming_the_variables(
    salesforce: FakeSalesforce, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SALESFORCE_CLIENT_SECRET", "wrong")
    with pytest.raises(FatalError, match=r"invalid client credentials.*SALESFORCE_CLIENT_SECRET"):
        run(source=str(write_signups(tmp_path / "a.csv", 5)))


def test_refused_records_go_to_dead_letters_with_salesforce_s_message(
    salesforce: FakeSalesforce, tmp_path: Path
) -> None:
    salesforce.refuse_emails = {"person4@company4.com"}
    source = write_signups(tmp_path / "a.csv", 60)
    summary = run(source=str(source))
    assert summary["crm_failed"] == 1 and summary["crm_written"] == 59
    letter = store().read("select reason from dead_letters where key = 'crm:salesforce|person4@company4.com'")
    assert letter["reason"][0] == (
        "salesforce person4@company4.com: INVALID_EMAIL_ADDRESS: Email: invalid email address: "
        "person4@company4.com (Email)"
    )
    assert run(source=str(source))["processed"] == 0


def test_a_missing_custom_field_fails_before_anything_is_written(salesforce: FakeSalesforce, tmp_path: Path) -> None:
    del salesforce.fields["Leadq_Tier__c"]
    with pytest.raises(FatalError, match=r"Lead has no field Leadq_Tier__c .*Object Manager"):
        run(source=str(write_signups(tmp_path / "a.csv", 5)))
    assert salesforce.leads == {}


def test_a_spent_org_limit_stops_cleanly_and_the_next_run_resumes(
    salesforce: FakeSalesforce, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADQ__RUN__BATCH_SIZE", "200")
    source = write_signups(tmp_path / "a.csv", 600)
    salesforce.daily_limit = 8
    summary = run(source=str(source))
    assert summary["crm_stopped"] and "REQUEST_LIMIT_EXCEEDED" in summary["crm_stopped"]
    assert 0 < summary["processed"] < 600
    done = summary["processed"]

    salesforce.daily_limit = None
    summary = run(source=str(source))
    assert summary["processed"] == 600 - done and summary["crm_stopped"] is None
    assert salesforce.creates == 600 == len(salesforce.by_email())


def test_a_crash_after_the_write_is_redone_without_duplicates(
    salesforce: FakeSalesforce, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_signups(tmp_path / "a.csv", 250)
    crash_once_before_the_watermark(monkeypatch, "killed before the watermark commit")
    with pytest.raises(RuntimeError, match="killed"):
        run(source=str(source))
    owners = {e: r["OwnerId"] for e, r in salesforce.by_email().items()}
    assert run(source=str(source))["crm_written"] == 250
    assert salesforce.creates == 250
    assert {e: r["OwnerId"] for e, r in salesforce.by_email().items()} == owners


def test_a_lead_a_person_owns_keeps_its_owner(salesforce: FakeSalesforce, config_dir: Path, tmp_path: Path) -> None:
    salesforce.users.append({"Id": "005AE0001", "Email": "ae@example.com", "IsActive": True})
    salesforce.leads["00Q1"] = {"Id": "00Q1", "Leadq_Email__c": "person3@company3.com", "OwnerId": "005AE0001"}
    salesforce.leads["00Q2"] = {
        "Id": "00Q2",
        "Leadq_Email__c": "person7@company7.com",
        "OwnerId": salesforce.integration_user,
    }
    run(source=str(write_signups(tmp_path / "a.csv", 10)))
    leads = salesforce.by_email()
    assert leads["person3@company3.com"]["OwnerId"] == "005AE0001"
    assert store().read("select owner from assignments where email = 'person3@company3.com'")["owner"][0] == (
        "ae@example.com"
    )
    # owned by the integration user means nobody owns it: routing assigns it
    routed = store().read("select owner from assignments where email = 'person7@company7.com'")["owner"][0]
    assert routed in sdr_emails(config_dir)
    assert leads["person7@company7.com"]["OwnerId"] == next(u["Id"] for u in salesforce.users if u["Email"] == routed)


def test_the_limiter_sustains_the_window_rate_without_a_single_429(
    salesforce: FakeSalesforce, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    salesforce.window = Window(limit=100, seconds=2.0)
    monkeypatch.setenv("LEADQ__CRM__SALESFORCE__WINDOW_S", "2.0")
    monkeypatch.setenv("LEADQ__CRM__SALESFORCE__WINDOW_MARGIN_S", "0.05")
    monkeypatch.setenv("LEADQ__CRM__SALESFORCE__BATCH_SIZE", "2")  # many small calls
    summary = run(source=str(write_signups(tmp_path / "a.csv", 600)))
    assert summary["crm_written"] == 600
    assert salesforce.window.rejected == 0 and summary["crm_rate_limited"] == 0
    assert len(salesforce.requests) > 300
    assert sustained_share(salesforce.api_times(), 100, 2.0) >= 0.9


def test_a_lead_of_a_company_whose_account_has_an_owner_goes_to_that_owner(
    salesforce: FakeSalesforce, tmp_path: Path
) -> None:
    emery = next(u for u in salesforce.users if u["Email"] == "emery@example.com")
    salesforce.accounts.append({"Id": "001ACME", "Website": "https://www.company3.com", "OwnerId": emery["Id"]})
    run(source=str(write_signups(tmp_path / "a.csv", 40)))
    routed = store().read("select a.email, a.owner, a.routing_reason, a.queue from assignments a")
    company3 = routed.filter(routed["email"].str.ends_with("@company3.com") & routed["queue"].is_in(STAFFED))
    assert company3.height > 0
    assert set(company3["owner"]) == {"emery@example.com"}
    assert set(company3["routing_reason"]) == {"account owner of company3.com"}
    lead = salesforce._lead(company3["email"][0])
    assert lead is not None and lead["OwnerId"] == emery["Id"]
    assert lead["Leadq_Routing_Reason__c"] == "account owner of company3.com"
