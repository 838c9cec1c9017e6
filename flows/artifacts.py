"""The artifacts each run publishes in the Prefect UI, under stable keys."""

from __future__ import annotations

from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

HELD_MEANS = "Not routed and not written to the CRM until a person decides (the review-leads deployment)."
NEEDS_REVIEW_MEANS = (
    "Routed and written on the rules' decision, flagged because the crew disagreed by more than "
    "max_adjustment, failed, or ran out of budget."
)
SUMMARY_KEY = "qualify-signups-summary"
REPORT_KEY = "qualify-signups-report"


def publish_run_artifacts(summary: dict[str, Any]) -> None:
    rows = [
        {"metric": name, "value": summary[name]}
        for name in (
            "processed",
            "rejected",
            "leads",
            "qualified",
            "held_for_review",
            "duplicates",
            "batches",
            "duration_s",
        )
    ]
    rows += [
        {"metric": name, "value": summary.get(name)}
        for name in ("crm", "crm_api_calls", "crm_written", "crm_failed", "crm_stopped")
    ]
    rows += [{"metric": f"held: {why}", "value": n} for why, n in (summary.get("held_reasons") or {}).items()]
    rows += [
        {"metric": name, "value": summary[name]}
        for name in ("notifications_sent", "notifications_failed")
        if name in summary
    ]
    rows += [{"metric": "alert", "value": alert} for alert in summary.get("alerts") or []]
    rows += [{"metric": f"tier {tier}", "value": n} for tier, n in summary["by_tier"].items()]
    rows += [{"metric": f"queue {queue}", "value": n} for queue, n in summary["by_queue"].items()]
    rows += [{"metric": f"enrichment calls {p}", "value": n} for p, n in summary.get("enrichment_calls", {}).items()]
    rows += [{"metric": f"enrichment credits {p}", "value": c} for p, c in summary.get("enrichment_cost", {}).items()]
    rows += [{"metric": f"enrichment seconds {p}", "value": t} for p, t in summary.get("enrichment_time_s", {}).items()]
    create_table_artifact(table=rows, key=SUMMARY_KEY, description="leadq run summary")
    create_markdown_artifact(markdown=render_markdown(summary), key=REPORT_KEY, description="leadq run report")


def render_markdown(summary: dict[str, Any]) -> str:
    mode = " (dry run: nothing written)" if summary.get("dry_run") else ""
    lines = [
        f"# qualify-signups{mode}",
        "",
        f"Source `{summary.get('source')}`, ICP version `{summary.get('icp_version')}`, {summary['duration_s']} s.",
        "",
        "| processed | rejected | leads | qualified | held for review |",
        "|---:|---:|---:|---:|---:|",
        f"| {summary['processed']} | {summary['rejected']} | {summary['leads']} | {summary['qualified']} "
        f"| {summary.get('held_for_review', 0)} |",
        "",
        *_ledger(summary),
        *_alerts(summary),
        "## Tiers",
        "",
        "| tier | leads |",
        "|---|---:|",
        *(f"| {tier} | {n} |" for tier, n in summary["by_tier"].items()),
        "",
        "## Queues",
        "",
        "| queue | leads |",
        "|---|---:|",
        *(f"| {queue} | {n} |" for queue, n in summary["by_queue"].items()),
        "",
        "## Rejects",
        "",
    ]
    reasons = summary.get("reject_reasons") or {}
    if reasons:
        lines += ["| reason | rows |", "|---|---:|", *(f"| {r} | {n} |" for r, n in reasons.items())]
        lines += ["", "Every rejected row is in the `dead_letters` table with its row number and full reason."]
    else:
        lines.append("None.")
    lines += [
        "",
        "## Decisions",
        "",
        f"LLM: {summary.get('llm')}. Decided by: "
        + ", ".join(f"{m} {n}" for m, n in (summary.get("by_method") or {}).items())
        + f". LLM calls {summary.get('llm_calls', 0)}, "
        f"tokens {summary.get('llm_prompt_tokens', 0)} + {summary.get('llm_completion_tokens', 0)}, "
        f"${summary.get('llm_cost_usd', 0)}; crew-assessed leads {summary.get('crew_leads', 0)}.",
        "",
        _research_line(summary),
        "",
        f"- **Held for review: {summary.get('held_for_review', 0)}.** {HELD_MEANS}",
        f"- **Needs review: {summary.get('needs_review', 0)}.** {NEEDS_REVIEW_MEANS}",
    ]
    lines += _enrichment(summary)
    held = summary.get("held_reasons") or {}
    if held:
        lines += [
            "",
            "## Held for review",
            "",
            "| why | leads |",
            "|---|---:|",
            *(f"| {w} | {n} |" for w, n in held.items()),
        ]
        lines += ["", "Decide with the review-leads deployment (a form per lead) or `leadq review list`."]
    if "notifications_sent" in summary:
        lines += [
            "",
            f"Slack: {summary['notifications_sent']} messages sent, "
            f"{summary['notifications_failed']} not sent (see the log).",
        ]
    lines += ["", "## CRM", ""]
    if summary.get("dry_run"):
        plan = ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in (summary.get("crm_plan") or {}).items())
        lines.append(f"Dry run: would write to `{summary.get('crm')}`: {plan or 'nothing'}.")
    else:
        lines += [
            "| sink | API calls | written | refused (dead letters) |",
            "|---|---:|---:|---:|",
            f"| {summary.get('crm')} | {summary.get('crm_api_calls', 0)} | {summary.get('crm_written', 0)} "
            f"| {summary.get('crm_failed', 0)} |",
        ]
    if summary.get("crm_stopped"):
        lines += ["", f"**Stopped early:** {summary['crm_stopped']}"]
    steps = summary.get("step_seconds") or {}
    if steps:
        slowest = max(steps, key=lambda s: steps[s])
        lines += ["", "## Time per step", "", "| step | seconds |", "|---|---:|"]
        lines += [f"| {s} | {t} |" for s, t in steps.items()]
        lines += ["", f"Slowest step: **{slowest}**."]
    return "\n".join(lines) + "\n"


