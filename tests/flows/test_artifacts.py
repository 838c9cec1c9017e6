"""The run report people read in the Prefect UI."""

from __future__ import annotations

from typing import Any

from flows.artifacts import render_markdown


def _summary(**extra: Any) -> dict[str, Any]:
    return {
        "processed": 1200,
        "rejected": 3,
        "leads": 1190,
        "qualified": 700,
        "held_for_review": 4,
        "needs_review": 6,
        "duplicates": 7,
        "by_tier": {"A": 700},
        "by_queue": {"inbound-na": 1190},
        "duration_s": 2.5,
        "ledger": {
            "processed": 1200,
            "leads": 1190,
            "duplicates": 7,
            "rejected": 3,
            "skipped_known": 0,
            "balanced": True,
        },
        **extra,
    }


def test_each_enrichment_provider_is_one_row_with_why_it_was_off() -> None:
    text = render_markdown(
        _summary(
            enrichment_calls={"reference": 0, "website": 12},
            enrichment_cost={"website": 0},
            enrichment_time_s={"website": 3.2},
            enrichment_off={"website": "5 failures in a row", "apollo": "APOLLO_API_KEY is not set"},
        )
    )
    rows = [line for line in text.splitlines() if line.startswith(("| reference", "| website", "| apollo"))]
    assert rows == [
        "| reference | 0 | 0 | 0 |  |",
        "| website | 12 | 0 | 3.2 | off: 5 failures in a row |",
        "| apollo | 0 | 0 | 0 | off: APOLLO_API_KEY is not set |",
    ]


def test_held_and_needs_review_are_each_explained_in_one_line() -> None:
    text = render_markdown(_summary())
    held = [line for line in text.splitlines() if line.startswith("- **Held for review: 4.**")]
    needs = [line for line in text.splitlines() if line.startswith("- **Needs review: 6.**")]
    assert len(held) == len(needs) == 1
    assert "until a person decides" in held[0] and "flagged" in needs[0]
