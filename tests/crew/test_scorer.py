from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml

from connectors.errors import ConfigError
from crew.icp import load_icp
from crew.scorer import score_leads

ICP = {
    "tiers": {"A": 80, "B": 60, "C": 35},
    "criteria": {
        "industry": {"field": "industry", "weight": 50, "match": {"Software": 1.0, "retail": 0.2}},
        "size": {
            "field": "employees",
            "weight": 30,
            "bands": [{"max": 10, "fraction": 0.0}, {"min": 11, "fraction": 1.0}],
        },
        "usage": {"field": "seats", "weight": 20, "bands": [{"min": 5, "fraction": 1.0}]},
    },
    "disqualifiers": [{"name": "competitor", "field": "company_domain", "in": ["rival.com"]}],
}


def _icp(tmp_path: Path, data: dict[str, object] = ICP) -> Path:
    path = tmp_path / "icp.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _leads() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "email": ["a@x.io", "b@y.io", "c@rival.com", "d@z.io"],
            "company_domain": ["x.io", "y.io", "rival.com", "z.io"],
            "industry": ["software", "retail", "software", None],
            "employees": [500, 5, 500, None],
            "seats": ["12", "1", "9", None],
        }
    )


def test_scores_tiers_confidence_and_reasons(tmp_path: Path) -> None:
    out = score_leads(_leads(), load_icp(_icp(tmp_path)), top_reasons=2).to_dicts()
    a, b, c, d = out
    assert (a["score"], a["tier"], a["confidence"]) == (100, "A", 1.0)
    assert a["reasons"] == "industry software: +50 of 50; size 500: +30 of 30"
    assert (b["score"], b["tier"]) == (10, "D")
    assert c["tier"] == "disqualified" and c["disqualified_by"] == "competitor"
    assert c["reasons"].startswith("disqualified: competitor; ")
    assert c["score"] == 100  # the score stays visible; the disqualifier decides the tier
    assert (d["score"], d["confidence"], d["reasons"]) == (0, 0.0, "")


def test_missing_signal_column_counts_as_unknown(tmp_path: Path) -> None:
    out = score_leads(_leads().drop("seats"), load_icp(_icp(tmp_path)))
    assert out["confidence"].to_list()[0] == 0.8
    assert out["score"].to_list()[0] == 80


def test_version_is_a_hash_of_the_file(tmp_path: Path) -> None:
    first = load_icp(_icp(tmp_path)).version
    changed = {**ICP, "tiers": {"A": 85, "B": 60, "C": 35}}
    second = load_icp(_icp(tmp_path, changed)).version
    assert len(first) == 12 and first != second
    assert score_leads(_leads(), load_icp(_icp(tmp_path)))["icp_version"].unique().to_list() == [first]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"tiers": {"A": 50, "B": 60, "C": 35}}, "tier minimums must fall"),
        ({"criteria": {"x": {"field": "industry", "weight": 10}}}, "exactly one of 'match'"),
        ({"criteria": {"x": {"field": "industry", "weight": 10, "match": {"a": 3}}}}, "fraction from -1 to 1"),
        ({"criteria": {"x": {"field": "industry", "weight": -1, "match": {"a": 1}}}}, "criteria.x.weight"),
    ],
)
def test_bad_icp_names_file_and_problem(tmp_path: Path, change: dict[str, object], expected: str) -> None:
    path = _icp(tmp_path, {**ICP, **change})
    with pytest.raises(ConfigError) as err:
        load_icp(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_shipped_icp_is_valid(config_dir: Path) -> None:
    icp = load_icp(config_dir / "icp.yaml")
    assert icp.qualified_tiers == ["A", "B"]


# A calibrated ICP maps the points its leads can reach onto 0..100, so 0 points (no evidence) lands mid-scale.
CALIBRATED = {**ICP, "tiers": {"A": 80, "B": 50, "C": 35}, "points_floor": -50, "points_range": 100}


def test_a_lead_without_evidence_is_not_qualified_whatever_its_score(tmp_path: Path) -> None:
    nobody = pl.DataFrame({"email": ["nobody123@gmail.com"], "company_domain": [None], "industry": [None]})
    row = score_leads(nobody, load_icp(_icp(tmp_path, CALIBRATED))).row(0, named=True)
    assert (row["score"], row["confidence"]) == (50, 0.0)  # tier B by score alone: today's defect
    assert row["tier"] == "C"
    assert row["reasons"] == "not enough evidence (confidence 0.0 < 0.3)"


def test_the_evidence_gate_holds_back_only_thin_qualifying_leads(tmp_path: Path) -> None:
    leads = pl.DataFrame(
        {
            "email": ["thin@x.io", "known@y.io", "low@z.io"],
            "company_domain": ["x.io", "y.io", "z.io"],
            "industry": [None, "software", None],
            "employees": [None, 500, 5],
            "seats": ["9", None, None],
        }
    )
    out = score_leads(leads, load_icp(_icp(tmp_path, CALIBRATED))).to_dicts()
    thin, known, low = out
    assert (thin["confidence"], thin["tier"]) == (0.2, "C")  # 20 of 100 weight known: below 0.3
    assert thin["reasons"].startswith("not enough evidence (confidence 0.2 < 0.3); usage 9: +20 of 20")
    assert (known["confidence"], known["tier"]) == (0.8, "A")
    assert (low["confidence"], low["score"], low["tier"]) == (0.3, 50, "B")  # at the gate: qualified
    assert "evidence" not in low["reasons"]
    opened = score_leads(leads, load_icp(_icp(tmp_path, {**CALIBRATED, "min_confidence_to_qualify": 0})))
    assert opened["tier"].to_list() == ["B", "A", "B"]  # thin: 20 points, score 70


def test_the_gated_tier_is_the_best_unqualified_one(tmp_path: Path) -> None:
    icp = load_icp(_icp(tmp_path, {**CALIBRATED, "qualified_tiers": ["A", "B", "C"]}))
    nobody = pl.DataFrame({"email": ["nobody123@gmail.com"], "industry": [None]})
    assert score_leads(nobody, icp)["tier"].to_list() == ["D"]
    with pytest.raises(ConfigError, match="qualified_tiers cannot include D"):
        load_icp(_icp(tmp_path, {**CALIBRATED, "qualified_tiers": ["A", "D"]}))


def test_placeholder_values_are_missing_not_values(tmp_path: Path) -> None:
    icp = {**ICP, "criteria": {**ICP["criteria"], "industry": {**ICP["criteria"]["industry"], "default": 0.4}}}  # type: ignore[dict-item]
    leads = pl.DataFrame({"email": ["a@x.io", "b@y.io"], "industry": ["Select", "N/A "], "seats": ["9", "9"]})
    before = score_leads(leads, load_icp(_icp(tmp_path, icp)))
    assert before["reasons"][0].startswith("industry Select: +20 of 50")  # today: a placeholder earns the default
    after = score_leads(leads, load_icp(_icp(tmp_path, {**icp, "missing_values": ["select", "n/a"]})))
    assert after["score"].to_list() == [20, 20] and after["confidence"].to_list() == [0.2, 0.2]
    assert not any("industry" in r for r in after["reasons"].to_list())
