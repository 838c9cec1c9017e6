"""Eval metrics on frames small enough to check by hand."""

from __future__ import annotations

import polars as pl

from crew.metrics import calibration_table, criterion_lift, evaluate, precision_at_k, routing_accuracy, tier_confusion


def _scored() -> pl.DataFrame:
    # 4 qualified, 4 not; scores put three of the four qualified on top
    return pl.DataFrame(
        {
            "email": [f"l{i}@x.com" for i in range(8)],
            "score": [95, 90, 85, 70, 60, 40, 30, 20],
            "tier": ["A", "A", "A", "B", "B", "C", "D", "D"],
            "queue": ["q1", "q1", "q2", "q2", None, "nurture", "nurture", None],
            "label_qualified": [1, 1, 0, 1, 0, 1, 0, 0],
            "label_tier": ["A", "A", "C", "B", "C", "B", "D", "D"],
            "label_queue": ["q1", "q1", "nurture", "q2", "nurture", "q1", "nurture", None],
            "points_industry": [20.0, 20.0, 20.0, 0.0, 20.0, 0.0, 0.0, 0.0],
        }
    )


def test_auc_precision_recall_f1_at_the_qualified_tiers() -> None:
    m = evaluate(_scored(), ["A", "B"], {"industry": 25})
    # pairs (qualified, not) ranked right: 95,90 beat all 4; 70 beats 60,30,20; 40 beats 30,20 → 4+4+3+2 = 13 of 16
    assert m["roc_auc"] == round(13 / 16, 4)
    assert (m["predicted_qualified"], m["precision"], m["recall"]) == (5, 0.6, 0.75)
    assert m["f1"] == round(2 * 0.6 * 0.75 / 1.35, 4)
    assert (m["leads"], m["positives"], m["base_rate"]) == (8, 4, 0.5)


def test_precision_at_k_takes_the_best_scores_first() -> None:
    assert precision_at_k(_scored()) == {"@top10% (1)": 1.0}
    big = pl.DataFrame(
        {"email": [f"{i}" for i in range(20)], "score": list(range(20)), "label_qualified": [0] * 10 + [1] * 10}
    )
    assert precision_at_k(big)["@10"] == 1.0


def test_calibration_deciles_tier_confusion_routing_and_lift() -> None:
    table = calibration_table(_scored(), bins=4)
    assert table["leads"].to_list() == [2, 2, 2, 2]
    assert table["qualified_rate"].to_list() == [0.0, 0.5, 0.5, 1.0]
    confusion = tier_confusion(_scored())
    assert confusion["matrix"]["C"] == {"A": 1, "B": 1} and confusion["accuracy"] == round(5 / 8, 4)
    # l7 (no queue on either side) is left out; of the other 7, l2, l4 and l5 were routed elsewhere
    assert routing_accuracy(_scored()) == round(4 / 7, 4)
    lift = criterion_lift(_scored(), {"industry": 25}).row(0, named=True)
    assert (lift["favoured"], lift["favoured_rate"], lift["lift"]) == (4, 0.5, 1.0)


def test_disqualified_leads_rank_last_whatever_their_score() -> None:
    scored = _scored().with_columns(
        pl.when(pl.col("email") == "l2@x.com").then(pl.lit("disqualified")).otherwise("tier").alias("tier")
    )
    m = evaluate(scored, ["A", "B"], {"industry": 25})
    # the unqualified 85 (l2) is disqualified: it now ranks below all, so all four qualified beat it: 15 of 16
    assert m["roc_auc"] == round(15 / 16, 4)
    big = pl.DataFrame(
        {
            "email": [f"{i:02d}" for i in range(20)],
            "score": [99] * 2 + list(range(18)),
            "tier": ["disqualified"] * 2 + ["A"] * 18,
            "label_qualified": [0] * 2 + [0] * 8 + [1] * 10,
        }
    )
    assert precision_at_k(big)["@10"] == 1.0  # the two 99s are disqualified: they are not in the top 10


def test_ties_are_reported_and_broken_by_confidence_then_email() -> None:
    tied = pl.DataFrame(
        {
            "email": [f"{i:02d}" for i in range(20)],
            "score": [50] * 20,
            "tier": ["B"] * 20,
            "confidence": [0.2] * 10 + [0.9] * 10,
            "label_qualified": [0] * 10 + [1] * 10,
        }
    )
    m = evaluate(tied, ["A", "B"], {})
    assert m["ties"]["distinct_scores"] == 1 and m["ties"]["largest_tie"] == 20
    assert m["ties"]["cuts_inside_a_tie"] == {"@10": 20, "@2": 20}  # precision@10 and the top 10 % fall in the tie
    assert m["precision_at_k"]["@10"] == 1.0  # the tie rule: more evidence first, not the file's order


def test_tiers_read_as_probabilities_give_a_brier_score_and_a_calibration_error() -> None:
    scored = pl.DataFrame(
        {
            "email": [f"{i}" for i in range(6)],
            "score": [90, 85, 80, 40, 30, 20],
            "tier": ["A", "A", "A", "C", "C", "disqualified"],
            "label_qualified": [1, 1, 0, 0, 0, 1],
        }
    )
    assert evaluate(scored, ["A"], {})["brier"] is None  # an ICP without rates says nothing of probabilities
    m = evaluate(scored, ["A"], {}, {"A": 0.5, "C": 0.1})
    # A: (0.25 + 0.25 + 0.25); C: 0.01 + 0.01; disqualified promised 0, converted: 1 → 1.77 / 6
    assert m["brier"] == round(1.77 / 6, 4)
    # per tier |promised - seen| x leads: A |0.5 - 2/3| x 3 = 0.5, C 0.1 x 2 = 0.2, disqualified 1 x 1 → 1.7 / 6
    assert m["ece"] == round(1.7 / 6, 4)
