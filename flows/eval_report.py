"""`leadq eval --report`: one self-contained HTML file (plots inlined as PNG) that opens anywhere, offline."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt
import polars as pl

from crew.metrics import roc_points

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%}.plots{display:flex;flex-wrap:wrap}
.plots figure{margin:0 1em 1em 0}"""


def write_report(runs: dict[str, tuple[dict[str, Any], pl.DataFrame]], path: Path) -> None:
    """`runs`: a label ("active ICP", a compared file) -> (metrics, scored leads)."""
    parts = [f"<!doctype html><meta charset='utf-8'><title>leadq eval</title><style>{STYLE}</style>"]
    first = next(iter(runs.values()))[0]
    parts.append(f"<h1>leadq eval: {_e(first['dataset'])}</h1>")
    parts.append(
        f"<p>{first['leads']:,} labelled leads ({first['positives']:,} qualified, base rate "
        f"{first['base_rate']:.1%}); {first['rejected']:,} rows rejected by prepare; decided by "
        f"{first['method']}; firmographics from {first['enrichment']}.</p>"
    )
    parts.append(_summary_table(runs))
    parts.append("<div class='plots'>")
    parts += [
        _figure(_distribution(runs), "Score distribution per label"),
        _figure(_calibration(runs), "Calibration: qualified rate per score decile"),
        _figure(_roc(runs), "ROC curve"),
    ]
    parts.append("</div>")
    for name, (metrics, _) in runs.items():
        parts.append(f"<h2>{_e(name)} (ICP {_e(metrics['icp_version'])})</h2>")
        parts.append("<h3>Precision at k</h3>" + _table([metrics["precision_at_k"]]))
        if "tier_confusion" in metrics:
            matrix = metrics["tier_confusion"]["matrix"]
            tiers = sorted({t for row in matrix.values() for t in row} | set(matrix))
            rows = [
                {"label \\ predicted": label, **{t: matrix[label].get(t, 0) for t in tiers}}
                for label in tiers
                if label in matrix
            ]
            parts.append(f"<h3>Tier confusion (accuracy {metrics['tier_confusion']['accuracy']})</h3>" + _table(rows))
        parts.append("<h3>Calibration by score decile</h3>" + _table(metrics["calibration"]))
        parts.append("<h3>Per-criterion lift</h3>" + _table(metrics["criterion_lift"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")


def _summary_table(runs: dict[str, tuple[dict[str, Any], pl.DataFrame]]) -> str:
    names = ("roc_auc", "precision", "recall", "f1", "predicted_qualified", "routing_accuracy", "crew_stability")
    rows = [{"metric": n, **{label: m.get(n) for label, (m, _) in runs.items()}} for n in names]
    rows.append(
        {
            "metric": "tier accuracy",
            **{label: (m.get("tier_confusion") or {}).get("accuracy") for label, (m, _) in runs.items()},
        }
    )
    return _table(rows)


def _distribution(runs: dict[str, tuple[dict[str, Any], pl.DataFrame]]) -> str:
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.4), squeeze=False)
    for ax, (name, (_, leads)) in zip(axes[0], runs.items(), strict=True):
        for label, colour in ((1, "#2a9d8f"), (0, "#e76f51")):
            scores = leads.filter(pl.col("label_qualified") == label)["score"].to_numpy()
            ax.hist(
                scores, bins=range(0, 102, 4), alpha=0.6, color=colour, label="qualified" if label else "not qualified"
            )
        ax.set(title=name, xlabel="score", ylabel="leads")
        ax.legend()
    return _png(fig)


def _calibration(runs: dict[str, tuple[dict[str, Any], pl.DataFrame]]) -> str:
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for name, (metrics, _) in runs.items():
        table = metrics["calibration"]
        ax.plot([r["mean_score"] for r in table], [r["qualified_rate"] for r in table], marker="o", label=name)
    ax.set(xlabel="mean score of the decile", ylabel="share qualified", ylim=(0, 1))
    ax.legend()
    return _png(fig)


def _roc(runs: dict[str, tuple[dict[str, Any], pl.DataFrame]]) -> str:
    fig, ax = plt.subplots(figsize=(4.2, 3.4))
    for name, (metrics, leads) in runs.items():
        fpr, tpr = roc_points(leads)
        ax.plot(fpr, tpr, label=f"{name} (AUC {metrics['roc_auc']})")
    ax.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate")
    ax.legend(loc="lower right", fontsize="small")
    return _png(fig)


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _figure(png: str, caption: str) -> str:
    image = f"<img alt='{_e(caption)}' src='data:image/png;base64,{png}'>"
    return f"<figure>{image}<figcaption>{_e(caption)}</figcaption></figure>"


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>none</p>"
    head = "".join(f"<th>{_e(k)}</th>" for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{_e('' if v is None else v)}</td>" for v in r.values()) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _e(value: object) -> str:
    return html.escape(str(value))
