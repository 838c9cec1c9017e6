"""`leadq explain`: one lead's whole story, from the signup rows to the CRM, on an 80-column terminal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.qualify import qualify_signups

pytestmark = pytest.mark.usefixtures("prefect_api")
runner = CliRunner()


def test_explain_tells_a_reviewed_lead_from_signup_rows_to_owner(config_dir: Path) -> None:
    routing = config_dir / "routing.yaml"
    routing.write_text(
        routing.read_text().replace("accounts: {}\n", "accounts:\n  northwind.io: {approval_required: true}\n")
    )
    qualify_signups()
    decided = runner.invoke(
        app,
        [
            "review",
            "approve",
            "maria.lopez@northwind.io",
            "--tier",
            "B",
            "--by",
            "rita",
            "--reason",
            "strategic account",
        ],
    )
    assert decided.exit_code == 0, decided.output

    story = json.loads(runner.invoke(app, ["explain", "Maria.Lopez@Northwind.io", "--json"]).stdout)
    assert [(s["row_number"], s["outcome"]) for s in story["signups"]] == [(2, "duplicate"), (25, "lead")]
    kinds = [d["kind"] for d in story["decisions"]]
    assert kinds[0] == "held" and kinds[-1] == "decided"
    final = story["decisions"][-1]["detail"]
    assert final["tier"] == "B" and final["method"] == "review" and final["owner"]
    assert story["reviews"][0]["decided_by"] == "rita" and story["reviews"][0]["why"] == "strategic account"
    assert story["labels"][0]["label_tier"] == "B"
    assert story["company"]["fields"]["industry"]["source"] == "reference"
    assert story["assignment"]["owner"] == final["owner"]

    shown = runner.invoke(app, ["explain", "maria.lopez@northwind.io"], env={"COLUMNS": "80"})
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    text = shown.stdout
    for part in (
        "Signup rows",
        "sample_signups.csv row 25",
        "held: account northwind.io requires approval",
        "approved by rita: strategic account",
        "industry: computer software  <- reference",
        "why: ",  # the routing reason
        "first touch: not yet",
    ):
        assert part in text, part


def test_explain_of_an_unknown_email_says_so(config_dir: Path) -> None:
    qualify_signups()
    result = runner.invoke(app, ["explain", "nobody@nowhere.io"])
    assert result.exit_code == 2 and "no lead or signup row for 'nobody@nowhere.io'" in result.stderr
