"""How good the scoring is, measured on labelled leads: pure functions of a scored frame.

The frame has `score`, `tier`, `queue`, `label_qualified` (0/1) and optionally
`label_tier`, `label_queue` and one `points_<criterion>` column per ICP criterion
(weights: criterion → weight).
"""

from __future__ import annotations

from typing import Any

import polars as pl
from sklearn.metrics import roc_auc_score, roc_curve

PRECISION_AT = (10, 50, 100, 500, 1000)
DISQUALIFIED = "disqualified"


def ranking(scored: pl.DataFrame) -> pl.Series:
    """What eval ranks leads by: the score, with every disqualified lead below every other (-1), as
    routing treats them: a disqualifier wins over any score."""
    if "tier" not in scored.columns:
        return scored["score"].cast(pl.Float64)
    disqualified = (scored["tier"] == DISQUALIFIED).fill_null(False)
    return scored["score"].cast(pl.Float64).zip_with(~disqualified, pl.Series([-1.0] * scored.height))


def ranked(scored: pl.DataFrame) -> pl.DataFrame:
    """Leads best first, by `ranking`; ties broken by the documented rule: the higher confidence first
    (more evidence), then the email, so the order is repeatable."""
    keys = ["_rank", *(["confidence"] if "confidence" in scored.columns else []), "email"]
    descending = [True, *([True] if "confidence" in scored.columns else []), False]
    return scored.with_columns(ranking(scored).alias("_rank")).sort(keys, descending=descending, nulls_last=True)


