"""qualify-signups publishing to a fake HubSpot that behaves as HubSpot documents."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from connectors.errors import ConfigError, FatalError, RetriableError
from tests.fake_crm import Window, sustained_share
from tests.fake_hubspot import FakeHubSpot
from tests.flows.crm_helpers import (
    crash_once_before_the_watermark,
    run,
    store,
    write_signups,
)

pytestmark = pytest.mark.usefixtures("prefect_api")

STAFFED = ["enterprise-na", "enterprise-intl", "inbound-na", "inbound-emea", "inbound-row"]  # queues with SDRs

WRITES = ("/batch/upsert", "/batch/create", "/groups", "/associate/")


def _business(n: int, free_every: int = 10) -> int:
    return n - n // free_every


def test_a_thousand_leads_reach_hubspot_once_each_linked_to_their_company(
    hubspot: FakeHubSpot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_signups(tmp_path / "signups.csv", 1000)
    summary = run(source=str(source))

    assert summary["leads"] == 1000 and summary["crm_written"] == 1000 and summary["crm_failed"] == 0
    assert hubspot.max_inputs <= 100
    contacts = hubspot.contacts()
    assert len(contacts) == 1000 and hubspot.creates["contacts"] == 1000
    assert len(hubspot.companies()) == 90 and hubspot.creates["companies"] == 90  # companies x9 sign up on gmail
    assert len(hubspot.associations) == _business(1000)
    assert hubspot.company_of("person3@company3.com") == "company3.com"
    assert hubspot.company_of("person9@gmail.com") is None
    assert summary["crm_api_calls"] == len(hubspot.requests) <= 40

    # owners are HubSpot owner ids (not userIds) of the SDR routing chose
    assigned = store().read("select email, owner from assignments where owner is not null")
    owner_ids = {o["email"]: o["id"] for o in hubspot.owners}
    assert assigned.height > 0
    for email, owner in assigned.iter_rows():
        assert contacts[email]["hubspot_owner_id"] == owner_ids[owner]

    # a rerun adds nothing; even with leadq's local state lost, upserts by key create nothing twice
    before = (dict(hubspot.creates), set(hubspot.associations))
    assert run(source=str(source))["processed"] == 0
    monkeypatch.setenv("LEADQ_HOME", str(tmp_path / "lost-home"))
    assert run(source=str(source))["crm_written"] == 1000
    assert (dict(hubspot.creates), set(hubspot.associations)) == before
    assert {e: c.get("hubspot_owner_id") for e, c in hubspot.contacts().items()} == {
        e: c.get("hubspot_owner_id") for e, c in contacts.items()
    }


def test_properties_are_created_once_in_the_leadq_group(hubspot: FakeHubSpot, tmp_path: Path) -> None:
    run(source=str(write_signups(tmp_path / "a.csv", 20)))
    assert {
        "leadq_score",
        "leadq_tier",
        "leadq_reasons",
        "leadq_queue",
        "leadq_icp_version",
        "leadq_method",
        "leadq_needs_review",
    } <= set(hubspot.properties["contacts"])
    assert hubspot.properties["contacts"]["leadq_score"]["groupName"] == "leadq"
    assert hubspot.properties["companies"]["leadq_company_key"]["hasUniqueValue"] is True
    assert hubspot.groups == {"contacts": {"leadq"}, "companies": {"leadq"}}
    run(source=str(write_signups(tmp_path / "b.csv", 20, first=20)))
    assert sum(1 for s in hubspot.requests if s.path.endswith("/batch/create")) == 2


def test_a_mapped_property_hubspot_lacks_fails_the_run_naming_it(
    hubspot: FakeHubSpot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADQ__CRM__HUBSPOT__CONTACT_PROPERTIES", '{email = "email", job_title = "title_custom"}')
    with pytest.raises(FatalError, match="contacts have no property 'title_custom'"):
        run(source=str(write_signups(tmp_path / "a.csv", 5)))
    assert hubspot.contacts() == {}
    assert store().watermark(store_key(tmp_path / "a.csv")).signed_up_at is None


def test_refused_inputs_go_to_dead_letters_and_the_rest_are_committed(hubspot: FakeHubSpot, tmp_path: Path) -> None:
    hubspot.refuse_emails = {"person3@company3.com"}  # a 207 with a per-input error
    hubspot.poison_emails = {"person5@company5.com"}  # a 400 for any batch that holds it
    source = write_signups(tmp_path / "a.csv", 150)
    summary = run(source=str(source))

    assert summary["crm_failed"] == 2 and summary["crm_written"] == 148
    assert len(hubspot.contacts()) == 148
    letters = store().read("select key, reason, raw from dead_letters where source_key = 'crm:hubspot'")
    reasons = dict(zip(letters["key"], letters["reason"], strict=True))
    assert "Email address person3@company3.com is invalid" in reasons["crm:hubspot|person3@company3.com"]
    assert "email person5@company5.com is invalid" in reasons["crm:hubspot|person5@company5.com"]
    assert all(json.loads(raw)["id"].startswith("person") for raw in letters["raw"])
    # the batch is committed: a rerun processes nothing
    assert run(source=str(source))["processed"] == 0


def test_a_crash_after_the_crm_write_is_redone_without_duplicates(
    hubspot: FakeHubSpot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_signups(tmp_path / "a.csv", 300)
    crash_once_before_the_watermark(monkeypatch, "power cut before the watermark commit")
    with pytest.raises(RuntimeError, match="power cut"):
        run(source=str(source))
    written = {e: c.get("hubspot_owner_id") for e, c in hubspot.contacts().items()}
    assert written

    summary = run(source=str(source))
    assert summary["crm_written"] == 300
    assert hubspot.creates["contacts"] == 300 and hubspot.creates["companies"] == 90
    assert len(hubspot.associations) == _business(300)
    assert {e: hubspot.contacts()[e].get("hubspot_owner_id") for e in written} == written
    assert store().counts()["leads"] == 300


def test_ten_secondly_429s_are_waited_out_as_hubspot_asks(
    hubspot: FakeHubSpot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADQ__CRM__HUBSPOT__WINDOW_REQUESTS", "0")  # no client pacing: let the server say no
    monkeypatch.setenv("LEADQ__CRM__HUBSPOT__MAX_BACKOFF_S", "5")
    hubspot.window = Window(limit=4, seconds=0.5)
    hubspot.rate_headers = False  # nothing to learn the window from before the first 429
    summary = run(source=str(write_signups(tmp_path / "a.csv", 200)))

    assert summary["crm_written"] == 200 and summary["crm_rate_limited"] == hubspot.window.rejected > 0
    assert summary["crm_waited_s"] >= 0.5 * summary["crm_rate_limited"]
    assert len(hubspot.contacts()) == 200


def test_a_spent_daily_limit_stops_cleanly_and_the_next_run_resumes(
    hubspot: FakeHubSpot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADQ__RUN__BATCH_SIZE", "100")
    source = write_signups(tmp_path / "a.csv", 300)
    hubspot.daily_limit = 14  # setup (7) and one batch of 100 (4), then part of the next
    summary = run(source=str(source))

    assert summary["crm_stopped"] and "daily API limit" in summary["crm_stopped"]
    assert summary["processed"] == 100 and summary["crm_written"] == 100
    assert summary["crm_daily_remaining"] == "0"
    status = store().read("select status from runs")["status"].to_list()
    assert status == ["stopped"]

    hubspot.daily_limit, hubspot.daily_used = None, 0  # a new day
    summary = run(source=str(source))
    assert summary["processed"] == 200 and summary["crm_stopped"] is None
    assert hubspot.creates["contacts"] == 300 == len(hubspot.contacts())
    assert len(hubspot.associations) == _business(300)


def test_a_short_5xx_storm_is_retried_a_long_one_fails_and_loses_nothing(hubspot: FakeHubSpot, tmp_path: Path) -> None:
    source = write_signups(tmp_path / "a.csv", 120)
    hubspot.storm = [503, 502, 500]
    assert run(source=str(source), dry_run=False)["crm_written"] == 120

    more = write_signups(tmp_path / "b.csv", 50, first=120)
    hubspot.storm = [503] * 30
    with pytest.raises(RetriableError, match="gave up after 5 attempts"):
        run(source=str(more))
    hubspot.storm = []
    summary = run(source=str(more))
    assert summary["processed"] == 50 and summary["crm_written"] == 50
    assert hubspot.creates["contacts"] == 170 == len(hubspot.contacts())


def test_owners_set_in_hubspot_are_kept_unless_the_queue_reassigns(
    hubspot: FakeHubSpot, config_dir: Path, tmp_path: Path
) -> None:
    hubspot.seed_contact("person3@company3.com", hubspot_owner_id="777")  # a person's, not an SDR
    hubspot.owners.append({"id": "777", "userId": 1, "email": "ae@example.com", "archived": False})
    source = write_signups(tmp_path / "a.csv", 10)
    run(source=str(source))
    assert store().read("select queue from assignments where email = 'person3@company3.com'")["queue"][0] == (
        "enterprise-na"
    )
    assert hubspot.contacts()["person3@company3.com"]["hubspot_owner_id"] == "777"
    owner = store().read("select owner from assignments where email = 'person3@company3.com'")["owner"][0]
    assert owner == "ae@example.com"

    routing = (config_dir / "routing.yaml").read_text()
    queue = store().read("select queue from assignments where email = 'person3@company3.com'")["queue"][0]
    routing = routing.replace(f"  {queue}:\n    sdrs:", f"  {queue}:\n    reassign: true\n    sdrs:")
    (config_dir / "routing.yaml").write_text(routing)
    run(source=str(write_signups(tmp_path / "a2.csv", 1, first=3)))  # the same signup again, from a new file
    assert hubspot.contacts()["person3@company3.com"]["hubspot_owner_id"] in {o["id"] for o in hubspot.owners[:-1]}


def test_owners_are_read_across_pages(hubspot: FakeHubSpot, tmp_path: Path) -> None:
    hubspot.owners_page_size = 2
    run(source=str(write_signups(tmp_path / "a.csv", 30)))
    assert sum(1 for s in hubspot.requests if s.path == "/crm/v3/owners") == -(-len(hubspot.owners) // 2)
    assert all(
        c.get("hubspot_owner_id") in {o["id"] for o in hubspot.owners} | {None} for c in hubspot.contacts().values()
    )


def test_a_dry_run_reads_but_writes_nothing(hubspot: FakeHubSpot, tmp_path: Path) -> None:
    summary = run(source=str(write_signups(tmp_path / "a.csv", 40)), dry_run=True)
    assert not [s.path for s in hubspot.requests if any(w in s.path for w in WRITES)]
    assert summary["crm_plan"] == {
        "contacts": 40,
        "companies": 36,
        "associations": 36,
        "owners_set": summary["crm_plan"]["owners_set"],
        "properties_to_create": 10,  # leadq_routing_reason among them
    }
    assert summary["crm_plan"]["owners_set"] > 0
    assert summary["crm_sample"][0]["properties"]["leadq_tier"] in {"A", "B", "C", "D", "disqualified"}


def test_the_limiter_sustains_the_window_rate_without_a_single_429(
    hubspot: FakeHubSpot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # HubSpot's 100 requests per 10 s, on a 2 s window so the test takes seconds
    hubspot.window = Window(limit=100, seconds=2.0)
    monkeypatch.setenv("LEADQ__CRM__HUBSPOT__WINDOW_S", "2.0")
    monkeypatch.setenv("LEADQ__CRM__HUBSPOT__WINDOW_MARGIN_S", "0.05")
    monkeypatch.setenv("LEADQ__CRM__HUBSPOT__BATCH_SIZE", "5")  # many small calls
    summary = run(source=str(write_signups(tmp_path / "a.csv", 700)))

    assert summary["crm_written"] == 700
    assert hubspot.window.rejected == 0 and summary["crm_rate_limited"] == 0
    assert len(hubspot.requests) > 300
    assert sustained_share(hubspot.api_times(), 100, 2.0) >= 0.9


def test_a_portal_with_a_lower_limit_than_configured_costs_at_most_one_429(
    hubspot: FakeHubSpot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """leadq is configured for 100 requests per window; this portal allows 20. HubSpot says so in
    every answer's X-HubSpot-RateLimit-* headers, and leadq paces by them from then on."""
    hubspot.window = Window(limit=20, seconds=1.0)
    monkeypatch.setenv("LEADQ__CRM__HUBSPOT__WINDOW_S", "1.0")
    monkeypatch.setenv("LEADQ__CRM__HUBSPOT__WINDOW_MARGIN_S", "0.05")
    monkeypatch.setenv("LEADQ__CRM__HUBSPOT__BATCH_SIZE", "5")  # many small calls
    summary = run(source=str(write_signups(tmp_path / "a.csv", 300)))

    assert summary["crm_written"] == 300 and len(hubspot.requests) > 100
    assert summary["crm_rate_limited"] == hubspot.window.rejected <= 1
    assert summary["crm_window"] == "20 per 1.05 s"
    assert sustained_share(hubspot.api_times(), 20, 1.0) >= 0.85


