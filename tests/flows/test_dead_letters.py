"""Dead letters retried after a fix go through the normal path; fixed ones leave the table."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from flows.cli import app
from tests.fake_hubspot import FakeHubSpot
from tests.flows.crm_helpers import run, store, write_signups

pytestmark = pytest.mark.usefixtures("prefect_api")
runner = CliRunner()


def test_rejected_rows_retried_after_a_settings_fix_become_leads(
    config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "signups.csv"
    rows = pl.read_csv(config_dir / "data" / "sample_signups.csv", infer_schema=False)
    long_title = "Head of Revenue Operations, Sales Strategy, Pricing, Partnerships and Customer Success " * 2
    rows.with_columns(
        pl.when(pl.col("signup_id").is_in(["s-1003", "s-1004"]))
        .then(pl.lit(long_title))
        .otherwise(pl.col("job_title"))
        .alias("job_title")
    ).write_csv(path)
    monkeypatch.setenv("LEADQ__PREPARE__MAX_FIELD_CHARS", "100")
    first = json.loads(runner.invoke(app, ["run", "--source", str(path), "--json"]).stdout)
    assert first["rejected"] == 4  # the two long titles, and the sample's two bad emails
    letters = store().dead_letters()
    assert letters.filter(pl.col("reason").str.contains("job_title")).height == 2

    monkeypatch.setenv("LEADQ__PREPARE__MAX_FIELD_CHARS", "1000")  # the fix
    result = runner.invoke(app, ["dead-letters", "retry", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"retried": 4, "fixed": 2, "still_failing": 2}
    left = store().dead_letters()
    assert left.height == 2 and not left["reason"].str.contains("job_title").any()
    fixed = store().read("select email, job_title, signed_up_at from leads where signup_id in ('s-1003', 's-1004')")
    assert fixed.height == 2 and fixed["job_title"].str.len_chars().min() > 100
    assert fixed["signed_up_at"].null_count() == 0  # the signup time came back as the source had it
    assert store().read("select * from assignments where email = 'priya@acmecloud.com'").height == 1


def test_crm_refusals_retried_once_the_crm_accepts_them_are_written_and_cleared(
    hubspot: FakeHubSpot, tmp_path: Path
) -> None:
    hubspot.refuse_emails = {"person3@company3.com", "person5@company5.com"}
    run(source=str(write_signups(tmp_path / "signups.csv", 50)))
    assert store().dead_letters(crm=True).height == 2

    hubspot.refuse_emails = {"person5@company5.com"}  # someone fixed one in HubSpot
    result = runner.invoke(app, ["dead-letters", "retry", "--only", "crm", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"retried": 2, "fixed": 1, "still_failing": 1}
    assert store().dead_letters(crm=True)["key"].to_list() == ["crm:hubspot|person5@company5.com"]
    assert "person3@company3.com" in hubspot.contacts() and "person5@company5.com" not in hubspot.contacts()
