"""The qualify pipeline on a labelled file, writing nothing: for `leadq eval` and `leadq calibrate`.

prepare → enrich (or the file's own company columns) → score → judge (with an LLM) → queues,
in-process and vectorised (no Prefect, no store, no CRM, no cache writes), so 100k labelled
rows take seconds. Labels ride along as columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from connectors.canonical.countries import country_codes
from connectors.errors import SourceError
from connectors.prepare import prepare_batch
from connectors.routing import assign_queues
from connectors.sources.files import read_table, yes_no
from connectors.sources.frame import canonicalise
from crew.build import build_judge
from crew.icp import Icp, load_icp
from crew.judge import Judge
from crew.metrics import evaluate
from crew.scorer import score_leads
from flows.context import RunContext, load_context

# Columns a labelled file may carry instead of asking the enrichment providers.
COMPANY_COLUMNS = ("industry", "employees", "company_country")


@dataclass
class Labelled:
    leads: pl.DataFrame  # scored and queued, with label_qualified (0/1), label_tier, label_queue
    rejected: int  # rows prepare rejected (not in the metrics)
    enrichment: str  # "file" or "providers"
    crew_stability: float | None = None  # share of crew-judged leads given the same tier by a second crew run


def labelled_leads(path: Path, label: str, ctx: RunContext, icp: Icp, stability_run: bool = False) -> Labelled:
    """The leads of a labelled file as the pipeline decides them; `label` is the 0/1 (or won/lost) column."""
    raw = read_table(path, needs=f"a header row with 'email' and '{label}' columns")
    raw = raw.rename({c: c.strip() for c in raw.columns})
    if label not in raw.columns:
        raise SourceError(f"{path}: no '{label}' column (found {', '.join(raw.columns)})")
    raw = raw.with_columns(yes_no(raw, label, path, required=True).alias("label_qualified")).drop(
        label if label != "label_qualified" else []
    )
    for column in ("label_tier", "label_queue"):
        if column in raw.columns:
            raw = raw.with_columns(pl.col(column).cast(pl.String).str.strip_chars().replace("", None))
    prepared = prepare_batch(canonicalise(raw, ctx.settings.source.columns, str(path)), ctx.rules)
    leads = prepared.leads.with_columns(pl.col("label_qualified").cast(pl.Int8))
    if any(c in leads.columns for c in COMPANY_COLUMNS):
        leads, enrichment = _file_companies(leads, ctx), "file"
    else:
        leads, enrichment = ctx.enricher.enrich(leads, None, save=False), "providers"
    scored = score_leads(leads, icp, ctx.settings.scoring.top_reasons, keep_points=True)
    if ctx.judge is None:
        leads = scored.with_columns(pl.lit("rules").alias("method"), pl.lit(False).alias("needs_review"))
        return Labelled(assign_queues(leads, ctx.routing), prepared.rejects.height, enrichment)
    # a judge of its own per pass: each gets the run's full LLM budget, and the ICP being evaluated
    leads = _fresh_judge(ctx, icp).judge(scored, None, save=False)
    stability = _same_tier(leads, _fresh_judge(ctx, icp).judge(scored, None, save=False)) if stability_run else None
    return Labelled(assign_queues(leads, ctx.routing), prepared.rejects.height, enrichment, stability)


def _file_companies(leads: pl.DataFrame, ctx: RunContext) -> pl.DataFrame:
    """The file's own firmographics (as they were when the label was given), typed like enrichment's."""
    frame = leads.with_columns(
        pl.col(c).cast(pl.String) if c in leads.columns else pl.lit(None, pl.String).alias(c) for c in COMPANY_COLUMNS
    ).with_columns(
        pl.col("industry").str.to_lowercase(),
        pl.col("employees").str.replace_all(",", "").cast(pl.Float64, strict=False).cast(pl.Int64),
    )
    codes = country_codes(frame["company_country"], ctx.rules.country_aliases)
    return (
        frame.join(codes, left_on="company_country", right_on="country_in", how="left")
        .with_columns(pl.coalesce("country_code", "company_country").alias("company_country"))
        .drop("country_code", "country_note")
    )


def evaluate_file(
    path: Path, icp_path: Path | None = None, ctx: RunContext | None = None, outcome: str = "label_qualified"
) -> tuple[dict[str, Any], pl.DataFrame]:
    """`leadq eval`: the metrics of the active ICP (or the one at `icp_path`) on a labelled file,
    and the decided leads they were computed from; `outcome` names the 0/1 (or won/lost) column."""
    ctx = ctx or load_context()
    icp = load_icp(icp_path) if icp_path else ctx.icp
    labelled = labelled_leads(path, outcome, ctx, icp, stability_run=True)
    weights = {n: c.weight for n, c in icp.criteria.items()}
    metrics = evaluate(labelled.leads, icp.qualified_tiers, weights, icp.expected_conversion)
    metrics |= {
        "dataset": str(path),
        "icp_version": icp.version,
        "icp": str(icp_path or "active"),
        "rejected": labelled.rejected,
        "enrichment": labelled.enrichment,
        "method": "crew" if ctx.judge is not None else "rules",
        "crew_stability": labelled.crew_stability,
    }
    return metrics, labelled.leads


def _fresh_judge(ctx: RunContext, icp: Icp) -> Judge:
    judge = build_judge(ctx.settings, icp, ctx.store)
    assert judge is not None  # only called when an LLM is configured
    return judge


def _same_tier(first: pl.DataFrame, second: pl.DataFrame) -> float | None:
    """Share of the leads the crew judged in both passes that got the same tier both times."""
    crew = (first["method"] == "crew") & (second["method"] == "crew")
    if not int(crew.sum()):
        return None
    return round(int(((first["tier"] == second["tier"]) & crew).sum()) / int(crew.sum()), 4)
