"""Fixtures shared by the flow tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_hubspot import FakeHubSpot, hubspot_owners
from tests.fake_salesforce import FakeSalesforce
from tests.fakes import FakeHttp
from tests.flows.crm_helpers import sdr_emails, write_companies


@pytest.fixture
def hubspot(config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHubSpot]:
    monkeypatch.setenv("LEADQ__ENRICHMENT__REFERENCE__PATH", str(write_companies(tmp_path / "companies.csv")))
    with FakeHttp().running() as server:
        fake = FakeHubSpot(server, owners=hubspot_owners(sdr_emails(config_dir)))
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", fake.token)
        monkeypatch.setenv("LEADQ__CRM__KIND", "hubspot")
        monkeypatch.setenv("LEADQ__CRM__HUBSPOT__BASE_URL", server.url)
        monkeypatch.setenv("LEADQ__CRM__HUBSPOT__MAX_BACKOFF_S", "0.05")
        monkeypatch.setenv("LEADQ__CRM__SYNC_RETRIES", "0")
        yield fake


@pytest.fixture
def salesforce(config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSalesforce]:
    monkeypatch.setenv("LEADQ__ENRICHMENT__REFERENCE__PATH", str(write_companies(tmp_path / "companies.csv")))
    with FakeHttp().running() as server:
        users = [{"Id": f"005SDR{i:04d}", "Email": e, "IsActive": True} for i, e in enumerate(sdr_emails(config_dir))]
        fake = FakeSalesforce(server, users=users)
        monkeypatch.setenv("SALESFORCE_CLIENT_ID", fake.client_id)
        monkeypatch.setenv("SALESFORCE_CLIENT_SECRET", fake.client_secret)
        monkeypatch.setenv("LEADQ__CRM__KIND", "salesforce")
        monkeypatch.setenv("LEADQ__CRM__SALESFORCE__LOGIN_URL", server.url)
        monkeypatch.setenv("LEADQ__CRM__SALESFORCE__MAX_BACKOFF_S", "0.05")
        monkeypatch.setenv("LEADQ__CRM__SYNC_RETRIES", "0")
        yield fake
