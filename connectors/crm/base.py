"""What every CRM sink shares: the result of publishing a batch, field mapping, and batching.

A sink publishes one decided batch and says, lead by lead, what the CRM confirmed.
Inputs the CRM refused come back as `failures` (they become dead letters with the
CRM's own message); everything else is confirmed and may be committed.

    CrmStopped (RetriableError)   a daily or org-wide API limit: stop now, the next run resumes
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import polars as pl

from connectors.domain import COMPANY_FIELDS, DECISION_FIELDS, PERSON_FIELDS
from connectors.errors import ConfigError, FatalError, RetriableError

# Fields a mapping may send: the signup, the company and the decision about the lead.
CRM_FIELDS = (
    "email",
    "signup_id",
    *PERSON_FIELDS,
    "country",
    "phone",
    "source",
    "signed_up_at",
    "company_name",
    "company_domain",
    "company_label",
    *COMPANY_FIELDS,
    *DECISION_FIELDS,
)

FAILURE_SCHEMA = {"email": pl.String, "signup_id": pl.String, "reason": pl.String, "raw": pl.String}
OWNER_SCHEMA = {"email": pl.String, "crm_owner": pl.String}
PEOPLE_SCHEMA = {**OWNER_SCHEMA, "crm_status": pl.String}  # what people did with a lead in the CRM
ACCOUNT_SCHEMA = {"company_domain": pl.String(), "account_owner": pl.String()}  # a company's owner in the CRM
ACTIVITY_SCHEMA = {"email": pl.String(), "activity_at": pl.Datetime("us")}  # an owner's last activity, UTC
NOT_PROVIDED = "[not provided]"  # what CRMs show for a required value the signup did not give


class CrmStopped(RetriableError):
    """The CRM's daily (or org-wide) limit is spent: publish nothing more this run."""


@dataclass
class CrmResult:
    """What the CRM confirmed for one batch."""

    written: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)  # FAILURE_SCHEMA rows, one per refused input
    stopped: str | None = None  # why the CRM took nothing more (a daily limit): the batch is not committed

    @property
    def failed(self) -> int:
        return len(self.failures)

    def failure_frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.failures, schema=FAILURE_SCHEMA)


@dataclass
class CrmPlan:
    """What a dry run would have written."""

    counts: dict[str, int] = field(default_factory=dict)
    sample: list[dict[str, Any]] = field(default_factory=list)

    def add(self, other: CrmPlan, keep: int = 3) -> None:
        for name, n in other.counts.items():
            self.counts[name] = self.counts.get(name, 0) + n
        self.sample = (self.sample + other.sample)[:keep]


class CrmSink(Protocol):
    name: str
    # the CRM's company records that can have an owner are the ones leadq wrote (HubSpot, by its company
    # key): their owners are asked only for companies the store knows
    writes_companies: bool

    def existing_owners(self, emails: Sequence[str]) -> pl.DataFrame:
        """(email, crm_owner) for leads that already have an owner in the CRM (owner as an SDR email if known)."""
        ...

    def people_decisions(self, emails: Sequence[str]) -> pl.DataFrame:
        """PEOPLE_SCHEMA rows for the leads the CRM has: their owner and lead status, as people set them."""
        ...

    def account_owners(self, domains: Sequence[str]) -> pl.DataFrame:
        """ACCOUNT_SCHEMA rows: the owner (as an SDR email if known) of the CRM's company of each domain."""
        ...

    def activity(self, emails: Sequence[str]) -> pl.DataFrame:
        """ACTIVITY_SCHEMA rows: the last sales activity the CRM records on these leads (none: left out)."""
        ...

    def publish(self, leads: pl.DataFrame) -> CrmResult: ...

    def plan(self, leads: pl.DataFrame) -> CrmPlan: ...

    def usage(self) -> dict[str, Any]:
        """crm_api_calls and anything else a run summary should show."""
        ...


