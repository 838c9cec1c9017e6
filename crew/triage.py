"""Triage: which leads the crew sees. Rules decide the clear cases; the crew the uncertain band."""

from __future__ import annotations

import polars as pl

from connectors.domain import Tier
from connectors.settings import TriageSettings


def uncertain(triage: TriageSettings) -> pl.Expr:
    """True for leads the rules are unsure about; never for a hard disqualification."""
    low, high = triage.band
    unsure = pl.col("score").is_between(low, high) | (pl.col("confidence") < triage.min_confidence)
    if triage.missing_firmographics:
        unsure = unsure | pl.col("industry").is_null() | pl.col("employees").is_null()
    has_company = pl.col("company_domain").is_not_null()
    return (unsure & has_company & (pl.col("tier") != Tier.DISQUALIFIED.value)).fill_null(False)
