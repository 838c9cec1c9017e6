"""check-sla through the real flow: the store's own touches, HubSpot's and Salesforce's activity, alerts once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from prefect.artifacts import Artifact
from typer.testing import CliRunner

from connectors.store.engine import table_of
from connectors.store.models import Assignment
from flows.cli import app
from flows.sla import REPORT_KEY, check_sla
from tests.fake_hubspot import FakeHubSpot
from tests.fake_salesforce import FakeSalesforce
from tests.flows.crm_helpers import run, store, write_signups

pytestmark = pytest.mark.usefixtures("prefect_api")

LEADS = (
    "email,job_title,country,seats_requested,signed_up_at\n"
    "vp@northwind.io,VP Sales,US,30,2026-11-01T10:00:00Z\n"
    "vp@quantaops.com,VP Sales,US,30,2026-11-01T10:01:00Z\n"
    "head@finlytics.com,Head of Sales,US,30,2026-11-01T10:03:00Z\n"
    "cto@kontor.de,CTO,DE,30,2026-11-01T10:04:00Z\n"
)


def _with_sla(config_dir: Path) -> None:
    routing = config_dir / "routing.yaml"
    text = routing.read_text()
    assert "\nsla_minutes: {}\n" in text
    routing.write_text(text.replace("\nsla_minutes: {}\n", "\nsla_minutes: {A: 15, B: 60}\n"))


def _age_ownership(hours: float) -> list[str]:
    """Move every owner's clock back, as if the leads were routed `hours` ago; returns the leads with an SLA."""
    table = table_of(Assignment)
    with store().engine.begin() as conn:
        for email, owned_at in conn.execute(sa.select(table.c.email, table.c.owned_at)).all():
            if owned_at is not None:
                conn.execute(
                    sa.update(table).where(table.c.email == email).values(owned_at=owned_at - timedelta(hours=hours))
                )
    owned = store().owned_since(datetime(2000, 1, 1))
    return sorted(owned.filter(pl.col("tier").is_in(["A", "B"]))["email"])


def test_leads_nobody_worked_are_alerted_once_and_a_worked_lead_is_not(config_dir: Path, tmp_path: Path) -> None:
    _with_sla(config_dir)
    path = tmp_path / "signups.csv"
    path.write_text(LEADS)
    run(source=str(path))
    assert check_sla()["breached"] == 0  # nobody's time is up yet
    owned = _age_ownership(2)
    assert len(owned) >= 2, owned
    worked, *idle = owned

    cli = CliRunner()
    result = cli.invoke(app, ["lead", "status", worked.upper(), "worked"])
    assert result.exit_code == 0 and f"{worked}: owner " in result.output and "first touch 20" in result.output
    unknown = cli.invoke(app, ["lead", "status", "nobody@nowhere.io", "worked"])
    assert unknown.exit_code == 2 and "no lead nobody@nowhere.io in the store" in unknown.output
    wrong = cli.invoke(app, ["lead", "status", worked, "called"])
    assert wrong.exit_code == 2 and "lead status 'called' is not one of: worked, new" in wrong.output

    summary = check_sla()
    assert (summary["breached"], summary["alerted"], summary["touched"]) == (len(idle), len(idle), 1)
    assert summary["alerts"][0].startswith(f"{len(idle)} qualified leads have no activity within their SLA")
    assert all(email in summary["alerts"][0] for email in idle) and worked not in summary["alerts"][0]
    artifact = Artifact.get(REPORT_KEY)
    assert artifact is not None and "| inbound-na |" in str(artifact.data)

    again = check_sla()
    assert (again["breached"], again["alerted"], again["alerts"]) == (len(idle), 0, [])
    assert store().read("select count(*) as n from notifications where kind = 'sla'")["n"][0] == len(idle)


def test_hubspot_activity_after_the_owner_got_the_lead_is_its_first_touch(
    hubspot: FakeHubSpot, config_dir: Path, tmp_path: Path
) -> None:
    _with_sla(config_dir)
    run(source=str(write_signups(tmp_path / "signups.csv", 40)))
    owned = _age_ownership(3)
    touched, before, *_ = owned
    contacts = hubspot.contacts()
    contacts[touched]["hs_last_sales_activity_timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    two_days_ago = datetime.now(UTC) - timedelta(days=2)  # before the owner had it: no touch
    contacts[before]["notes_last_contacted"] = str(int(two_days_ago.timestamp() * 1000))
    reads = hubspot.fake.hits("/crm/v3/objects/contacts/batch/read")

    summary = check_sla()
    assert (summary["new_touches"], summary["breached"], summary["alerted"]) == (1, len(owned) - 1, len(owned) - 1)
    assert hubspot.fake.hits("/crm/v3/objects/contacts/batch/read") - reads == 1  # 40 leads: one batch read
    assert store().read(f"select touched_at from assignments where email = '{touched}'")["touched_at"][0] is not None
    # the touch is kept: the next check asks HubSpot only about leads still untouched
    hubspot.fake.seen.clear()
    assert check_sla()["alerted"] == 0
    asked = [e["id"] for s in hubspot.fake.seen if s.path.endswith("/batch/read") for e in s.body["inputs"]]
    assert touched not in asked and set(asked) == set(owned) - {touched}


def test_salesforce_last_activity_date_counts_as_a_touch(
    salesforce: FakeSalesforce, config_dir: Path, tmp_path: Path
) -> None:
    _with_sla(config_dir)
    run(source=str(write_signups(tmp_path / "signups.csv", 30)))
    owned = _age_ownership(3)
    touched, *idle = owned
    record = salesforce._lead(touched)
    assert record is not None
    record["LastActivityDate"] = datetime.now(UTC).date().isoformat()

    summary = check_sla()
    assert (summary["new_touches"], summary["alerted"]) == (1, len(idle))
    assert touched not in summary["alerts"][0]