def test_no_token_is_a_config_error_and_a_refused_token_names_the_setting(
    hubspot: FakeHubSpot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = str(write_signups(tmp_path / "a.csv", 5))
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN")
    with pytest.raises(ConfigError, match="HUBSPOT_ACCESS_TOKEN"):
        run(source=source)
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-wrong-token")
    hubspot.echo_token = True  # the refusal quotes the header it got, token and all
    with pytest.raises(FatalError, match="token_env variable was refused") as refused:
        run(source=source)
    assert hubspot.fake.seen[-1].headers["authorization"] == "Bearer pat-wrong-token"  # it did travel, in the header
    assert "Bearer ***" in str(refused.value) and "pat-wrong-token" not in str(refused.value)


def test_a_vendor_that_echoes_the_token_leaks_it_nowhere(
    hubspot: FakeHubSpot, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The token travels only in the Authorization header; a refusal that quotes it is stored, logged,
    exported and printed with *** in its place."""
    from prefect.artifacts import Artifact
    from typer.testing import CliRunner

    from connectors.settings import load_settings
    from flows.cli import app

    hubspot.echo_token = True
    hubspot.refuse_emails = {"person3@company3.com"}
    summary = run(source=str(write_signups(tmp_path / "a.csv", 20)))
    assert summary["crm_failed"] == 1
    token = hubspot.token
    assert {s.headers.get("authorization") for s in hubspot.requests} == {f"Bearer {token}"}
    assert not any(token in s.path + json.dumps(s.query) + str(s.body) for s in hubspot.fake.seen)
    reason = store().read("select reason from dead_letters")["reason"].to_list()
    assert reason == [
        "hubspot contact person3@company3.com: Email address person3@company3.com is invalid (request by ***)"
    ]
    database = Path(load_settings().store_url.removeprefix("sqlite:///"))
    assert token.encode() not in database.read_bytes()
    listed = CliRunner().invoke(app, ["dead-letters", "list", "--json"])
    exported = CliRunner().invoke(app, ["export"])
    assert listed.exit_code == exported.exit_code == 0 and "request by ***" in listed.stdout
    assert token not in listed.stdout + exported.stdout + caplog.text
    report = Artifact.get("qualify-signups-report")
    assert report is not None and token not in str(report.data)


def store_key(path: Path) -> str:
    return f"file:{path}"


def test_the_cli_dry_run_prints_what_it_would_write_and_a_stop_says_so(hubspot: FakeHubSpot, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from flows.cli import app

    source = str(write_signups(tmp_path / "a.csv", 40))
    result = CliRunner().invoke(app, ["run", "--source", source, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "Would write to hubspot: 40 contacts, 36 companies, 36 associations" in result.stdout
    assert '"idProperty": "email"' in result.stdout

    hubspot.daily_limit = 3
    result = CliRunner().invoke(app, ["run", "--source", source])
    assert result.exit_code == 0, result.output
    assert "Stopped early:" in result.stdout and "daily API limit" in result.stdout


def test_hubspot_refuses_101_inputs_and_leadq_cannot_be_set_to_send_them(
    hubspot: FakeHubSpot, monkeypatch: pytest.MonkeyPatch
) -> None:
    import requests

    from connectors.settings import load_settings

    inputs = [{"idProperty": "email", "id": f"p{i}@x.io", "properties": {"email": f"p{i}@x.io"}} for i in range(101)]
    answer = requests.post(
        f"{hubspot.fake.url}/crm/v3/objects/contacts/batch/upsert",
        json={"inputs": inputs},
        headers={"Authorization": f"Bearer {hubspot.token}"},
        timeout=5,
    )
    assert answer.status_code == 400 and answer.json()["category"] == "VALIDATION_ERROR"
    assert hubspot.contacts() == {}
    monkeypatch.setenv("LEADQ__CRM__HUBSPOT__BATCH_SIZE", "101")
    with pytest.raises(ConfigError, match=r"crm\.hubspot\.batch_size"):
        load_settings()


def test_a_lead_of_a_company_with_an_owner_in_hubspot_goes_to_that_owner(
    hubspot: FakeHubSpot, config_dir: Path, tmp_path: Path
) -> None:
    run(source=str(write_signups(tmp_path / "a.csv", 40)))  # leadq writes the companies
    emery = next(o for o in hubspot.owners if o["email"] == "emery@example.com")
    hubspot.companies()["company3.com"]["hubspot_owner_id"] = emery["id"]  # a person makes emery its owner
    run(source=str(write_signups(tmp_path / "b.csv", 40, first=100)))
    routed = store().read("select a.email, a.owner, a.routing_reason, a.queue from assignments a")
    later = routed.filter(pl.col("email").str.ends_with("@company3.com") & ~pl.col("email").is_in(_emails(40)))
    later = later.filter(pl.col("queue").is_in(STAFFED))
    assert later.height > 0
    assert set(later["owner"]) == {"emery@example.com"}
    assert set(later["routing_reason"]) == {"account owner of company3.com"}
    contact = hubspot.contacts()[later["email"][0]]
    assert (
        contact["hubspot_owner_id"] == emery["id"]
        and contact["leadq_routing_reason"] == "account owner of company3.com"
    )
    asked = [s.body for s in hubspot.requests if s.path == "/crm/v3/objects/companies/batch/read"]
    assert len(asked) == 1  # the second run only: in the first, leadq had written no company yet


def _emails(n: int) -> list[str]:
    return [f"person{i}@company{i % 100}.com" for i in range(n)]
