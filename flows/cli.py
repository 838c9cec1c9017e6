"""The `leadq` command line: run the job, export the results, open the run history.

Exit codes: 0 success, 1 a run that failed, 2 bad usage or bad config.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from flows import cli_explain, cli_reports, cli_review
from flows.console import LeadqTyper, console_logs, err, error_line, flow_errors, heartbeats, out, print_outcome

app = LeadqTyper(
    name="leadq",
    help="Qualify product signups against your ICP, route them to SDR queues and write them to the CRM.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@contextmanager
def _progress(enabled: bool) -> Iterator[None]:
    """A live line on stderr (signups done, elapsed), only on a terminal."""
    from flows.progress import reporting_to

    if not enabled:
        yield
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("starting Prefect and reading signups…", total=None)

        def update(message: str, done: int) -> None:
            bar.update(task, description=f"{done:,} signups processed ({message})")

        with reporting_to(update):
            yield


@app.command()
def run(
    source: Annotated[
        Path | None,
        typer.Option(
            "--source", help="A CSV, Parquet or JSONL file of signups to process instead of the configured source."
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide everything and print it; write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run summary as one JSON object.")] = False,
    refresh_enrichment: Annotated[
        bool, typer.Option("--refresh-enrichment", help="Ignore cached enrichment; ask every provider again.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's INFO logs on the terminal.")] = False,
) -> None:
    """Process new signups: prepare, enrich, score, route and write them to the CRM."""
    from connectors.settings import load_settings
    from flows import local_server

    runtime = load_settings().runtime
    server = local_server.begin(runtime)  # starts (if it must) while the rest loads and the source is read
    from flows.context import preload_context
    from flows.nothing_new import nothing_new

    ctx = preload_context(str(source) if source else None)
    ctx.source.check()
    summary = None if refresh_enrichment else nothing_new(ctx, dry_run)  # then Prefect need not start
    if summary is None:
        from flows.qualify import qualify_signups  # Prefect loads while the server starts

        local_server.connect(server, runtime, err.print)

        console_logs(verbose)
        with flow_errors("run"), heartbeats(runtime), _progress(err.is_terminal and not verbose):
            summary = qualify_signups(
                source=str(source) if source else None, dry_run=dry_run, refresh_enrichment=refresh_enrichment
            )
    if as_json:
        print(json.dumps(summary, sort_keys=False, default=str))
    else:
        _print_summary(summary)


@app.command()
def backfill(
    start: Annotated[datetime, typer.Option("--start", formats=["%Y-%m-%d"], help="First day (UTC), YYYY-MM-DD.")],
    end: Annotated[datetime, typer.Option("--end", formats=["%Y-%m-%d"], help="Last day, inclusive, YYYY-MM-DD.")],
    chunk_days: Annotated[int, typer.Option("--chunk-days", min=1, help="Days per chunk (one subflow each).")] = 1,
    source: Annotated[
        Path | None, typer.Option("--source", help="A signup file instead of the configured source.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide everything, write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the backfill summary as one JSON object.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's INFO logs on the terminal.")] = False,
) -> None:
    """Re-qualify the signups of a date range, a day at a time; chunks already done are skipped.

    The live watermark is not moved, and a backfill never duplicates what scheduled runs wrote."""
    from flows.context import preload_context

    if end < start:
        error_line(f"leadq: error: --end {end:%Y-%m-%d} is before --start {start:%Y-%m-%d}")
        raise typer.Exit(2)
    from flows import local_server

    ctx = preload_context(str(source) if source else None)
    ctx.source.check()
    local_server.use_local_server(ctx.settings.runtime, err.print)
    from flows.backfill import BackfillParams, backfill_signups

    console_logs(verbose)
    params = BackfillParams(
        start=start.date(),
        end=end.date(),
        chunk_days=chunk_days,
        source=str(source) if source else None,
        dry_run=dry_run,
    )
    hint = "Start it again with the same dates: finished chunks are skipped."
    with flow_errors("backfill", hint), heartbeats(ctx.settings.runtime), _progress(err.is_terminal and not verbose):
        summary = backfill_signups(**params.model_dump())
    print_outcome(
        summary,
        as_json,
        f"backfill {summary['start']}..{summary['end']}: {summary['chunks_run']} chunks run, "
        f"{summary['chunks_skipped']} already done, {summary['processed']:,} signups, {summary['leads']:,} leads, "
        f"{summary['qualified']:,} qualified" + (" (dry run: nothing written)" if dry_run else ""),
    )
    if summary.get("crm_stopped"):
        out.print(f"[bold yellow]Stopped early:[/] {summary['crm_stopped']}", highlight=False)


@app.command()
def export(
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Write to this file: .csv or .parquet. Default: CSV to stdout.")
    ] = None,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw",
            help="CSV values exactly as stored, for machines: cells that start with = + - @ "
            "are not prefixed with ' (by default they are, so a spreadsheet never runs them).",
        ),
    ] = False,
) -> None:
    """Write one row per lead with its score, tier, reasons, queue and owner."""
    from connectors.settings import load_settings
    from connectors.store import Store
    from connectors.store.export import export_leads, to_csv, write_export

    settings = load_settings()
    store = Store(settings.store_url)
    frame = export_leads(store)
    if out_path is None:
        sys.stdout.write(to_csv(frame, raw))
    else:
        write_export(frame, out_path, raw)
        err.print(f"wrote {frame.height:,} leads to {out_path}")


EDITABLE = {
    "name": "name",
    "industry": "industry",
    "employees": "employees",
    "country": "country",
    "founded_year": "founded_year",
    "linkedin_url": "linkedin_url",
    "description": "description",
    "email_provider": "email_provider",
    "technologies": "technologies",
}


@app.command("edit-company")
def edit_company(
    domain: Annotated[str, typer.Argument(help="The company's domain, e.g. acme.io")],
    values: Annotated[list[str], typer.Argument(help="FIELD=VALUE pairs, e.g. industry='computer software'")],
    by: Annotated[str, typer.Option("--by", help="Who made the change (kept in the provenance).")] = "cli",
) -> None:
    """Set company fields by hand; enrichment never overwrites a field a person set."""
    from connectors.settings import load_settings
    from connectors.store import Store

    changes: dict[str, object] = {}
    for pair in values:
        name, sep, value = pair.partition("=")
        if not sep or name not in EDITABLE:
            error_line(f"leadq: error: '{pair}': expected FIELD=VALUE with FIELD one of {', '.join(EDITABLE)}")
            raise typer.Exit(2)
        changes[EDITABLE[name]] = int(value) if name in ("employees", "founded_year") and value.isdigit() else value
    store = Store(load_settings().store_url)
    store.create()
    store.edit_company(domain.strip().lower(), changes, who=by)
    err.print(f"{domain}: set {', '.join(changes)}; enrichment will not overwrite them")


@app.command()
def server(
    port: Annotated[
        int | None, typer.Option(help="Port to start it on (default: a free one). A running server keeps its port.")
    ] = None,
    stop: Annotated[bool, typer.Option("--stop", help="Stop leadq's local Prefect server.")] = False,
) -> None:
    """Start (or find) leadq's local Prefect server and print the address of its UI on the run history.

    `leadq run` starts this server the first time and every later run reuses it; it keeps running
    in the background until `leadq server --stop`."""
    from connectors.settings import load_settings
    from flows import local_server

    if stop:
        stopped = local_server.stop()
        err.print(f"stopped leadq's local Prefect server (pid {stopped.pid})" if stopped else "no local server runs")
        return
    if os.environ.get("PREFECT_API_URL"):
        err.print(f"PREFECT_API_URL is set: leadq's runs report to {os.environ['PREFECT_API_URL']}, not a local server")
        return
    server, started = local_server.start_or_reuse(port=port)
    server.wait_until_ready(load_settings().runtime.prefect_start_timeout_s, lambda: err.print("starting…"))
    state = "started" if started else f"running since {datetime.fromtimestamp(server.started_at):%Y-%m-%d %H:%M}"
    out.print(f"Prefect UI on leadq's run history: {server.ui}  ({state}, pid {server.pid})", highlight=False)
    err.print(f"Its log: {server.log}. Stop it with `leadq server --stop`.")


@app.command()
def serve(
    limit: Annotated[int, typer.Option("--limit", min=1, help="Flow runs at once.")] = 4,
) -> None:
    """Serve qualify-signups and check-sla (on their schedules), backfill-signups and review-leads from here.

    Uses leadq's local Prefect server (started if needed), or the one PREFECT_API_URL names."""
    from connectors.settings import load_settings
    from flows import local_server

    settings = load_settings()
    if settings.runtime.prefect_api != "local-server" and not os.environ.get("PREFECT_API_URL"):
        error_line(
            "leadq: error: `leadq serve` needs a Prefect server, so that the UI can show and start its runs: "
            'set [runtime] prefect_api = "local-server", or PREFECT_API_URL to a server of yours'
        )
        raise typer.Exit(2)
    local_server.use_local_server(settings.runtime, err.print)
    from prefect.client.orchestration import get_client

    from flows.serve import deployments

    deployments(settings)  # a bad schedule fails here, before anything registers
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()

    with get_client(sync_client=True) as client:
        if client.api_healthcheck() is not None:
            error_line(
                f"leadq: error: no Prefect server answers at PREFECT_API_URL={url}; start it with `leadq server`"
            )
            raise typer.Exit(2)
    err.print(
        f"Serving qualify-signups ({settings.run.schedule_cron} {settings.run.schedule_timezone}), "
        f"check-sla ({settings.sla.schedule_cron}), backfill-signups and review-leads against {url}. "
        "Ctrl-C stops (schedules pause)."
    )
    from flows.serve import serve_all

    serve_all(settings, limit)


