"""Salesforce as the source: web-to-lead Leads enriched, scored and routed where they are, and no loop."""

from __future__ import annotations

import polars as pl
import pytest

from connectors.settings import load_settings
from connectors.sources import Cursor, open_source
from tests.fake_salesforce import FakeSalesforce
from tests.flows.crm_helpers import run, store

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture
def web_leads(salesforce: FakeSalesforce, monkeypatch: pytest.MonkeyPatch) -> FakeSalesforce:
    """25 Leads web-to-lead created (one converted), and leadq reading Salesforce as its source."""
    monkeypatch.setenv("LEADQ__SOURCE__KIND", "salesforce")
    for i in range(25):
        salesforce.seed_lead(
            Email=f"person{i}@company{i % 10}.com",
            FirstName=f"Pat{i}",
            LastName="Lee",
            Title="VP Sales" if i % 3 else "intern",
            Company=f"Company {i % 10}",
            Country="United States",
            LeadSource="Web",
            IsConverted=i == 24,
        )
    return salesforce


def test_leads_are_updated_in_place_and_three_runs_make_no_loop(web_leads: FakeSalesforce) -> None:
    before = {lead["Id"]: dict(lead) for lead in web_leads.leads.values()}
    first = run()
    assert (first["processed"], first["leads"], first["rejected"]) == (24, 24, 0)  # the converted one is left out
    assert web_leads.creates == 0 and len(web_leads.leads) == 25 and web_leads.updates == 24
    for lead_id, lead in web_leads.leads.items():
        if lead["IsConverted"]:
            assert "Leadq_Tier__c" not in lead
            continue
        assert lead["Leadq_Tier__c"] and lead["Leadq_Score__c"] is not None
        assert {k: lead[k] for k in ("FirstName", "Title", "Country", "Company")} == {
            k: before[lead_id][k] for k in ("FirstName", "Title", "Country", "Company")
        }
    assert all(assign == "FALSE" for _, assign in web_leads.auto_assign_headers)  # the org's rules do not re-run
    owned = store().read("select email, owner from assignments where owner is not null")
    users = {u["Email"]: u["Id"] for u in web_leads.users}
    by_email = {lead["Email"]: lead for lead in web_leads.leads.values()}
    assert owned.height > 0 and all(by_email[e]["OwnerId"] == users[o] for e, o in owned.iter_rows())

    second = run()  # leadq's own write moved SystemModstamp: the Leads come back once, unchanged
    assert (second["processed"], second["leads"], second["skipped_known"]) == (24, 0, 24)
    assert web_leads.updates == 24
    assert run()["processed"] == 0 and web_leads.updates == 24
    queries = [
        s.query["q"][0] for s in web_leads.requests if s.path.endswith("/query") and "FROM Lead" in s.query["q"][0]
    ]
    assert not any("Leadq_" in q for q in queries if "ORDER BY" in q)


def test_a_query_is_read_across_pages_and_batches_keep_a_time_whole(
    web_leads: FakeSalesforce, config_dir: object
) -> None:
    web_leads.query_page_size = 4
    same = "2026-11-01T10:00:00.000+0000"
    for lead in list(web_leads.leads.values())[5:15]:
        lead["SystemModstamp"] = same  # ten Leads changed in the same millisecond, across three pages
    source = open_source(load_settings())
    frames = list(source.pending(Cursor(), 3))
    rows = pl.concat(frames)
    assert rows.height == 24 and rows["email"].n_unique() == 24
    tied = [f for f in frames if (f["signed_up_at"] == f["signed_up_at"].min()).sum() == 10]
    assert len(tied) == 1  # the ten are in one batch, whatever the batch size
    cursor = Cursor(rows["signed_up_at"][12], str(rows["signup_id"][12]))
    after = pl.concat(list(source.pending(cursor, 100)))
    assert after.height == 24 - 13 and set(after["email"]).isdisjoint(set(rows.head(13)["email"]))
