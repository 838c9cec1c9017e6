"""Against a HubSpot fake as strict as HubSpot's documentation: each test fails for a lenient client."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import requests

from connectors.crm import build_crm
from connectors.settings import load_settings
from tests.fake_hubspot import FakeHubSpot
from tests.flows.crm_helpers import run, store, write_signups

pytestmark = pytest.mark.usefixtures("prefect_api")


def test_a_property_create_whose_answer_was_lost_is_retried_into_409_and_that_is_success(
    hubspot: FakeHubSpot, tmp_path: Path
) -> None:
    hubspot.lose_create_answers = 1  # HubSpot creates the properties, then the answer is a 502
    summary = run(source=str(write_signups(tmp_path / "a.csv", 20)))
    assert summary["crm_written"] == 20 and summary["crm_failed"] == 0
    creates = [s for s in hubspot.requests if s.path == "/crm/v3/properties/contacts/batch/create"]
    assert len(creates) == 2  # the retry met "already exists", and leadq went on
    options = hubspot.properties["contacts"]["leadq_needs_review"]["options"]
    assert [(o["value"], o["hidden"], o["displayOrder"]) for o in options] == [("true", False, 0), ("false", False, 1)]
    assert hubspot.refused_batches == 0


def test_association_errors_are_dead_letters_of_their_lead_and_the_run_goes_on(
    hubspot: FakeHubSpot, tmp_path: Path
) -> None:
    hubspot.unlinkable = {"company3.com"}
    summary = run(source=str(write_signups(tmp_path / "a.csv", 30)))
    assert summary["crm_written"] == 30
    letters = store().read("select key, signup_id, reason from dead_letters")
    assert letters.select("key", "signup_id").rows() == [("crm:hubspot|person3@company3.com", "s-3")]
    assert "person3@company3.com: association to its company failed: Company" in letters["reason"][0]
    assert hubspot.company_of("person4@company4.com") == "company4.com"  # the others are linked


def test_one_publish_never_sends_two_inputs_for_one_contact(hubspot: FakeHubSpot, tmp_path: Path) -> None:
    """HubSpot refuses a whole batch whose inputs resolve to one record; leadq sends the newest once."""
    run(source=str(write_signups(tmp_path / "a.csv", 5)))
    leads = store().read("select * from leads")
    again = pl.concat([leads, leads.head(1).with_columns(pl.lit("Chief Revenue Officer").alias("job_title"))])
    crm = build_crm(load_settings())
    result = crm.publish(again.with_columns(pl.lit(None, dtype=pl.String).alias("owner")))
    assert result.failed == 0 and hubspot.refused_batches == 0
    assert hubspot.contacts()[leads["email"][0]]["jobtitle"] == "Chief Revenue Officer"


def test_property_values_are_type_checked_like_hubspot_does(hubspot: FakeHubSpot, tmp_path: Path) -> None:
    """A number property given text refuses the whole batch; every value leadq sends passes."""
    run(source=str(write_signups(tmp_path / "a.csv", 40)))
    assert hubspot.refused_batches == 0 and len(hubspot.contacts()) == 40
    assert {c["numberofemployees"] for c in hubspot.companies().values()} == {"20", "150", "600", "2500"}
    item = {"idProperty": "leadq_company_key", "id": "x.io", "properties": {"numberofemployees": "about fifty"}}
    answer = requests.post(
        f"{hubspot.fake.url}/crm/v3/objects/companies/batch/upsert",
        json={"inputs": [item]},
        headers={"Authorization": f"Bearer {hubspot.token}"},
        timeout=5,
    )
    assert answer.status_code == 400 and "was not a valid number" in answer.json()["message"]