def _print_summary(summary: dict[str, Any]) -> None:
    title = "leadq run" + (" (dry run: nothing written)" if summary.get("dry_run") else "")
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    for name in ("processed", "rejected", "leads", "qualified", "duplicates"):
        table.add_row(name, f"{summary[name]:,}")
    table.add_row("duration_s", f"{summary['duration_s']:,.1f}")
    for tier, n in summary["by_tier"].items():
        table.add_row(f"tier {tier}", f"{n:,}")
    for queue, n in summary["by_queue"].items():
        table.add_row(f"queue {queue}", f"{n:,}")
    if summary.get("crm", "local") != "local" and not summary.get("dry_run"):
        for name in ("crm_written", "crm_failed", "crm_api_calls"):
            label = f"{summary['crm']} {name.removeprefix('crm_').replace('_', ' ')}"
            table.add_row(label, f"{summary.get(name, 0):,}")
    out.print(table)
    books = summary["ledger"]
    out.print(
        f"books: {books['processed']:,} read = {books['leads']:,} leads + {books['duplicates']:,} duplicates + "
        f"{books['rejected']:,} rejected + {books['skipped_known']:,} already known",
        highlight=False,
    )
    steps = summary.get("step_seconds") or {}
    if steps:
        out.print("time: " + " · ".join(f"{step} {s:,.2f} s" for step, s in steps.items()), highlight=False)
    if summary.get("dry_run"):
        plan = ", ".join(f"{n:,} {what.replace('_', ' ')}" for what, n in (summary.get("crm_plan") or {}).items())
        out.print(f"Would write to {summary.get('crm')}: {plan or 'nothing'}.")
        for record in summary.get("crm_sample") or []:
            out.print_json(data=record)
    if summary.get("crm_stopped"):
        out.print(f"[bold yellow]Stopped early:[/] {summary['crm_stopped']}", highlight=False)
    if summary.get("crm_failed"):
        out.print(f"{summary['crm_failed']} records the CRM refused are in dead_letters with the CRM's message.")
    if summary.get("held_for_review"):
        out.print(f"{summary['held_for_review']} leads wait for a person: leadq review list")
    if summary["rejected"]:
        out.print(f"{summary['rejected']} rejected rows are in the dead_letters table, each with its reason.")
    if not summary["processed"]:
        out.print("No new signups since the last run.")
    out.print(f"run {summary['run_id']} · every lead with its reasons: leadq export --out leads.csv")


