"""Capacity and availability through the real flow: caps counted in the store, waiting leads picked up later."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.settings import load_settings
from connectors.store import Store
from connectors.store.export import export_leads
from flows.qualify import qualify_signups

pytestmark = pytest.mark.usefixtures("prefect_api")

HEADER = "email,job_title,country,seats_requested,signed_up_at\n"
LEADS = (
    "vp@northwind.io,VP Sales,US,30,2026-11-01T10:00:00Z\n"
    "vp@quantaops.com,VP Sales,US,30,2026-11-01T10:01:00Z\n"
    "cro@northwind.io,CRO,US,30,2026-11-01T10:02:00Z\n"
    "head@finlytics.com,Head of Sales,US,30,2026-11-01T10:03:00Z\n"
)


def _store() -> Store:
    return Store(load_settings().store_url)


def _inbound_na(config_dir: Path, sdrs: str) -> None:
    """Replace the SDRs of the shipped inbound-na queue."""
    routing = config_dir / "routing.yaml"
    text = routing.read_text()
    start = re.search(r"^  inbound-na:\n", text, re.M).start()  # type: ignore[union-attr]
    end = re.search(r"^  inbound-emea:\n", text, re.M).start()  # type: ignore[union-attr]
    routing.write_text(text[:start] + "  inbound-na:\n    sdrs:\n" + sdrs + text[end:])


def test_a_full_queue_leaves_a_lead_waiting_and_alerted_and_a_later_run_assigns_it(
    config_dir: Path, tmp_path: Path
) -> None:
    _inbound_na(
        config_dir,
        "      - {email: devon@example.com, daily_cap: 1}\n      - {email: emery@example.com, daily_cap: 0}\n",
    )
    path = tmp_path / "signups.csv"
    path.write_text(HEADER + LEADS)
    summary = qualify_signups(source=str(path))
    leads = {r["email"]: r for r in export_leads(_store()).to_dicts()}
    inbound = {e: r for e, r in leads.items() if r["queue"] == "inbound-na"}
    assert len(inbound) >= 3, leads  # three companies' leads in one queue with room for one
    owned = [e for e, r in inbound.items() if r["owner"]]
    waiting = sorted(e for e, r in inbound.items() if r["owner"] is None)
    assert [inbound[e]["owner"] for e in owned] == ["devon@example.com"] * len(owned)
    assert {leads[e]["company_domain"] for e in owned} == {inbound[owned[0]]["company_domain"]}  # one company
    assert summary["waiting"] == len(waiting) and summary["waiting_by_queue"] == {"inbound-na": len(waiting)}
    assert any("leads wait unowned" in alert for alert in summary["alerts"])
    statuses = _store().read("select email, status, routing_reason from assignments where owner is null")
    assert set(statuses.filter(statuses["status"] == "waiting")["email"]) == set(waiting)
    reason = inbound[waiting[0]]["routing_reason"]
    assert reason.startswith("waiting in inbound-na") and "daily cap 1 reached" in reason, reason
    today = datetime.now(UTC).date().isoformat()
    loads = _store().read("select owner, day, assigned from sdr_loads").rows()
    assert loads == [("devon@example.com", today, len(owned))] or loads[0][1] != today  # a run across midnight

    # a rerun with nothing new and no room: still waiting, nothing lost, nothing counted twice
    again = qualify_signups(source=str(path))
    assert again["leads"] == 0 and _store().read("select count(*) as n from assignments where status = 'waiting'")["n"][
        0
    ] == len(waiting)
    assert _store().read("select sum(assigned) as n from sdr_loads")["n"][0] == len(owned)

    # room tomorrow (here: a raised cap): the next run routes the waiting leads first
    _inbound_na(config_dir, "      - {email: devon@example.com, daily_cap: 10}\n      - {email: emery@example.com}\n")
    qualify_signups(source=str(path))
    after = {r["email"]: r for r in export_leads(_store()).to_dicts()}
    assert all(after[e]["owner"] is not None for e in waiting), {e: after[e]["routing_reason"] for e in waiting}
    assert {after[e]["routing_reason"].split(";")[0] for e in waiting} <= {
        "rotation of inbound-na",
        *(f"account owner of {after[e]['company_domain']}" for e in waiting),
    }
    assert _store().read("select count(*) as n from assignments where status = 'waiting'")["n"][0] == 0
    assert _store().counts()["leads"] == len(leads)


def test_an_away_sdr_is_skipped_and_named(config_dir: Path, tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    back = today + timedelta(days=3)
    _inbound_na(
        config_dir,
        f"      - {{email: devon@example.com, away: [{{from: {today - timedelta(days=1)}, to: {back}}}]}}\n"
        "      - {email: emery@example.com}\n",
    )
    path = tmp_path / "signups.csv"
    path.write_text(HEADER + LEADS)
    qualify_signups(source=str(path))
    inbound = [r for r in export_leads(_store()).to_dicts() if r["queue"] == "inbound-na"]
    assert inbound and {r["owner"] for r in inbound} == {"emery@example.com"}
    assert any(f"skipped devon@example.com (away until {back})" in r["routing_reason"] for r in inbound)
