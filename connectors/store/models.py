"""The embedded CRM and leadq's own records, as SQLModel tables (SQLite or Postgres)."""

from __future__ import annotations

from pydantic import NaiveDatetime as UtcDatetime  # every time in the store is UTC, stored naive
from sqlmodel import Field, SQLModel


class Lead(SQLModel, table=True):
    __tablename__ = "leads"
    email: str = Field(primary_key=True)
    signup_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    job_title: str | None = None
    seniority: str | None = None
    function: str | None = None
    company_domain: str | None = Field(default=None, index=True)
    email_type: str | None = None
    country: str | None = None
    phone: str | None = None
    source: str | None = None
    signed_up_at: UtcDatetime | None = None
    signals: str | None = None  # JSON of the extra signup columns
    crm_id: str | None = None  # the CRM record it was read from (a CRM source): written back to that record
    input_hash: str | None = None  # what that record said when read: unchanged means leadq's own write came back
    icp_version: str | None = None  # the version of the current assessment
    updated_run: str | None = None
    updated_at: UtcDatetime | None = None


class Company(SQLModel, table=True):
    __tablename__ = "companies"
    domain: str = Field(primary_key=True)
    name: str | None = None
    industry: str | None = None
    employees: int | None = None
    country: str | None = None
    founded_year: int | None = None
    linkedin_url: str | None = None
    description: str | None = None
    email_provider: str | None = None
    technologies: str | None = None
    sources: str | None = None  # the providers the values came from, comma-separated
    provenance: str | None = None  # JSON: field -> {value, source, method, fetched_at, confidence}
    enrichment_notes: str | None = None  # JSON: provider -> why it gave nothing (refused, not found, ...)
    edited_fields: str | None = None  # JSON list: fields a person set; enrichment never overwrites them
    updated_at: UtcDatetime | None = None


class Assessment(SQLModel, table=True):
    __tablename__ = "assessments"
    email: str = Field(primary_key=True)
    icp_version: str = Field(primary_key=True)
    score: int
    tier: str
    confidence: float
    reasons: str | None = None
    disqualified_by: str | None = None
    method: str = "rules"  # rules | crew | review
    needs_review: bool = False
    evidence: str | None = None  # JSON: the crew's per-criterion evidence, with sources
    run_id: str | None = None
    assessed_at: UtcDatetime | None = None


class Assignment(SQLModel, table=True):
    __tablename__ = "assignments"
    email: str = Field(primary_key=True)
    queue: str | None = None
    owner: str | None = None
    status: str | None = None  # active | waiting (no SDR could take it yet) | disqualified (the record is kept)
    segment: str | None = None
    territory: str | None = None
    run_id: str | None = None
    assigned_at: UtcDatetime | None = None
    routing_reason: str | None = None  # why this owner: "rotation of inbound-na", "account owner of acme.io", …
    owned_at: UtcDatetime | None = None  # when the current owner got the lead: the SLA clock starts here
    touched_at: UtcDatetime | None = None  # the owner's first activity on it (the CRM's, or `leadq lead status`)


class AuditEvent(SQLModel, table=True):
    """One decision about one lead; `event_key` makes a redone batch add nothing."""

    __tablename__ = "audit_events"
    id: int | None = Field(default=None, primary_key=True)
    event_key: str = Field(unique=True)
    run_id: str | None = None
    email: str = Field(index=True)
    kind: str
    detail: str | None = None
    at: UtcDatetime | None = None


class EnrichmentCache(SQLModel, table=True):
    """One provider's answer for one domain, reused until it is older than the provider's TTL."""

    __tablename__ = "enrichment_cache"
    domain: str = Field(primary_key=True)
    provider: str = Field(primary_key=True)
    status: str
    fetched_at: UtcDatetime
    payload: str  # JSON of the lookup


class CrewCache(SQLModel, table=True):
    """The crew's judgements of one company's leads, per ICP and prompt version."""

    __tablename__ = "crew_cache"
    domain: str = Field(primary_key=True)
    icp_version: str = Field(primary_key=True)
    prompt_version: str = Field(primary_key=True)
    fetched_at: UtcDatetime
    payload: str  # JSON: lead email -> judgement


