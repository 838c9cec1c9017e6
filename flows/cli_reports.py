"""The measuring commands: leadq against people's decisions (`shadow-report`), against labels (`eval`),
and weights learnt from outcomes (`calibrate`, `labels export`)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from connectors.errors import ConfigError, SourceError
from flows.console import err, out

if TYPE_CHECKING:
    from crew.shadow import ShadowReport


def shadow_report(
    actual: Annotated[
        Path | None,
        typer.Option(
            "--actual",
            help="A CSV/Parquet/JSONL file of what people did: email, owner, status "
            "(or qualified 0/1). Default: read owner and lead status from the CRM.",
        ),
    ] = None,
    since: Annotated[
        datetime | None, typer.Option("--since", formats=["%Y-%m-%d"], help="Only leads that signed up on or after.")
    ] = None,
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Write one row per lead with both decisions (.csv or .parquet).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
) -> None:
    """Compare leadq's decisions (tier, queue, owner) with what people did in the CRM (lead status, owner).

    Run leadq in shadow mode (settings.toml: mode = "shadow" under run) for a while first: it decides and records
    everything and writes nothing, and people keep working leads as before."""
    import polars as pl

    from connectors.crm import build_crm
    from connectors.settings import load_settings
    from connectors.store import Store
    from connectors.store.export import export_leads, write_export
    from crew.icp import load_icp
    from crew.shadow import compare, read_actual

    settings = load_settings()
    decisions = export_leads(Store(settings.store_url))
    if since is not None:
        decisions = decisions.filter(pl.col("signed_up_at") >= since)
    if actual is not None:
        people = read_actual(actual)
    else:
        crm = build_crm(settings)
        with err.status(f"reading owner and lead status of {decisions.height:,} leads from {crm.name}…"):
            people = crm.people_decisions(decisions["email"].to_list())
    icp = load_icp(settings.config_path(settings.scoring.icp_file))
    report = compare(
        decisions,
        people,
        icp.qualified_tiers,
        settings.shadow.qualified_statuses,
        settings.shadow.disqualified_statuses,
    )
    if out_path is not None:
        write_export(report.leads, out_path)
        err.print(f"wrote {report.leads.height:,} leads to {out_path}")
    if as_json:
        print(json.dumps(report.as_dict(), default=str))
        return
    _print_shadow(report, actual or "the CRM")


def _print_shadow(report: ShadowReport, where: Path | str) -> None:
    o = report.overall
    out.print(
        f"[bold]{o['leads']:,} leads[/] decided by leadq; {o['in_crm']:,} found in {where}; "
        f"{o['with_verdict']:,} with a person's verdict (a qualified or disqualified status), "
        f"{o['with_owner']:,} with a person as owner.",
        highlight=False,
    )
    out.print(
        f"Qualification agreement {_pct(o['verdict_agreement'])} · precision {_pct(o['precision'])} "
        f"(leadq-qualified leads people worked) · recall {_pct(o['recall'])} (people-worked leads leadq qualified) · "
        f"owner agreement {_pct(o['owner_agreement'])}",
        highlight=False,
    )
    for key, frame in (("tier", report.by_tier), ("queue", report.by_queue)):
        table = Table(title=f"agreement by {key}", title_justify="left")
        for column in (key, "leads", "with verdict", "people qualified", "verdict agrees", "with owner", "same owner"):
            table.add_column(column, justify="left" if column == key else "right")
        for row in frame.iter_rows(named=True):
            table.add_row(
                row[key],
                f"{row['leads']:,}",
                f"{row['with_verdict']:,}",
                f"{row['people_qualified']:,}",
                _ratio(row["verdict_agrees"], row["with_verdict"]),
                f"{row['with_owner']:,}",
                _ratio(row["owner_agrees"], row["with_owner"]),
            )
        out.print(table)
    if not o["with_verdict"] and not o["with_owner"]:
        out.print(
            "Nothing to compare yet: no lead has a qualified/disqualified status or a person as owner "
            "(statuses counted: [shadow] in settings.toml)."
        )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _ratio(part: int, whole: int) -> str:
    return f"{part:,}/{whole:,} ({part / whole:.0%})" if whole else "-"


def eval_command(
    dataset: Annotated[
        Path,
        typer.Argument(
            help="A labelled signup file (CSV, Parquet, JSONL): the signup columns, "
            "label_qualified (0/1), optionally label_tier and label_queue."
        ),
    ],
    icp_path: Annotated[
        Path | None, typer.Option("--icp", help="Score with this icp.yaml instead of the active one.")
    ] = None,
    compare: Annotated[
        Path | None,
        typer.Option("--compare", help="Also score with this icp.yaml (e.g. a calibrated one), side by side."),
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write an HTML report with plots to this file.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as one JSON object.")] = False,
    outcome: Annotated[
        str, typer.Option("--outcome", help="The 0/1 (or yes/no, won/lost) column to measure against.")
    ] = "label_qualified",
) -> None:
    """Measure leadq's decisions on labelled leads: ROC AUC, precision/recall/F1, precision@k, tiers, routing,
    calibration and per-criterion lift. Runs the pipeline in memory; writes nothing to the store or a CRM."""
    from flows.context import load_context
    from flows.evaluation import evaluate_file

    ctx = load_context()
    runs = {"active ICP" if icp_path is None else str(icp_path): evaluate_file(dataset, icp_path, ctx, outcome)}
    if compare is not None:
        runs[str(compare)] = evaluate_file(dataset, compare, ctx, outcome)
    if report is not None:
        from flows.eval_report import write_report

        write_report(runs, report)
        err.print(f"wrote the report to {report}")
    if as_json:
        metrics = {name: m for name, (m, _) in runs.items()}
        print(json.dumps(next(iter(metrics.values())) if len(metrics) == 1 else metrics, default=str))
        return
    _print_eval({name: m for name, (m, _) in runs.items()})


def _print_eval(runs: dict[str, dict[str, Any]]) -> None:
    first = next(iter(runs.values()))
    out.print(
        f"[bold]{first['leads']:,} labelled leads[/] from {first['dataset']} ({first['positives']:,} qualified, "
        f"base rate {first['base_rate']:.1%}); {first['rejected']:,} rows rejected by prepare; "
        f"decided by {first['method']}.",
        highlight=False,
    )
    table = Table(title="metrics (qualified = tier in qualified_tiers)", title_justify="left")
    table.add_column("metric")
    for name, m in runs.items():
        table.add_column(f"{name} ({m['icp_version']})", justify="right")
    rows = [
        ("ROC AUC", "roc_auc"),
        ("precision", "precision"),
        ("recall", "recall"),
        ("F1", "f1"),
        ("leads qualified", "predicted_qualified"),
        ("routing accuracy", "routing_accuracy"),
        ("crew stability", "crew_stability"),
    ]
    for label, key in rows:
        table.add_row(label, *(_fmt(m.get(key)) for m in runs.values()))
    table.add_row("tier accuracy", *(_fmt((m.get("tier_confusion") or {}).get("accuracy")) for m in runs.values()))
    for k in first["precision_at_k"]:
        table.add_row(f"precision {k}", *(_fmt(m["precision_at_k"].get(k)) for m in runs.values()))
    table.add_row("Brier score", *(_fmt(m.get("brier")) for m in runs.values()))
    table.add_row("calibration error", *(_fmt(m.get("ece")) for m in runs.values()))
    table.add_row("distinct scores", *(_fmt((m.get("ties") or {}).get("distinct_scores")) for m in runs.values()))
    table.add_row("largest tie", *(_fmt((m.get("ties") or {}).get("largest_tie")) for m in runs.values()))
    out.print(table)
    out.print(
        "Disqualified leads rank last; ties are broken by the higher confidence, then the email. "
        + "; ".join(
            f"{name}: precision {k} falls inside a tie of {n:,} leads"
            for name, m in runs.items()
            for k, n in ((m.get("ties") or {}).get("cuts_inside_a_tie") or {}).items()
        )
    )
    for name, m in runs.items():
        calibration = Table(title=f"{name}: calibration by score decile", title_justify="left")
        for column in ("decile", "leads", "scores", "mean score", "qualified rate"):
            calibration.add_column(column, justify="right")
        for r in m["calibration"]:
            calibration.add_row(
                str(r["decile"]),
                f"{r['leads']:,}",
                f"{r['score_min']}-{r['score_max']}",
                _fmt(r["mean_score"]),
                _fmt(r["qualified_rate"]),
            )
        lift = Table(title=f"{name}: per-criterion lift", title_justify="left")
        for column in ("criterion", "weight", "favoured leads", "their qualified rate", "lift", "AUC alone"):
            lift.add_column(column, justify="left" if column == "criterion" else "right")
        for r in m["criterion_lift"]:
            lift.add_row(
                r["criterion"],
                _fmt(r["weight"]),
                f"{r['favoured']:,}",
                _fmt(r["favoured_rate"]),
                _fmt(r["lift"]),
                _fmt(r["auc"]),
            )
        out.print(calibration, lift)


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def calibrate_command(
    outcomes: Annotated[
        Path,
        typer.Argument(
            help="Leads with an outcome: the signup columns (and firmographics) "
            "plus a column of converted/won (1) or lost (0)."
        ),
    ],
    out_path: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Where to write the new icp.yaml (default: icp.calibrated.yaml "
            "next to the active one). Never the active ICP itself.",
        ),
    ] = None,
    outcome: Annotated[str, typer.Option("--outcome", help="The outcome column.")] = "outcome",
    signals: Annotated[
        list[str] | None,
        typer.Option(
            "--signal",
            help="A signal column to learn points for (repeat); default: "
            "every numeric or few-valued column the ICP does not use.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the held-out figures as one JSON object.")] = False,
    min_support: Annotated[
        int,
        typer.Option(
            "--min-support",
            min=1,
            help="Learn points for every value seen on at least this many leads; rarer ones pool into "
            "'any other value'.",
        ),
    ] = 30,
) -> None:
    """Fit ICP weights to outcomes (regularised logistic regression) and write them as a new, readable icp.yaml.

    The active ICP is never replaced: compare first with `leadq eval LABELLED --compare NEW`, then copy it over."""
    from connectors.sources.files import read_table
    from crew.calibrate import calibrate, icp_yaml
    from crew.icp import load_icp
    from flows.context import load_context
    from flows.evaluation import labelled_leads

    ctx = load_context()
    active = ctx.settings.config_path(ctx.settings.scoring.icp_file)
    target = out_path or active.with_name("icp.calibrated.yaml")
    if target.resolve() == active.resolve():
        raise ConfigError(f"--out {target}: that is the active ICP; write elsewhere, compare, then copy it over")
    header = read_table(outcomes, n_rows=0).columns
    column = "label_qualified" if outcome == "outcome" and "outcome" not in header else outcome
    labelled = labelled_leads(outcomes, column, ctx, ctx.icp)
    with err.status(f"fitting on {labelled.leads.height:,} leads…"):
        try:
            result = calibrate(labelled.leads, ctx.icp, signals, min_support=min_support)
        except ValueError as exc:
            raise SourceError(f"{outcomes}: {exc}") from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(icp_yaml(result, outcomes.name, ctx.icp), encoding="utf-8")
    load_icp(target)  # what was written is a valid ICP
    h = result.holdout
    if as_json:
        print(json.dumps({**h, "out": str(target), "dropped": result.dropped}))
        return
    out.print(
        f"Fitted on {h['train']:,} leads; ROC AUC on {h['test']:,} held out ({h['test_positives']:,} converted):",
        highlight=False,
    )
    out.print(
        f"  active ICP {h['auc_active_icp']} · tuned logistic regression {h['auc_logistic_regression']} "
        f"(C={h['regularisation_C']}) · gradient boosting {h['auc_boosting']} · "
        f"calibrated ICP {h['auc_calibrated_icp']}",
        highlight=False,
    )
    out.print(f"Signals learnt besides the ICP's criteria: {', '.join(h['signals']) or 'none'}.", highlight=False)
    if h.get("single_valued"):
        out.print(f"Left out, one value for every lead: {', '.join(h['single_valued'])}.", highlight=False)
    rates = result.icp.expected_conversion or {}
    out.print(
        "Held-out conversion per tier (the tiers read as probabilities): "
        + ", ".join(f"{tier} {rate:.1%}" for tier, rate in rates.items()),
        highlight=False,
    )
    for name, values in h.get("unseen_values", {}).items():
        out.print(f"{name}: dropped listed values no lead had: {', '.join(values)}.", highlight=False)
    for d in h.get("disqualifiers", []):
        rate = "no lead matched" if d["conversion_rate"] is None else f"{d['conversion_rate']:.1%} converted"
        flag = " [bold red]suspect: they converted at least as well as the average lead[/]" if d["suspect"] else ""
        out.print(f"Disqualifier kept: {d['name']}: {d['leads']:,} training leads, {rate}.{flag}", highlight=False)
    out.print(f"Wrote {target}. Compare: leadq eval LABELLED --compare {target}", highlight=False)


def labels_export(
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Write to this file: .csv or .parquet. Default: CSV to stdout.")
    ] = None,
) -> None:
    """Review decisions from the store as a labelled dataset (label_qualified, label_tier, label_queue, who, why),
    ready for `leadq eval` and `leadq calibrate --outcome label_qualified`."""
    from connectors.settings import load_settings
    from connectors.store import Store
    from connectors.store.export import export_labels, write_export
    from crew.icp import load_icp

    settings = load_settings()
    icp = load_icp(settings.config_path(settings.scoring.icp_file))
    frame = export_labels(Store(settings.store_url), icp.qualified_tiers)
    if out_path is None:
        print(frame.write_csv(), end="")
    else:
        write_export(frame, out_path)
        err.print(f"wrote {frame.height:,} labelled leads to {out_path}")
