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

# Columns that prepare adds to every valid lead.
PREPARED_COLUMNS: Final[tuple[str, ...]] = (
    "email_domain",
    "company_domain",
    "email_type",
    "seniority",
    "function",
)

# Firmographic columns that enrichment adds (prefixed so they never clash with signup input).
COMPANY_COLUMNS: Final[tuple[str, ...]] = (
    "company_legal_name",
    "industry",
    "employees",
    "company_country",
    "founded_year",
    "linkedin_url",
    "company_sources",
    "email_provider",
    "technologies",
)

# Columns that scoring and routing add.
DECISION_COLUMNS: Final[tuple[str, ...]] = (
    "score",
    "tier",
    "confidence",
    "reasons",
    "disqualified_by",
    "icp_version",
    "segment",
    "territory",
    "queue",
    "owner",
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
