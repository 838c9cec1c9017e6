"""The whole story of one lead, in order, from every table that holds a part of it (`leadq explain`)."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from connectors.store.store import Store

_QUERIES = {
    "lead": "select * from leads where email = :e",
    "signups": "select source_key, row_number, signup_id, signed_up_at, outcome, run_id, seen_at "
    "from signup_rows where email = :e order by signed_up_at, seen_at",
    "crm_refusals": "select key, source_key, row_number, reason, run_id, created_at from dead_letters "
    "where key like :like order by created_at",
    "decisions": "select e.kind, e.detail, e.run_id, e.at, r.summary from audit_events e "
    "left join runs r on r.run_id = e.run_id where e.email = :e order by e.at, e.id",
    "assessments": "select icp_version, score, tier, confidence, method, needs_review, reasons, disqualified_by, "
    "evidence, run_id, assessed_at from assessments where email = :e order by assessed_at",
    "assignment": "select * from assignments where email = :e",
    "reviews": "select status, held_because, tier, queue, held_at, decided_by, decided_at, why, tier_override, "
    "queue_override, owner_override from reviews where email = :e",
    "labels": "select decision, predicted_tier, label_tier, who, why, at from labels where email = :e order by at",
    "notifications": "select kind, run_id, at from notifications where email = :e order by at",
    "company": "select * from companies where domain = :e",
}
COMPANY_FIELDS = (
    "name",
    "industry",
    "employees",
    "country",
    "founded_year",
    "linkedin_url",
    "email_provider",
    "technologies",
    "description",
)


def lead_story(store: Store, email: str) -> dict[str, Any] | None:
    """Everything the store knows of one lead, oldest first; None when it never saw the email."""
    email = email.strip().lower()
    found = {name: _rows(store, name, email, like=f"crm:%|{email}") for name in _QUERIES if name != "company"}
    if not found["lead"] and not found["signups"] and not found["crm_refusals"]:
        return None
    lead = found["lead"][0] if found["lead"] else None
    domain = lead["company_domain"] if lead else None
    company = _rows(store, "company", domain) if domain else []
    return {
        **found,
        "email": email,
        "lead": lead,
        "decisions": [_decision(e) for e in found["decisions"]],
        "assessments": [{**a, "evidence": _json(a["evidence"])} for a in found["assessments"]],
        "assignment": next(iter(found["assignment"]), None),
        "company": _company(company[0]) if company else None,
    }


def _decision(event: dict[str, Any]) -> dict[str, Any]:
    """An audit event with what the run did with it in the CRM (from the run's summary)."""
    detail = _json(event["detail"]) or {}
    summary = _json(event.pop("summary")) or {}
    crm, mode = summary.get("crm", "local"), summary.get("mode", "live")
    if event["kind"] == "held":
        written = "held for review: not written"
    elif mode == "shadow":
        written = "shadow mode: not written"
    else:
        written = "recorded in the store (the embedded CRM)" if crm == "local" else f"written to {crm}"
    return {**event, "detail": detail, "crm": written}


def _company(row: dict[str, Any]) -> dict[str, Any]:
    provenance = _json(row.get("provenance")) or {}
    fields = {name: row[name] for name in COMPANY_FIELDS if row.get(name) is not None}
    return {
        "domain": row["domain"],
        "fields": {
            name: {"value": value, **(provenance.get(name) or {"source": "unknown"})} for name, value in fields.items()
        },
        "edited_fields": _json(row.get("edited_fields")) or [],
        "not_found": _json(row.get("enrichment_notes")) or {},
        "updated_at": row.get("updated_at"),
    }


def _rows(store: Store, name: str, email: str, **params: Any) -> list[dict[str, Any]]:
    query = _QUERIES[name]
    if not sa.inspect(store.engine).has_table(query.split(" from ")[1].split()[0]):
        return []  # a store made before this table existed
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(query), {"e": email, **params}).mappings()]


def _json(value: Any) -> Any:
    if not isinstance(value, str) or not value:
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value
