"""A free-mail lead's typed company name matched to a company leadq already knows, for account routing.

`jane@gmail.com` who typed "Northwind Analytics, Inc." belongs to the account northwind.io when a
company of that name is known and owned. Names are compared without case, punctuation and legal
suffixes (Inc, GmbH, Ltd, …), with rapidfuzz's token-sort ratio, among the known names that start
with the same three letters (so a batch never compares every name with every name). Below
`threshold` (routing.yaml `company_name_match`), or with two companies equally close, no match.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl
from rapidfuzz import fuzz, process

LEGAL = frozenset(
    {"inc", "incorporated", "llc", "ltd", "limited", "gmbh", "ag", "sa", "sas", "sarl", "bv", "nv", "plc", "pty"}
    | {"corp", "corporation", "co", "company", "the", "oy", "ab", "as", "kg", "srl", "spa", "kk"}
)


def name_key(name: str | None) -> str:
    """'Northwind Analytics, Inc.' → 'northwind analytics'."""
    words = re.sub(r"[^\w\s]", " ", (name or "").lower()).split()
    return " ".join(w for w in words if w not in LEGAL)


class CompanyNames:
    """Known companies by name: (company_domain, name) rows, grouped by the first three letters of their key."""

    def __init__(self, companies: pl.DataFrame, threshold: int) -> None:
        self.threshold = threshold
        self._blocks: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for domain, name in companies.select("company_domain", "name").drop_nulls().iter_rows():
            key = name_key(name)
            if key:
                self._blocks[key[:3]][key].add(domain)

    def match(self, typed: str | None) -> str | None:
        """The domain of the one known company this name means, or None."""
        key = name_key(typed)
        if not key:
            return None
        block = self._blocks.get(key[:3])
        if not block:
            return None
        found = process.extract(key, list(block), scorer=fuzz.token_sort_ratio, score_cutoff=self.threshold, limit=2)
        if not found or (len(found) > 1 and found[1][1] == found[0][1]):
            return None
        domains = block[found[0][0]]
        return next(iter(domains)) if len(domains) == 1 else None

    def domains(self, leads: pl.DataFrame) -> pl.Series:
        """`account_domain` for each lead: its company domain, else (a free-mail lead) the typed name's match."""
        typed = leads["company_name"] if "company_name" in leads.columns else pl.Series([None] * leads.height)
        own = leads["company_domain"] if "company_domain" in leads.columns else pl.Series([None] * leads.height)
        names = {name: self.match(name) for name in typed.filter(own.is_null()).drop_nulls().unique().to_list()}
        matched = typed.cast(pl.String).replace_strict(names, default=None, return_dtype=pl.String)
        return own.cast(pl.String).fill_null(matched).alias("account_domain")


@dataclass
class KnownNames:
    """The known companies' names, loaded on first need (a batch with a free-mail lead that typed a
    company) and kept for the run."""

    load: Callable[[], pl.DataFrame]  # (company_domain, name) of the companies that have an owner
    threshold: int
    _names: CompanyNames | None = field(default=None, repr=False)

    def account_domains(self, leads: pl.DataFrame) -> pl.DataFrame:
        """The leads with `account_domain` added when any free-mail lead typed a company name."""
        if "company_name" not in leads.columns:
            return leads
        typed = leads.filter(pl.col("company_domain").is_null() & pl.col("company_name").is_not_null())
        if typed.is_empty():
            return leads
        if self._names is None:
            self._names = CompanyNames(self.load(), self.threshold)
        return leads.with_columns(self._names.domains(leads))
