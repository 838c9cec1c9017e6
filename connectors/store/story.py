"""The whole story of one lead, in order, from every table that holds a part of it (`leadq explain`)."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from connectors.store.store import Store


def lead_story(store: Store, email: str) -> dict[str, Any] | None:
    """Everything the store knows of one lead, oldest first; None when it never saw the email."""
    email = email.strip().lower()
    lead = _rows(store, "select * from leads where email = :e", email)
    signups = _rows(store, "select source_key, row_number, signup_id, signed_up_at, outcome, run_id, seen_at "
                           "from signup_rows where email = :e order by signed_up_at, seen_at", email)  # fmt: skip
    letters = _rows(store, "select key, source_key, row_number, reason, run_id, created_at from dead_letters "
                           "where key like :like order by created_at", email, like=f"crm:%|{email}")  # fmt: skip
    if not lead and not signups and not letters:
        return None
    events = _rows(store, "select e.kind, e.detail, e.run_id, e.at, r.summary from audit_events e "
                          "left join runs r on r.run_id = e.run_id where e.email = :e order by e.at, e.id", email)  # fmt: skip
    assessments = _rows(store, "select icp_version, score, tier, confidence, method, needs_review, reasons, "
                               "disqualified_by, evidence, run_id, assessed_at from assessments where email = :e "
                               "order by assessed_at", email)  # fmt: skip
    company_domain = lead[0]["company_domain"] if lead else None
    company = _rows(store, "select * from companies where domain = :e", company_domain or "") if company_domain else []
    return {
        "email": email,
        "lead": lead[0] if lead else None,
        "signups": signups,
        "decisions": [_decision(e) for e in events],
        "assessments": [{**a, "evidence": _json(a["evidence"])} for a in assessments],
        "assignment": next(iter(_rows(store, "select * from assignments where email = :e", email)), None),
        "reviews": _rows(store, "select status, held_because, tier, queue, held_at, decided_by, decided_at, why, "
                                "tier_override, queue_override, owner_override from reviews where email = :e", email),
        "labels": _rows(store, "select decision, predicted_tier, label_tier, who, why, at from labels "
                               "where email = :e order by at", email),  # fmt: skip
        "crm_refusals": letters,
        "notifications": _rows(store, "select kind, run_id, at from notifications where email = :e order by at", email),
        "company": _company(company[0]) if company else None,
    }  # fmt: skip


def _decision(event: dict[str, Any]) -> dict[str, Any]:
    """An audit event with what the run did with it in the CRM (from the run's summary)."""
    detail = _json(event["detail"]) or {}
    summary = _json(event.pop("summary")) or {}
    crm, mode = summary.get("crm", "local"), summary.get("mode", "live")
    written = "held for review: not written" if event["kind"] == "held" else (
        "shadow mode: not written" if mode == "shadow" else
        "recorded in the store (the embedded CRM)" if crm == "local" else f"written to {crm}")  # fmt: skip
    return {**event, "detail": detail, "crm": written}


def _company(row: dict[str, Any]) -> dict[str, Any]:
    provenance = _json(row.get("provenance")) or {}
    fields = {name: row[name] for name in ("name", "industry", "employees", "country", "founded_year", "linkedin_url",
                                           "email_provider", "technologies", "description") if row.get(name) is not None}  # fmt: skip
    return {
        "domain": row["domain"],
        "fields": {
            name: {"value": value, **(provenance.get(name) or {"source": "unknown"})} for name, value in fields.items()
        },  # fmt: skip
        "edited_fields": _json(row.get("edited_fields")) or [],
        "not_found": _json(row.get("enrichment_notes")) or {},
        "updated_at": row.get("updated_at"),
    }


def _rows(store: Store, query: str, email: str, **params: Any) -> list[dict[str, Any]]:
    if not sa.inspect(store.engine).has_table(query.split(" from ")[1].split()[0]):
        return []
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(query), {"e": email, **params}).mappings()]


def _json(value: Any) -> Any:
    if not isinstance(value, str) or not value:
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value