def _enrichment(summary: dict[str, Any]) -> list[str]:
    """One row per provider: what it cost this run, or why it was off."""
    calls, cost = summary.get("enrichment_calls") or {}, summary.get("enrichment_cost") or {}
    seconds, off = summary.get("enrichment_time_s") or {}, summary.get("enrichment_off") or {}
    providers = list(dict.fromkeys([*calls, *off]))
    if not providers:
        return []
    lines = ["", "## Enrichment", "", "| provider | calls | credits | seconds | note |", "|---|---:|---:|---:|---|"]
    for p in providers:
        note = f"off: {off[p]}" if p in off else ""
        lines.append(f"| {p} | {calls.get(p, 0):,} | {cost.get(p, 0)} | {seconds.get(p, 0)} | {note} |")
    return lines


def _ledger(summary: dict[str, Any]) -> list[str]:
    """The run's books: every row read is a lead, a duplicate, a reject, or a row the store already had."""
    books = summary.get("ledger")
    if not books:
        return []
    return [
        "## Ledger",
        "",
        "| processed | leads | duplicates | rejected | skipped (known) | balanced |",
        "|---:|---:|---:|---:|---:|---|",
        f"| {books['processed']} | {books['leads']} | {books['duplicates']} | {books['rejected']} "
        f"| {books['skipped_known']} | {'yes' if books['balanced'] else 'NO'} |",
        "",
        "processed = leads + duplicates + rejected + skipped (known): rows older than the stored signup, "
        "read again behind the watermark, or rejected by an earlier run.",
        "",
    ]


def _alerts(summary: dict[str, Any]) -> list[str]:
    alerts = summary.get("alerts") or []
    return ["## Alerts", "", *(f"- **{alert}**" for alert in alerts), ""] if alerts else []


def _research_line(summary: dict[str, Any]) -> str:
    """What the crew's research cost and what it found."""
    companies = summary.get("research_companies", 0)
    if not companies:
        return "Research: no company researched."
    gained = summary.get("research_fields_gained") or {}
    found = ", ".join(f"{name} {n}" for name, n in gained.items()) or "nothing with a source"
    return (
        f"Research: {companies} companies, {summary.get('research_tool_calls', 0)} tool calls "
        f"({summary.get('research_tool_calls', 0) / companies:.1f} per company), "
        f"{summary.get('research_search_credits', 0)} search credits; companies that gained a field: {found}; "
        f"findings dropped for want of a source: {summary.get('research_findings_dropped', 0)}."
    )
