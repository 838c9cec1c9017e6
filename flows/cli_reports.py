"""The reporting commands: how leadq's decisions compare with people's (`leadq shadow-report`)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.table import Table

from connectors.crm import build_crm
from connectors.errors import LeadqError
from connectors.settings import load_settings
from connectors.store import Store
from connectors.store.export import export_leads, write_export
from crew.icp import load_icp
from crew.shadow import ShadowReport, compare, read_actual
from flows.console import err, fail, out


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
    try:
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
        report = compare(decisions, people, icp.qualified_tiers, settings.shadow.qualified_statuses,
                         settings.shadow.disqualified_statuses)  # fmt: skip
        if out_path is not None:
            write_export(report.leads, out_path)
            err.print(f"wrote {report.leads.height:,} leads to {out_path}")
    except LeadqError as exc:
        raise fail(exc) from None
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
        for column in (key, "leads", "with verdict", "people qualified", "verdict agrees", "with owner",
                       "same owner"):  # fmt: skip
            table.add_column(column, justify="left" if column == key else "right")
        for row in frame.iter_rows(named=True):
            table.add_row(
                row[key], f"{row['leads']:,}", f"{row['with_verdict']:,}", f"{row['people_qualified']:,}",
                _ratio(row["verdict_agrees"], row["with_verdict"]), f"{row['with_owner']:,}",
                _ratio(row["owner_agrees"], row["with_owner"]),
            )  # fmt: skip
        out.print(table)
    if not o["with_verdict"] and not o["with_owner"]:
        out.print("Nothing to compare yet: no lead has a qualified/disqualified status or a person as owner "
                  "(statuses counted: [shadow] in settings.toml).")  # fmt: skip


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _ratio(part: int, whole: int) -> str:
    return f"{part:,}/{whole:,} ({part / whole:.0%})" if whole else "-"
