"""Against a Salesforce fake as strict as Salesforce's documentation: each test fails for a lenient client."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from connectors.crm import build_crm
from connectors.crm.salesforce import SalesforceCrm
from connectors.settings import load_settings
from tests.fake_salesforce import FakeSalesforce
from tests.flows.crm_helpers import run, store, write_signups

pytestmark = pytest.mark.usefixtures("prefect_api")


def _crm() -> SalesforceCrm:
    crm = build_crm(load_settings())
    assert isinstance(crm, SalesforceCrm)
    return crm


def test_a_token_endpoint_that_answers_5xx_is_retried(salesforce: FakeSalesforce, tmp_path: Path) -> None:
    salesforce.token_storm = [503, 500]
    summary = run(source=str(write_signups(tmp_path / "a.csv", 10)))
    assert summary["crm_written"] == 10
    token_requests = [s for s in salesforce.fake.seen if s.path == "/services/oauth2/token"]
    assert len(token_requests) == 3 and len(salesforce.tokens) == 1


def test_query_results_are_read_through_every_next_records_url(salesforce: FakeSalesforce, tmp_path: Path) -> None:
    run(source=str(write_signups(tmp_path / "a.csv", 30)))
    salesforce.query_page_size = 7
    emails = sorted(salesforce.by_email())
    decisions = _crm().people_decisions(emails)
    assert sorted(decisions["email"].to_list()) == emails  # 30 Leads in 5 pages of at most 7
    pages = [s for s in salesforce.requests if s.path.startswith(f"{salesforce.API}/query/01g")]
    assert len(pages) == 4


def test_long_lookups_are_split_so_no_request_uri_passes_the_limit(salesforce: FakeSalesforce) -> None:
    """Non-ASCII emails take up to twelve characters a letter once URL-encoded."""
    emails = [f"ünïcødé.ñåmé.{i:03d}.ßüñé@exämple-cömpåñy.de" for i in range(200)]
    assert _crm().people_decisions(emails).is_empty()
    queries = [s for s in salesforce.requests if s.path == f"{salesforce.API}/query"]
    assert salesforce.uri_too_long == 0 and len(queries) > 1
    assert max(len(s.target) for s in queries) <= 16_384


def test_one_collection_sends_each_lead_once_and_keeps_the_good_records(
    salesforce: FakeSalesforce, tmp_path: Path
) -> None:
    """An external id twice in one collection fails both records; allOrNone would roll back the good ones."""
    salesforce.refuse_emails = {"person2@company2.com"}
    run(source=str(write_signups(tmp_path / "a.csv", 5)))
    upserts = [s for s in salesforce.requests if "/composite/sobjects/" in s.path]
    assert upserts and all(s.body["allOrNone"] is False for s in upserts)
    assert len(salesforce.by_email()) == 4  # the refused one alone failed

    leads = store().read("select * from leads")
    twice = pl.concat([leads, leads.head(1).with_columns(pl.lit("Chief Revenue Officer").alias("job_title"))])
    salesforce.refuse_emails.clear()
    result = _crm().publish(twice.with_columns(pl.lit(None, dtype=pl.String).alias("owner")))
    assert result.failed == 0 and result.written == 5
    assert salesforce.by_email()[leads["email"][0]]["Title"] == "Chief Revenue Officer"
