"""Learn ICP weights from outcomes: a regularised logistic regression, written back as readable points.

Every ICP criterion becomes one-hot features (a `match` criterion: one per value, plus
"any other value"; a `bands` criterion: one per band), and so does every extra signal
column (numeric: quintile bands; text: its frequent values). A missing value is a value of
its own (`missing` in the criterion): what no answer says about a lead is learnt, never
assumed to be the midpoint. The model is
L2-regularised, its strength chosen by cross-validated ROC AUC on the training part.

Back to points: within a criterion each coefficient w becomes `fraction = w / max|w|`
and the criterion's `weight` is max|w|, scaled so the weights sum to 100. The sum of
points is then the model's logit (less its intercept) times a constant; `points_floor`
and `points_range` map its possible range onto 0..100, so the score ranks leads exactly
as the model does, up to rounding, and each score stays a sum of criterion points.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import yaml
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegressionCV
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier

from connectors.domain import DECISION_FIELDS
from crew.icp import Band, Criterion, Icp
from crew.scorer import criterion_values, score_leads

MAX_CATEGORIES = 30
MAX_BANDS = 6  # a learnt number has at most this many bands
MISSING = "(missing)"
NOT_SIGNALS = {
    "email",
    "signup_id",
    "first_name",
    "last_name",
    "phone",
    "website",
    "company_name",
    "company_domain",
    "email_domain",
    "signed_up_at",
    "job_title",
    "label_qualified",
    "label_tier",
    "label_queue",
    "_row",
    "email_in",
    "email_ok",
    "company_legal_name",
    "description",
    "linkedin_url",
    "technologies",
    "company_sources",
    "company_provenance",
    "enrichment_notes",
    "company_changed",
    "founded_year",
    "email_provider",
    *DECISION_FIELDS,
    "evidence",
}


@dataclass
class Feature:
    criterion: str
    level: str  # a match value, "(other)", or a band's label
    band: Band | None = None


@dataclass
class Calibration:
    icp: Icp
    holdout: dict[str, Any]
    dropped: list[str] = field(default_factory=list)  # criteria the model gave no weight


def single_valued(leads: pl.DataFrame, icp: Icp) -> list[str]:
    """Candidate signal columns that hold one value only (calibrate leaves them out, and says so)."""
    used = {f for c in icp.criteria.values() for f in (c.field, c.fallback_field) if f}
    return [
        name
        for name in leads.columns
        if name not in used
        and name not in NOT_SIGNALS
        and not name.startswith(("points_", "label_", "_"))
        and leads[name].drop_nulls().len()
        and leads[name].drop_nulls().cast(pl.String).n_unique() < 2
    ]


def signal_columns(leads: pl.DataFrame, icp: Icp) -> list[str]:
    """Columns besides the ICP's fields that may carry signal: numeric, or text with few distinct values
    (two at least: a column with one value cannot rank leads)."""
    used = {f for c in icp.criteria.values() for f in (c.field, c.fallback_field) if f}
    found = []
    for name in leads.columns:
        if name in used or name in NOT_SIGNALS or name.startswith(("points_", "label_", "_")):
            continue
        values = leads[name].drop_nulls()
        if values.len() < max(20, leads.height // 20):
            continue
        if values.cast(pl.String).n_unique() < 2:
            continue  # one value for every lead: it cannot tell leads apart, only dock or lift them all
        if _numeric(values) or values.cast(pl.String).n_unique() <= MAX_CATEGORIES:
            found.append(name)
    return found


def with_signals(icp: Icp, leads: pl.DataFrame, signals: list[str]) -> Icp:
    """The ICP plus a criterion per signal column (weights are placeholders until the fit)."""
    criteria = dict(icp.criteria)
    for name in signals:
        values = leads[name].drop_nulls()
        if _numeric(values):
            numeric = values.cast(pl.Float64, strict=False)
            quantiles = np.quantile(numeric.to_numpy(), [0.2, 0.4, 0.6, 0.8]).tolist()
            whole = bool((numeric == numeric.round(0)).all())
            criteria[name] = Criterion(field=name, weight=1, bands=_bands(quantiles, whole))  # until learnt
        else:
            top = values.cast(pl.String).str.to_lowercase().value_counts(sort=True).head(MAX_CATEGORIES)
            criteria[name] = Criterion(field=name, weight=1, match=dict.fromkeys(top[name].to_list(), 0.0))
    return icp.model_copy(update={"criteria": criteria})


def learnt_bands(icp: Icp, train: pl.DataFrame, y: np.ndarray, min_support: int, names: list[str]) -> Icp:
    """The bands of these numeric criteria (the signal columns: the ICP's own bands are a person's cut
    points and stay) cut where the outcome changes: a shallow decision tree on the one number (at most
    MAX_BANDS leaves, each with a tenth of the leads at least), fitted on the training leads only. A
    number whose tree finds no cut keeps its quintile bands."""
    values = train.select(criterion_values(train, icp))
    criteria = dict(icp.criteria)
    for name, c in icp.criteria.items():
        if c.bands is None or name not in names:
            continue
        known = values[name].is_not_null().to_numpy()
        numbers = values[name].drop_nulls().to_numpy()
        if len(numbers) < 2 * min_support or len(set(y[known].tolist())) < 2:
            continue
        leaf = max(min_support, len(numbers) // 10)  # a band holds a tenth of the leads at least: no noise cuts
        tree = DecisionTreeClassifier(max_leaf_nodes=MAX_BANDS, min_samples_leaf=leaf, random_state=0)
        tree.fit(numbers.reshape(-1, 1), y[known])
        cuts = sorted(float(t) for t, f in zip(tree.tree_.threshold, tree.tree_.feature, strict=True) if f >= 0)
        if cuts:
            criteria[name] = c.model_copy(update={"bands": _bands(cuts, bool((numbers == np.round(numbers)).all()))})
    return icp.model_copy(update={"criteria": criteria})


def _bands(cuts: list[float], whole: bool) -> list[Band]:
    """Bands between cut points: `..a`, `a+1..b`, `b+1..` for whole numbers; else a shared bound belongs
    to the lower band (bands are read in order, the first that holds a value wins)."""
    edges = sorted({float(np.floor(c)) for c in cuts} if whole else {round(c, 2) for c in cuts})
    step = 1 if whole else 0
    bounds = [None, *edges, None]
    return [
        Band(min=None if lo is None else lo + (step if i else 0), max=hi, fraction=0.0)
        for i, (lo, hi) in enumerate(itertools.pairwise(bounds))
    ]


def _numeric(values: pl.Series) -> bool:
    """A number column, or text in which every value reads as a number."""
    return values.dtype.is_numeric() or values.cast(pl.Float64, strict=False).null_count() == 0


def design(leads: pl.DataFrame, icp: Icp) -> tuple[np.ndarray, list[Feature]]:
    """One-hot features of every criterion (a missing value: all zeros)."""
    columns: list[pl.Expr] = []
    features: list[Feature] = []
    values = leads.select(criterion_values(leads, icp))
    for name, c in icp.criteria.items():
        value = pl.col(name)
        columns.append(value.is_null())  # missing is a value of its own, learnt like the others
        features.append(Feature(name, MISSING))
        if c.match is not None:
            for key in c.match:
                columns.append((value == key.lower()).fill_null(False))
                features.append(Feature(name, key))
            columns.append((~value.is_in([k.lower() for k in c.match])).fill_null(False))
            features.append(Feature(name, "(other)"))
        else:
            taken: pl.Expr = pl.lit(False)  # bands are read in order, the first that holds the value wins
            for band in c.bands or []:
                inside = pl.lit(True)
                if band.min is not None:
                    inside = inside & (value >= band.min)
                if band.max is not None:
                    inside = inside & (value <= band.max)
                columns.append((inside & ~taken).fill_null(False))
                features.append(Feature(name, _band_label(band), band))
                taken = taken | inside.fill_null(False)
    matrix = values.select(col.cast(pl.Float64).alias(f"f{i}") for i, col in enumerate(columns)).to_numpy()
    return matrix, features


def _band_label(band: Band) -> str:
    lo = "" if band.min is None else f"{band.min:g}"
    hi = "" if band.max is None else f"{band.max:g}"
    return f"{lo}..{hi}"


def learn_levels(icp: Icp, leads: pl.DataFrame, min_support: int) -> tuple[Icp, dict[str, list[str]]]:
    """Every value criterion learns each value it sees on at least `min_support` leads, listed in the ICP or
    not; rarer values pool into "any other value". Returns the ICP to fit and, per criterion, the listed
    values no lead had (they are dropped, and calibrate says so)."""
    values = leads.select(criterion_values(leads, icp))
    criteria, unseen = dict(icp.criteria), {}
    for name, c in icp.criteria.items():
        if c.match is None:
            continue
        counts = values[name].drop_nulls().value_counts(sort=True, name="n")
        seen = set(counts[name].to_list())
        supported = counts.filter(pl.col("n") >= min_support)[name].to_list()
        missing = [k for k in c.match if k.lower() not in seen]
        if missing:
            unseen[name] = missing
        criteria[name] = c.model_copy(update={"match": dict.fromkeys(supported, 0.0)})
    return icp.model_copy(update={"criteria": criteria}), unseen


def calibrate(
    leads: pl.DataFrame, icp: Icp, signals: list[str] | None = None, seed: int = 0, min_support: int = 30
) -> Calibration:
    """Fit on 80 % of the leads (stratified), report ROC AUC on the other 20 %, return the new ICP."""
    y = leads["label_qualified"].to_numpy()
    if len(set(y.tolist())) < 2 or min(int(y.sum()), int(len(y) - y.sum())) < 10:
        raise ValueError("calibration needs at least 10 converted and 10 not-converted leads")
    signals = signal_columns(leads, icp) if signals is None else signals
    index = np.arange(len(y))
    train, test = train_test_split(index, test_size=0.2, stratify=y, random_state=seed)
    extended, unseen = learn_levels(with_signals(icp, leads, signals), leads, min_support)
    extended = learnt_bands(extended, leads[train], y[train], min_support, signals)
    x, features = design(leads, extended)
    model = LogisticRegressionCV(
        Cs=12, cv=5, scoring="roc_auc", max_iter=5000, random_state=seed, l1_ratios=(0.0,), use_legacy_attributes=False
    )
    model.fit(x[train], y[train])
    new_icp, dropped = _to_icp(extended, features, model.coef_[0], leads[train], y[train])
    current = score_leads(leads[test], icp)["score"].to_numpy()
    held_out = score_leads(leads[test], new_icp)
    calibrated = held_out["score"].to_numpy()
    rates = held_out.group_by("tier").agg(pl.col("label_qualified").mean().round(4).alias("rate"))
    expected = {t: r for t, r in rates.iter_rows() if t in ("A", "B", "C", "D")}
    new_icp = new_icp.model_copy(update={"expected_conversion": dict(sorted(expected.items()))})
    holdout = {
        "train": len(train),
        "test": len(test),
        "test_positives": int(y[test].sum()),
        "auc_active_icp": _auc(y[test], current),
        "auc_logistic_regression": _auc(y[test], model.decision_function(x[test])),
        "auc_boosting": _auc(y[test], _boosting(x[train], y[train], seed).predict_proba(x[test])[:, 1]),
        "auc_calibrated_icp": _auc(y[test], calibrated),
        "regularisation_C": round(float(np.ravel(model.C_)[0]), 4),
        "signals": signals,
        "single_valued": single_valued(leads, icp),
        "disqualifiers": inherited_disqualifiers(leads[train], icp),
        "min_support": min_support,
        "unseen_values": unseen,
    }
    return Calibration(new_icp, holdout, dropped)


def inherited_disqualifiers(train: pl.DataFrame, icp: Icp) -> list[dict[str, Any]]:
    """Each disqualifier the calibrated ICP keeps, with how its leads converted in the training data;
    `suspect` when they converted at least as well as the average lead (it may throw good leads away)."""
    base = float(train["label_qualified"].mean() or 0.0)  # type: ignore[arg-type]
    found = []
    for d in icp.disqualifiers:
        if d.field not in train.columns:
            found.append({"name": d.name, "leads": 0, "conversion_rate": None, "suspect": False})
            continue
        hit = train.filter(pl.col(d.field).cast(pl.String).str.to_lowercase().is_in([v.lower() for v in d.in_]))
        rate = float(hit["label_qualified"].mean()) if hit.height else None  # type: ignore[arg-type]
        found.append(
            {
                "name": d.name,
                "leads": hit.height,
                "conversion_rate": None if rate is None else round(rate, 4),
                "suspect": rate is not None and hit.height >= 10 and rate >= base,
            }
        )
    return found


def _boosting(x: np.ndarray, y: np.ndarray, seed: int) -> HistGradientBoostingClassifier:
    """Gradient boosting on the same features and split: the bar an additive ICP is held to."""
    model = HistGradientBoostingClassifier(
        max_iter=300, learning_rate=0.05, early_stopping=True, validation_fraction=0.15, random_state=seed
    )
    return model.fit(x, y)


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    return round(float(roc_auc_score(y, score)), 4)


def _to_icp(
    icp: Icp, features: list[Feature], coef: np.ndarray, train: pl.DataFrame, y: np.ndarray
) -> tuple[Icp, list[str]]:
    by_criterion: dict[str, list[tuple[Feature, float]]] = {}
    for feature, w in zip(features, coef.tolist(), strict=True):
        by_criterion.setdefault(feature.criterion, []).append((feature, w))
    sizes = {name: max(abs(w) for _, w in pairs) for name, pairs in by_criterion.items()}
    total = sum(sizes.values()) or 1.0
    criteria: dict[str, Criterion] = {}
    dropped = []
    for name, c in icp.criteria.items():
        size = sizes.get(name, 0.0)
        weight = round(100 * size / total, 1)
        if weight < 0.1:
            dropped.append(name)
            continue
        fractions = {f.level: round(w / size, 2) for f, w in by_criterion[name]}
        missing = fractions.get(MISSING, 0.0)
        if c.match is not None:
            match = {level: fraction for level, fraction in fractions.items() if level not in ("(other)", MISSING)}
            criteria[name] = Criterion(
                field=c.field,
                fallback_field=c.fallback_field,
                weight=weight,
                match=match,
                default=fractions.get("(other)", 0.0),
                missing=missing,
            )
        else:
            bands = [
                Band(min=f.band.min, max=f.band.max, fraction=fractions[f.level])
                for f, _ in by_criterion[name]
                if f.band is not None
            ]
            criteria[name] = Criterion(
                field=c.field, fallback_field=c.fallback_field, weight=weight, bands=bands, missing=missing
            )
    lows = [min(0.0, *(_fractions(c))) * c.weight for c in criteria.values()]
    highs = [max(0.0, *(_fractions(c))) * c.weight for c in criteria.values()]
    floor, span = round(sum(lows), 2), round(sum(highs) - sum(lows), 2)
    draft = icp.model_copy(update={"criteria": criteria, "points_floor": floor, "points_range": span})
    return draft.model_copy(update={"tiers": _tiers(train, y, draft)}), dropped


def _fractions(c: Criterion) -> list[float]:
    if c.match is not None:
        return [*c.match.values(), c.default, c.missing]
    return [*(b.fraction for b in c.bands or []), c.missing]


def _tiers(train: pl.DataFrame, y: np.ndarray, icp: Icp) -> dict[str, float]:
    """B: the score that maximises F1 on the training part; A: where the best third of those start; C: half of B."""
    scores = score_leads(train, icp)["score"].to_numpy()
    best, best_f1 = 50, -1.0
    for t in range(1, 100):
        predicted = scores >= t
        hits = int((predicted & (y == 1)).sum())
        if not hits:
            continue
        precision, recall = hits / int(predicted.sum()), hits / int(y.sum())
        f1 = 2 * precision * recall / (precision + recall)
        if f1 > best_f1:
            best, best_f1 = t, f1
    qualified = scores[scores >= best]
    a = int(np.quantile(qualified, 2 / 3)) if len(qualified) else best + 1
    a = min(max(a, best + 1), 100)
    return {"A": float(a), "B": float(best), "C": float(max(best // 2, 0))}


def icp_yaml(calibration: Calibration, source: str, active: Icp) -> str:
    """The calibrated ICP as an icp.yaml, with a header that says how it was made and how it did."""
    h = calibration.holdout
    data = calibration.icp.model_dump(exclude_none=True, by_alias=True, exclude={"version"})
    data["name"] = f"{active.name}, calibrated from {source}"  # never the name of the ICP it started from
    header = [
        f"# Calibrated by `leadq calibrate` from {source}, starting from the ICP version {active.version}.",
        "# A regularised logistic regression over the ICP criteria and signal columns "
        f"({', '.join(h['signals']) or 'none'}),",
        f"# fitted on {h['train']:,} leads; ROC AUC on the {h['test']:,} held out: active ICP {h['auc_active_icp']}, "
        f"logistic regression {h['auc_logistic_regression']}, boosting {h['auc_boosting']}, "
        f"this ICP {h['auc_calibrated_icp']}.",
        "# Each criterion's weight is its share of the model; each fraction its value's effect (-1..1).",
        "# score = 100 x (sum of points - points_floor) / points_range. Check it before you use it:",
        "#   leadq eval LABELLED.csv --compare THIS_FILE",
    ]
    if calibration.dropped:
        header.append(f"# Dropped (no weight in the model): {', '.join(calibration.dropped)}.")
    for name, values in h.get("unseen_values", {}).items():
        header.append(f"# {name}: dropped listed values no lead had: {', '.join(values)}.")
    for d in h.get("disqualifiers", []):
        rate = "no lead matched" if d["conversion_rate"] is None else f"{d['conversion_rate']:.1%} converted"
        flag = " (SUSPECT: they converted at least as well as the average lead)" if d["suspect"] else ""
        header.append(f"# Disqualifier kept from the active ICP: {d['name']}: {d['leads']:,} leads, {rate}{flag}.")
    return "\n".join(header) + "\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)
