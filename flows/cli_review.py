"""What waits for a person: `leadq review` (held leads: list, approve or override, reject) and
`leadq dead-letters` (rows and records leadq could not process: list, retry)."""

from __future__ import annotations

import getpass
import os
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.text import Text

from connectors.domain import Tier
from flows.console import (
    JsonLines,
    JsonOutcome,
    LeadqTyper,
    Limit,
    cell,
    console_logs,
    err,
    error_line,
    flow_errors,
    heartbeats,
    out,
    print_outcome,
    print_rows,
)


class RetryGroup(StrEnum):
    CRM = "crm"
    SOURCE = "source"


dead_letters_app = LeadqTyper(
    help="Rows and records leadq could not process, each with its reason.", no_args_is_help=True
)
review_app = LeadqTyper(
    help="Leads leadq held for a person: list them, approve or override, reject.", no_args_is_help=True
)


@dead_letters_app.command("list")
def dead_letters_list(
    crm_only: Annotated[bool, typer.Option("--crm", help="Only records the CRM refused.")] = False,
    limit: Limit = 50,
    as_json: JsonLines = False,
) -> None:
    """List dead letters, newest first: the source rows prepare rejected and the records the CRM refused."""
    from connectors.settings import load_settings
    from connectors.store import Store

    store = Store(load_settings().store_url)
    if not store.exists():
        err.print("No store yet: nothing has been processed.")
        return
    frame = store.dead_letters(crm=True if crm_only else None, limit=limit, newest_first=True)
    frame = frame.select("key", "source_key", "signup_id", "row_number", "reason", "created_at")

    def cells(row: dict[str, Any]) -> Sequence[Text | str]:
        source = row["source_key"]
        where_from = "CRM " + source.removeprefix("crm:") if source.startswith("crm:") else "source"
        at = row["signup_id"] or (f"row {row['row_number']}" if row["row_number"] is not None else "")
        return [cell(where_from), cell(at), cell(row["reason"]), str(row["created_at"])[:19]]

    print_rows(frame, as_json, "dead letters", ("source", "signup / row", "reason", "when"), cells)


@dead_letters_app.command("retry")
def dead_letters_retry(
    only: Annotated[
        RetryGroup | None,
        typer.Option("--only", help="crm: only the CRM's refusals; source: only rejected source rows."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many, oldest first.")] = 10_000,
    as_json: JsonOutcome = False,
) -> None:
    """Send dead letters through the normal path again (after fixing the settings, the data or the CRM).

    Fixed ones leave the table; the others stay with their new reason."""
    from flows import local_server
    from flows.context import preload_context

    runtime = preload_context().settings.runtime
    local_server.use_local_server(runtime, err.print)
    from flows.dead_letters import retry_dead_letters

    console_logs(False)
    with flow_errors("retry"), heartbeats(runtime):
        outcome = retry_dead_letters(only=only.value if only else None, limit=limit)
    print_outcome(
        outcome,
        as_json,
        f"{outcome['retried']} dead letters retried: {outcome['fixed']} fixed and removed, "
        f"{outcome['still_failing']} still failing (leadq dead-letters list shows why)",
    )


@review_app.command("list")
def review_list(
    limit: Limit = 50,
    show_all: Annotated[bool, typer.Option("--all", help="Decided reviews too, with who and why.")] = False,
    as_json: JsonLines = False,
) -> None:
    """List the leads waiting for a person, oldest first, with why each is held and what leadq proposes."""
    from connectors.settings import load_settings
    from connectors.store import Store
    from flows.review import pending_reviews

    frame = pending_reviews(Store(load_settings().store_url), show_all, limit)
    if frame.is_empty() and not as_json:
        out.print("No leads wait for review.")
        return

    def cells(row: dict[str, Any]) -> Sequence[Text | str]:
        status = row["status"]
        decided = status if status == "pending" else f"{status} by {row['decided_by']}: {row['why']}"
        return [cell(row[c]) for c in ("email", "company_domain", "score", "tier", "queue", "held_because")] + [
            cell(decided)
        ]

    columns = ("lead", "company", "score", "tier", "queue", "held because", "status")
    print_rows(frame, as_json, "reviews", columns, cells)
    if not as_json:
        out.print(
            "Decide: leadq review approve EMAIL --reason '...' [--tier B] [--queue Q] [--owner SDR]; "
            "leadq review reject EMAIL --reason '...'",
            highlight=False,
        )


Reason = Annotated[str, typer.Option("--reason", help="Why (kept with the decision as a labelled example).")]
By = Annotated[str, typer.Option("--by", help="Who decided (default: the operating-system user).")]


def _os_user() -> str:
    """The person at the terminal: a decision always records someone."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


@review_app.command("approve")
def review_approve(
    emails: Annotated[list[str], typer.Argument(help="The held leads' emails.")],
    reason: Reason,
    tier: Annotated[Tier | None, typer.Option("--tier", help="Override the tier.")] = None,
    queue: Annotated[str | None, typer.Option("--queue", help="Override the queue (from routing.yaml).")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Override the owner (an SDR's email).")] = None,
    by: By = "",
    as_json: JsonOutcome = False,
) -> None:
    """Approve held leads (optionally overriding tier, queue or owner); they are routed and written now."""
    _decide(emails, "approved", reason, by, as_json, tier=tier.value if tier else None, queue=queue, owner=owner)


@review_app.command("reject")
def review_reject(
    emails: Annotated[list[str], typer.Argument(help="The held leads' emails.")],
    reason: Reason,
    by: By = "",
    as_json: JsonOutcome = False,
) -> None:
    """Reject held leads: they are recorded (and written to the CRM) as disqualified by you, and not routed."""
    _decide(emails, "rejected", reason, by, as_json)


def _decide(emails: list[str], decision: str, reason: str, by: str, as_json: bool, **overrides: str | None) -> None:
    from flows import local_server
    from flows.context import preload_context
    from flows.review_decisions import Decision, check_decisions

    who = by.strip() or _os_user()
    try:
        decisions = [
            Decision(email=e.strip().lower(), decision=decision, why=reason, who=who, **overrides) for e in emails
        ]
        ctx = preload_context()
        check_decisions(ctx, [d.model_dump() for d in decisions])
        waiting = ctx.store.pending_reviews([d.email for d in decisions]) if ctx.store.exists() else set()
        missing = [d.email for d in decisions if d.email not in waiting]
        if missing:
            raise ValueError(f"not waiting for review: {', '.join(missing)} (see `leadq review list`)")
    except ValueError as exc:
        error_line(f"leadq: error: {exc}")
        raise typer.Exit(2) from None
    local_server.use_local_server(ctx.settings.runtime, err.print)
    from flows.review import review_leads

    console_logs(False)
    with (
        flow_errors("review", "The decisions are stored; the next review-leads run routes and writes them."),
        heartbeats(ctx.settings.runtime),
    ):
        summary = review_leads(decisions=decisions)
    print_outcome(
        summary,
        as_json,
        f"{len(decisions)} {decision} by {who}; {summary['applied']} leads routed and written "
        f"({summary['qualified']} qualified); {summary['pending']} still wait for review.",
    )