def check_mapping(mapping: dict[str, str], key: str) -> None:
    """Every mapped leadq field exists; raises ConfigError naming the settings key."""
    unknown = sorted(set(mapping) - set(CRM_FIELDS))
    if unknown:
        raise ConfigError(
            f"settings.toml: key '{key}': leadq has no field {', '.join(map(repr, unknown))}; "
            f"fields: {', '.join(CRM_FIELDS)}"
        )


def with_crm_fields(leads: pl.DataFrame) -> pl.DataFrame:
    """The batch with every CRM field present (absent ones null) and `company_label` derived."""
    missing = [pl.lit(None).alias(c) for c in CRM_FIELDS if c not in leads.columns and c != "company_label"]
    frame = leads.with_columns(missing)
    label = pl.coalesce(
        pl.col("company_legal_name"), pl.col("company_name"), pl.col("company_domain"), pl.lit(NOT_PROVIDED)
    )
    return frame.with_columns(label.alias("company_label"))


def owner_to_write(frame: pl.DataFrame) -> pl.Expr:
    """Leads whose owner leadq decided: routing gave one and it is not the owner the CRM already has."""
    owner = pl.col("owner").is_not_null()
    if "crm_owner" not in frame.columns:
        return owner
    return owner & (pl.col("owner") != pl.col("crm_owner")).fill_null(True)


def mapped_records(frame: pl.DataFrame, mapping: dict[str, str], as_text: bool) -> list[dict[str, Any]]:
    """One dict of CRM properties per row; nulls are left out, so leadq never blanks a CRM value.

    `as_text` renders every value as a string (HubSpot); otherwise JSON types stay (Salesforce)."""
    exprs = []
    for leadq_field, crm_field in mapping.items():
        column = pl.col(leadq_field)
        dtype = frame.schema[leadq_field]
        if dtype == pl.Boolean:
            column = column.cast(pl.String).str.to_lowercase() if as_text else column
        elif isinstance(dtype, pl.Datetime):
            column = column.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif as_text:
            column = column.cast(pl.String)
        exprs.append(column.alias(crm_field))
    rows = frame.select(exprs).to_dicts() if exprs else [{} for _ in range(frame.height)]
    return [{k: v for k, v in row.items() if v is not None} for row in rows]


def failure(email: str | None, signup_id: str | None, reason: str, payload: Any) -> dict[str, Any]:
    return {"email": email, "signup_id": signup_id, "reason": reason, "raw": json.dumps(payload, default=str)}


T = TypeVar("T")


def chunked(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def send_isolating(
    items: Sequence[T], send: Callable[[Sequence[T]], Any], on_refused: Callable[[T, str], None], budget: int = 30
) -> list[tuple[Sequence[T], Any]]:
    """Send a chunk; if the CRM refuses the whole request (HTTP 400), halve it until the bad inputs are alone.

    A batch API that rejects 100 records for one bad value would otherwise lose 99 good ones.
    A refusal that survives `budget` requests is not about single records (a missing field,
    a wrong setting): it raises FatalError with the CRM's message instead of hammering on.
    Returns (chunk, response) for every accepted chunk; `on_refused` gets each refused input."""
    spent = 0

    def attempt(part: Sequence[T]) -> list[tuple[Sequence[T], Any]]:
        nonlocal spent
        spent += 1
        try:
            return [(part, send(part))]
        except BatchRefused as exc:
            if spent >= budget:
                raise FatalError(f"the CRM refused {len(items)} records again and again: {exc.message}") from exc
            if len(part) == 1:
                on_refused(part[0], exc.message)
                return []
            middle = len(part) // 2
            return attempt(part[:middle]) + attempt(part[middle:])

    return attempt(items)


class BatchRefused(FatalError):
    """The CRM refused a whole batch request as invalid (HTTP 400); `message` is the CRM's reason."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = str(self)  # scrubbed of secrets, like every error message