@app.command("check-sla")
def check_sla_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the check's summary as one JSON object.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's INFO logs on the terminal.")] = False,
) -> None:
    """Alert about qualified leads nobody touched within their tier's sla_minutes (once per lead).

    Prints the time to first touch per queue. `leadq serve` runs it on the sla.schedule_cron setting."""
    from connectors.settings import load_settings
    from flows import local_server

    runtime = load_settings().runtime
    local_server.use_local_server(runtime, err.print)
    from flows.sla import check_sla

    console_logs(verbose)
    with flow_errors("check-sla"), heartbeats(runtime):
        summary = check_sla()
    if as_json:
        print(json.dumps(summary, default=str))
        return
    table = Table(title="speed to lead", title_justify="left")
    for column in ("queue", "leads", "touched", "within SLA", "open breaches", "median min", "p90 min"):
        table.add_column(column, justify="left" if column == "queue" else "right")
    for row in summary.get("by_queue", []):
        table.add_row(*("-" if v is None else str(v) for v in row.values()))
    out.print(table)
    for alert in summary.get("alerts", []):
        out.print(f"[bold yellow]ALERT[/] {alert}", highlight=False)
    out.print(
        f"{summary['checked']} leads with an SLA checked, {summary['breached']} past it untouched, "
        f"{summary['alerted']} newly alerted" + (f" ({summary['skipped']})" if summary.get("skipped") else "")
    )


lead_app = LeadqTyper(help="One lead: what its owner did with it.", no_args_is_help=True)


@lead_app.command("status")
def lead_status(
    email: Annotated[str, typer.Argument(help="The lead's email.")],
    status: Annotated[str, typer.Argument(help="worked: its owner touched it (the SLA is met); new: not yet.")],
) -> None:
    """Record what the owner did with a lead in the embedded store (a CRM records it itself)."""
    from connectors.errors import LeadqError
    from connectors.settings import load_settings
    from connectors.store import Store

    store = Store(load_settings().store_url)
    try:
        if not store.exists():
            raise LeadqError(f"no leadq store at {store.url} yet (run `leadq run` first)")
        row = store.set_lead_status(email, status)
    except LeadqError as exc:
        error_line(f"leadq: error: {exc}")
        raise typer.Exit(2) from None
    touched = row["touched_at"]
    out.print(
        f"{row['email']}: owner {row['owner'] or '-'}, first touch "
        + (f"{touched:%Y-%m-%d %H:%M} UTC" if touched else "not yet"),
        highlight=False,
    )


app.add_typer(lead_app, name="lead")
app.add_typer(cli_review.dead_letters_app, name="dead-letters")
app.add_typer(cli_review.review_app, name="review")
app.command("explain")(cli_explain.explain)
app.command("shadow-report")(cli_reports.shadow_report)
app.command("eval")(cli_reports.eval_command)
app.command("calibrate")(cli_reports.calibrate_command)
labels_app = LeadqTyper(help="People's review decisions as labelled data.", no_args_is_help=True)
labels_app.command("export")(cli_reports.labels_export)
app.add_typer(labels_app, name="labels")


def main() -> None:  # pragma: no cover - the console script
    app()
