"""Shared domain vocabulary: the canonical signup columns, tiers and email types.

Every package speaks these names; sources map their own columns onto them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

# Signup columns leadq understands; any other source column is a product signal.
EMAIL: Final = "email"
SIGNUP_COLUMNS: Final[tuple[str, ...]] = (
    "signup_id",
    "email",
    "first_name",
    "last_name",
    "job_title",
    "company_name",
    "website",
    "country",
    "phone",
    "signed_up_at",
    "source",
)

# The product signals of a signup, as JSON: the source's own columns that are not in SIGNUP_COLUMNS,
# named where the file is read, so a column leadq derives later never becomes a signal by accident.
SIGNALS: Final = "_signals"

# A CRM source's own columns on each row (hidden from signals by their underscore): the record's id,
# which the write-back updates, and a hash of its input properties (unchanged: leadq's own write came back).
CRM_ID: Final = "_crm_id"
INPUT_HASH: Final = "_input_hash"

# A person's fields: from the signup, and what prepare derives from the job title.
PERSON_FIELDS: Final[tuple[str, ...]] = ("first_name", "last_name", "job_title", "seniority", "function")

# What leadq decides about a lead: its score, tier and reasons, how, and where it goes.
DECISION_FIELDS: Final[tuple[str, ...]] = (
    "score",
    "tier",
    "confidence",
    "reasons",
    "disqualified_by",
    "icp_version",
    "method",
    "needs_review",
    "segment",
    "territory",
    "queue",
    "routing_reason",
)

# Company fields enrichment can fill, in the order export shows them.
COMPANY_FIELDS: Final[tuple[str, ...]] = (
    "company_legal_name",
    "industry",
    "employees",
    "company_country",
    "founded_year",
    "linkedin_url",
    "description",
    "email_provider",
    "technologies",
)


class EmailType(StrEnum):
    """What kind of mailbox an address is; ICP criteria and disqualifiers use it."""

    BUSINESS = "business"
    FREE = "free"
    DISPOSABLE = "disposable"
    ROLE = "role"


class Tier(StrEnum):
    A = "A"
    B = "B"
    C = "C"
    D = "D"
    DISQUALIFIED = "disqualified"