class DeadLetter(SQLModel, table=True):
    __tablename__ = "dead_letters"
    key: str = Field(primary_key=True)
    source_key: str
    signup_id: str | None = None
    row_number: int | None = None
    reason: str
    raw: str | None = None
    run_id: str | None = None
    created_at: UtcDatetime | None = None


class SyncState(SQLModel, table=True):
    """Watermarks and rotation positions: small JSON values under a key."""

    __tablename__ = "sync_state"
    key: str = Field(primary_key=True)
    value: str
    updated_at: UtcDatetime | None = None


class Review(SQLModel, table=True):
    """A lead held for a person: why, what leadq proposed, and (once decided) the decision."""

    __tablename__ = "reviews"
    email: str = Field(primary_key=True)
    status: str = Field(default="pending", index=True)  # pending | approved | rejected
    held_because: str | None = None
    company_domain: str | None = None
    score: int | None = None
    tier: str | None = None  # leadq's proposal
    queue: str | None = None
    reasons: str | None = None
    icp_version: str | None = None
    held_run: str | None = None
    held_at: UtcDatetime | None = None
    decided_by: str | None = None
    decided_at: UtcDatetime | None = None
    why: str | None = None
    tier_override: str | None = None
    queue_override: str | None = None
    owner_override: str | None = None
    decided_run: str | None = None  # the review-leads run that asked, if a form did
    applied_run: str | None = None  # the run that routed and wrote the lead after the decision


class Label(SQLModel, table=True):
    """A person's verdict on a lead: a labelled example for evals and calibration."""

    __tablename__ = "labels"
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(index=True)
    decision: str  # approved | rejected
    predicted_tier: str | None = None
    label_tier: str | None = None
    score: int | None = None
    queue: str | None = None
    owner: str | None = None
    icp_version: str | None = None
    who: str
    why: str
    at: UtcDatetime | None = None


class Notification(SQLModel, table=True):
    """A Slack message sent about a lead (kind `lead`: a new lead; `review`: held for review), so it is sent once."""

    __tablename__ = "notifications"
    email: str = Field(primary_key=True)
    kind: str = Field(primary_key=True)
    run_id: str | None = None
    at: UtcDatetime | None = None


class Run(SQLModel, table=True):
    """One run and its books: processed = leads + duplicates + rejected + skipped_known."""

    __tablename__ = "runs"
    run_id: str = Field(primary_key=True)
    source_key: str | None = None
    started_at: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None
    status: str = "running"  # running | completed | stopped | failed | crashed
    dry_run: bool = False
    summary: str | None = None
    processed: int | None = None
    leads: int | None = None
    duplicates: int | None = None
    rejected: int | None = None
    skipped_known: int | None = None
    parent_run: str | None = None  # a backfill chunk's backfill run


class SignupRow(SQLModel, table=True):
    """A source row that fed a lead (or was folded into it as a duplicate): where and when it came from."""

    __tablename__ = "signup_rows"
    key: str = Field(primary_key=True)  # source key | row position | signup id
    email: str = Field(index=True)
    source_key: str
    row_number: int | None = None
    signup_id: str | None = None
    signed_up_at: UtcDatetime | None = None
    outcome: str  # lead | duplicate | stale (older than the stored signup) | known
    run_id: str | None = None
    seen_at: UtcDatetime | None = None


class SdrLoad(SQLModel, table=True):
    """How many new leads each owner was given on one day (in the owner's time zone): what caps count."""

    __tablename__ = "sdr_loads"
    owner: str = Field(primary_key=True)
    day: str = Field(primary_key=True)  # ISO date
    assigned: int = 0


TABLES = (
    Lead,
    Company,
    Assessment,
    Assignment,
    AuditEvent,
    EnrichmentCache,
    CrewCache,
    DeadLetter,
    SyncState,
    Run,
    Review,
    Label,
    Notification,
    SignupRow,
    SdrLoad,
)
