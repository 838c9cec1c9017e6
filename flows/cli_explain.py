"""`leadq explain EMAIL`: the whole story of one lead, in order, readable on an 80-column terminal."""

from __future__ import annotations

import json
import textwrap
from typing import Annotated, Any

import typer

from flows.console import error_line, out

WIDTH = 80


def explain(
    email: Annotated[str, typer.Argument(help="The lead's email address (any case).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the story as one JSON object.")] = False,
) -> None:
    """Explain one lead: the signup rows that fed it, every assessment (score, tier, reasons, method,
    crew evidence, ICP version), routing and owners, review decisions, CRM writes and refusals,
    notifications, and the company's fields with where each value came from."""
    from connectors.settings import load_settings
    from connectors.store import Store
    from connectors.store.story import lead_story

    store = Store(load_settings().store_url)
    story = lead_story(store, email) if store.exists() else None
    if story is None:
        error_line(f"leadq: error: no lead or signup row for '{email.strip()}' in the store")
        raise typer.Exit(2)
    if as_json:
        print(json.dumps(story, default=str))
        return
    for line in render(story):
        out.print(line, markup=False, highlight=False, soft_wrap=True)


def render(story: dict[str, Any], width: int = WIDTH) -> list[str]:
    """The story as plain lines of at most `width` characters; a long line goes on, indented, below."""
    wrapped: list[str] = []
    for line in _lines(story):
        indent = " " * (len(line) - len(line.lstrip()) + 4)
        wrapped += textwrap.wrap(line, width, subsequent_indent=indent, break_on_hyphens=False) or [""]
    return wrapped


def _lines(story: dict[str, Any]) -> list[str]:
    lines = [f"Lead {story['email']}"]
    lead = story["lead"]
    if lead:
        who = " ".join(v for v in (lead.get("first_name"), lead.get("last_name")) if v) or "(no name)"
        lines.append(
            f"  {who}, {lead.get('job_title') or 'no title'} ({lead.get('seniority') or '-'}), "
            f"company {lead.get('company_domain') or '-'}, {lead.get('country') or '-'}"
        )
    lines += _section(
        "Signup rows",
        [
            f"{_t(s['signed_up_at'])}  {s['outcome']:<9} {_where(s['source_key'], s['row_number'])}"
            + (f" id {s['signup_id']}" if s.get("signup_id") and "|" not in str(s["signup_id"]) else "")
            for s in story["signups"]
        ],
    )
    decisions = []
    for d in story["decisions"]:
        detail = d["detail"]
        decisions.append(
            f"{_t(d['at'])}  {d['kind']}: score {detail.get('score')}, tier {detail.get('tier')}, "
            f"by {detail.get('method', 'rules')}, ICP {str(detail.get('icp_version'))[:12]}"
        )
        decisions.append(f"    queue {detail.get('queue') or '-'}, owner {detail.get('owner') or '-'}; {d['crm']}")
        if detail.get("reasons"):
            decisions.append(f"    why: {detail['reasons']}")
        if detail.get("disqualified_by"):
            decisions.append(f"    disqualified by: {detail['disqualified_by']}")
    lines += _section("Decisions (assessment, queue, owner, CRM)", decisions)
    evidence = [
        f"{a['icp_version'][:12]} ({a['method']}): {json.dumps(a['evidence'], default=str)}"
        for a in story["assessments"]
        if a.get("evidence")
    ]
    if evidence:
        lines += _section("Crew evidence", evidence)
    a = story["assignment"]
    if a:
        owner = (
            f"{a.get('owner') or 'no owner'} in queue {a.get('queue') or '-'} ({a.get('status') or 'active'}; "
            f"segment {a.get('segment')}, territory {a.get('territory')}), since {_t(a.get('assigned_at'))}"
        )
        why = [f"why: {a['routing_reason']}"] if a.get("routing_reason") else []
        touched = a.get("touched_at")
        touch = [f"first touch: {_t(touched)}" if touched else "first touch: not yet"] if a.get("owner") else []
        lines += _section("Owner now", [owner, *why, *touch])
    reviews = []
    for r in story["reviews"]:
        reviews.append(f"{_t(r['held_at'])}  held: {r['held_because']} (proposed {r['tier']}, {r['queue'] or '-'})")
        if r["status"] != "pending":
            overrides = ", ".join(
                f"{k.split('_')[0]} {r[k]}" for k in ("tier_override", "queue_override", "owner_override") if r.get(k)
            )
            reviews.append(
                f"{_t(r['decided_at'])}  {r['status']} by {r['decided_by']}: {r['why']}"
                + (f" ({overrides})" if overrides else "")
            )
    if reviews:
        lines += _section("Review", reviews)
    if story["crm_refusals"]:
        lines += _section(
            "CRM refusals", [f"{_t(c['created_at'])}  {c['source_key']}: {c['reason']}" for c in story["crm_refusals"]]
        )
    if story["notifications"]:
        lines += _section("Notifications", [f"{_t(n['at'])}  Slack: {n['kind']}" for n in story["notifications"]])
    company = story["company"]
    if company:
        fields = [
            f"{name}: {f['value']}  <- {f.get('source')}"
            + (f" ({f['method']}, {str(f.get('fetched_at'))[:10]}, conf {f['confidence']})" if f.get("method") else "")
            + (f" at {f['url']}" if f.get("url") else "")
            + (f" (said '{f['raw']}')" if f.get("raw") else "")
            for name, f in company["fields"].items()
        ]
        fields += [f"not found by {p}: {why}" for p, why in company["not_found"].items()]
        lines += _section(f"Company {company['domain']}", fields)
    return lines


def _section(title: str, rows: list[str]) -> list[str]:
    return ["", title, *(f"  {row}" for row in rows or ["(none)"])]


def _where(source_key: str, row: int | None) -> str:
    name = source_key.split(":", 1)[-1].rsplit("/", 1)[-1]
    return f"{name} row {row}" if row is not None else name


def _t(value: Any) -> str:
    return str(value)[:16] if value is not None else "-"