def evaluate(
    scored: pl.DataFrame,
    qualified_tiers: list[str],
    weights: dict[str, float],
    expected_conversion: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Every metric of `leadq eval`, as plain JSON-able values."""
    y = scored["label_qualified"]
    predicted = scored["tier"].is_in(qualified_tiers)
    metrics: dict[str, Any] = {
        "leads": scored.height,
        "positives": int(y.sum()),
        "base_rate": round(float(y.mean() or 0.0), 4),  # type: ignore[arg-type]
        "roc_auc": roc_auc(scored),
        **precision_recall_f1(y, predicted),
        "precision_at_k": precision_at_k(scored),
        "ties": ties(scored),
        **probability_scores(scored, expected_conversion),
        "calibration": calibration_table(scored).to_dicts(),
        "criterion_lift": criterion_lift(scored, weights).to_dicts(),
    }
    if "label_tier" in scored.columns and scored["label_tier"].drop_nulls().len():
        metrics["tier_confusion"] = tier_confusion(scored)
    if "label_queue" in scored.columns:
        metrics["routing_accuracy"] = routing_accuracy(scored)
    return metrics


def roc_auc(scored: pl.DataFrame) -> float | None:
    y = scored["label_qualified"]
    if y.n_unique() < 2:
        return None
    return round(float(roc_auc_score(y.to_numpy(), ranking(scored).to_numpy())), 4)


def roc_points(scored: pl.DataFrame) -> tuple[list[float], list[float]]:
    fpr, tpr, _ = roc_curve(scored["label_qualified"].to_numpy(), ranking(scored).to_numpy())
    return fpr.tolist(), tpr.tolist()


def precision_recall_f1(y: pl.Series, predicted: pl.Series) -> dict[str, float | None]:
    hits = int((predicted & (y == 1)).sum())
    chosen, actual = int(predicted.sum()), int(y.sum())
    precision = hits / chosen if chosen else None
    recall = hits / actual if actual else None
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else 0.0
    return {
        "predicted_qualified": chosen,
        "precision": _round(precision),
        "recall": _round(recall),
        "f1": _round(f1),
    }


def precision_at_k(scored: pl.DataFrame) -> dict[str, float]:
    """Of the k best-ranked leads (`ranked`: disqualified last, ties by confidence then email), the share
    that qualified."""
    labels = ranked(scored)["label_qualified"]
    ks = [k for k in PRECISION_AT if k <= labels.len()]
    top_decile = max(labels.len() // 10, 1)
    out = {f"@{k}": round(float(labels.head(k).mean() or 0.0), 4) for k in ks}  # type: ignore[arg-type]
    out[f"@top10% ({top_decile})"] = round(float(labels.head(top_decile).mean() or 0.0), 4)  # type: ignore[arg-type]
    return out


def probability_scores(scored: pl.DataFrame, expected_conversion: dict[str, float] | None) -> dict[str, Any]:
    """The tiers read as probabilities (each tier's held-out conversion rate, from calibrate; disqualified 0):
    the Brier score (mean squared error, 0 is perfect) and the expected calibration error (per tier, the gap
    between promised and seen conversion, weighted by leads). None without rates in the ICP."""
    if not expected_conversion:
        return {"brier": None, "ece": None, "tier_conversion": None}
    rate = pl.col("tier").replace_strict(expected_conversion, default=0.0, return_dtype=pl.Float64)
    frame = scored.with_columns(rate.alias("_p"), pl.col("label_qualified").cast(pl.Float64).alias("_y"))
    brier = frame.select(((pl.col("_p") - pl.col("_y")) ** 2).mean()).item()
    per_tier = (
        frame.group_by("tier")
        .agg(pl.len().alias("leads"), pl.col("_p").first().alias("expected"), pl.col("_y").mean().alias("seen"))
        .sort("tier")
    )
    ece = per_tier.select(((pl.col("expected") - pl.col("seen")).abs() * pl.col("leads")).sum()).item() / max(
        frame.height, 1
    )
    return {
        "brier": _round(brier),
        "ece": _round(ece),
        "tier_conversion": per_tier.with_columns(pl.col("expected", "seen").round(4)).to_dicts(),
    }


def ties(scored: pl.DataFrame) -> dict[str, Any]:
    """How much the ranking is decided by its tie rule: distinct scores, the largest group of leads
    sharing one, and for each precision@k cut that falls inside a tie, how many leads share the score there."""
    order = ranked(scored)["_rank"]
    sizes = order.value_counts(name="n")
    cut_ties = {}
    for k in [k for k in PRECISION_AT if k < order.len()] + [max(order.len() // 10, 1)]:
        if 0 < k < order.len() and order[k - 1] == order[k]:
            cut_ties[f"@{k}"] = int((order == order[k - 1]).sum())
    return {
        "distinct_scores": order.n_unique(),
        "largest_tie": int(sizes["n"].max() or 0),  # type: ignore[arg-type]
        "cuts_inside_a_tie": cut_ties,
        "tie_rule": "higher confidence first, then email",
    }


def calibration_table(scored: pl.DataFrame, bins: int = 10) -> pl.DataFrame:
    """Leads cut into score deciles (by rank, so ties never empty a bin): the mean score against the
    share that qualified. A well-calibrated score rises with the rate."""
    n = scored.height
    decile = ((pl.col("score").rank("ordinal") - 1) * bins // max(n, 1)).cast(pl.Int32) + 1
    return (
        scored.with_columns(decile.alias("decile"))
        .group_by("decile")
        .agg(
            pl.len().alias("leads"),
            pl.col("score").min().alias("score_min"),
            pl.col("score").max().alias("score_max"),
            pl.col("score").mean().round(1).alias("mean_score"),
            pl.col("label_qualified").mean().round(4).alias("qualified_rate"),
        )
        .sort("decile")
    )


def criterion_lift(scored: pl.DataFrame, weights: dict[str, float]) -> pl.DataFrame:
    """Per criterion: the leads it favours (at least half its weight in points), how much likelier those
    qualified than all leads (lift), and the ROC AUC of its points alone (0.5: it tells nothing)."""
    y = scored["label_qualified"]
    base = float(y.mean() or 0.0)  # type: ignore[arg-type]
    rows = []
    for name, weight in weights.items():
        column = f"points_{name}"
        if column not in scored.columns:
            continue
        strong = scored.filter(pl.col(column) >= weight / 2)
        rate = float(strong["label_qualified"].mean() or 0.0) if strong.height else None  # type: ignore[arg-type]
        auc = roc_auc_score(y.to_numpy(), scored[column].to_numpy()) if y.n_unique() == 2 else None
        rows.append(
            {
                "criterion": name,
                "weight": weight,
                "favoured": strong.height,
                "favoured_rate": _round(rate),
                "lift": _round(rate / base) if rate is not None and base else None,
                "auc": _round(auc),
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "criterion": pl.String,
            "weight": pl.Float64,
            "favoured": pl.Int64,
            "favoured_rate": pl.Float64,
            "lift": pl.Float64,
            "auc": pl.Float64,
        },
    )


def tier_confusion(scored: pl.DataFrame) -> dict[str, Any]:
    """Counts of (label tier, predicted tier), and the share on the diagonal."""
    labelled = scored.filter(pl.col("label_tier").is_not_null())
    counts = labelled.group_by("label_tier", "tier").len().sort("label_tier", "tier")
    matrix: dict[str, dict[str, int]] = {}
    for label, tier, n in counts.iter_rows():
        matrix.setdefault(label, {})[tier] = n
    agree = labelled.filter(pl.col("label_tier") == pl.col("tier")).height
    return {"matrix": matrix, "accuracy": _round(agree / labelled.height if labelled.height else None)}


def routing_accuracy(scored: pl.DataFrame) -> float | None:
    """Share of leads whose queue is the labelled one (no queue on both sides agrees)."""
    labelled = scored.filter(pl.col("label_queue").is_not_null() | pl.col("queue").is_not_null())
    if labelled.is_empty():
        return None
    same = labelled.filter(pl.col("label_queue").eq_missing(pl.col("queue"))).height
    return round(same / labelled.height, 4)


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)
