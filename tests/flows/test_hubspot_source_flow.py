"""HubSpot as the source: contacts enriched, scored and routed where they are, and no processing loop."""

from __future__ import annotations

import pytest

from tests.fake_hubspot import FakeHubSpot
from tests.flows.crm_helpers import run, store

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture
def contacts(hubspot: FakeHubSpot, monkeypatch: pytest.MonkeyPatch) -> FakeHubSpot:
    """30 contacts a form created in HubSpot, and leadq reading HubSpot as its source."""
    monkeypatch.setenv("LEADQ__SOURCE__KIND", "hubspot")
    for i in range(30):
        hubspot.seed_contact(
            f"person{i}@company{i % 10}.com",
            firstname=f"Pat{i}",
            lastname="Lee",
            jobtitle="VP Sales" if i % 3 else "intern",
            country="United States",
        )
    return hubspot


def test_contacts_are_written_back_in_place_and_three_runs_make_no_loop(contacts: FakeHubSpot) -> None:
    before = {email: dict(c) for email, c in contacts.contacts().items()}
    first = run()
    assert (first["processed"], first["leads"], first["rejected"]) == (30, 30, 0)
    after = contacts.contacts()
    assert contacts.creates["contacts"] == 0 and len(after) == 30  # the same records, no new one
    assert contacts.updates == 30
    for email, contact in after.items():
        assert contact["hs_object_id"] == before[email]["hs_object_id"]
        assert contact["leadq_tier"] and contact["leadq_score"] is not None
        # what the form said stays as the form said it: leadq writes only its own properties and the owner
        assert {k: contact[k] for k in ("firstname", "jobtitle", "country")} == {
            k: before[email][k] for k in ("firstname", "jobtitle", "country")
        }
    owned = store().read("select email, owner from assignments where owner is not null")
    owner_ids = {o["email"]: o["id"] for o in contacts.owners}
    assert owned.height > 0 and all(after[e]["hubspot_owner_id"] == owner_ids[o] for e, o in owned.iter_rows())

    # leadq's own write changed lastmodifieddate: the contacts come back once, unchanged, and are not processed
    second = run()
    assert (second["processed"], second["leads"], second["skipped_known"]) == (30, 0, 30)
    assert contacts.updates == 30 and second.get("crm_written", 0) == 0
    third = run()
    assert third["processed"] == 0 and contacts.updates == 30
    searched = [s.body for s in contacts.requests if s.path.endswith("/search")]
    assert not any(p.startswith("leadq_") for body in searched for p in body["properties"])

    # a person changes what a contact says: that contact, and only it, is decided again
    changed = "person0@company0.com"
    contacts.records["contacts"][after[changed]["hs_object_id"]]["jobtitle"] = "Chief Revenue Officer"
    contacts.records["contacts"][after[changed]["hs_object_id"]]["lastmodifieddate"] = contacts._now()
    fourth = run()
    assert (fourth["processed"], fourth["leads"]) == (1, 1) and contacts.updates == 31
    fifth = run()  # its write-back comes back once, unchanged
    assert (fifth["processed"], fifth["leads"], contacts.updates) == (1, 0, 31)
    assert run()["processed"] == 0
