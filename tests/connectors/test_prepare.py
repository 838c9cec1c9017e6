from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from connectors.prepare import Prepared, PrepareRules, prepare_batch
from connectors.settings import load_settings
from connectors.sources.frame import canonicalise


@pytest.fixture
def rules(config_dir: Path) -> PrepareRules:
    return PrepareRules.from_settings(load_settings())


def _prepare(rules: PrepareRules, **columns: list[str | None]) -> Prepared:
    return prepare_batch(canonicalise(pl.DataFrame(columns), {}, "test"), rules)


def test_invalid_rows_become_rejects_with_reasons_and_valid_rows_survive(rules: PrepareRules) -> None:
    out = _prepare(
        rules,
        email=["ok@acme.io", "not-an-email", None, "a@b@c.io", "x@acme..io"],
        signed_up_at=["2026-01-01", "2026-01-01", "2026-01-01", "2026-01-01", "2026-01-01"],
    )
    assert out.leads["email"].to_list() == ["ok@acme.io"]
    reasons = dict(zip(out.rejects["_row"].to_list(), out.rejects["reason"].to_list(), strict=True))
    assert reasons[2] == "email 'not-an-email' is not valid: expected name@domain.tld"
    assert reasons[3] == "email is empty"
    assert "is not valid" in reasons[4] and "is not valid" in reasons[5]


def test_a_10mb_field_rejects_only_its_row(rules: PrepareRules) -> None:
    huge = "x" * (10 * 1024 * 1024)
    out = _prepare(rules, email=["a@acme.io", "b@acme.io"], company_name=[huge, "Acme"])
    assert out.leads["email"].to_list() == ["b@acme.io"]
    assert out.rejects["reason"][0] == "field 'company_name' is 10485760 characters long (limit 10000)"
    assert len(out.rejects["raw"][0]) < 2000  # the stored preview is cut short


def test_unparseable_signup_time_is_rejected_but_empty_is_allowed(rules: PrepareRules) -> None:
    out = _prepare(rules, email=["a@acme.io", "b@acme.io"], signed_up_at=["yesterday", None])
    assert out.leads["email"].to_list() == ["b@acme.io"]
    assert "signed_up_at 'yesterday' is not an ISO-8601 date" in out.rejects["reason"][0]


def test_same_email_in_a_batch_is_one_lead_keeping_the_latest(rules: PrepareRules) -> None:
    out = _prepare(
        rules,
        email=["Ana@Acme.io", "ana@acme.io "],
        job_title=["Manager", "VP Sales"],
        signed_up_at=["2026-01-01", "2026-01-02"],
    )
    assert out.leads["email"].to_list() == ["ana@acme.io"]
    assert out.leads["job_title"].to_list() == ["VP Sales"]
    assert out.duplicates == 1


def test_email_types_and_company_domain(rules: PrepareRules) -> None:
    out = _prepare(
        rules,
        email=["ana@eu.acme.co.uk", "bob@gmail.com", "x@mailinator.com", "sales@acme.io"],
        website=[None, "https://www.bobsco.de/about", None, None],
    )
    leads = {r["email"]: r for r in out.leads.to_dicts()}
    assert leads["ana@eu.acme.co.uk"]["email_type"] == "business"
    assert leads["ana@eu.acme.co.uk"]["company_domain"] == "acme.co.uk"
    assert leads["bob@gmail.com"]["email_type"] == "free"
    assert leads["bob@gmail.com"]["company_domain"] == "bobsco.de"
    assert leads["x@mailinator.com"]["email_type"] == "disposable"
    assert leads["x@mailinator.com"]["company_domain"] is None
    assert leads["sales@acme.io"]["email_type"] == "role"


def test_countries_titles_seniority_and_function(rules: PrepareRules) -> None:
    out = _prepare(
        rules,
        email=["a@x.io", "b@x.io", "c@x.io", "d@x.io"],
        country=["United Kingdom", "usa", "DEU", "Atlantis"],
        job_title=["VP of Revenue Operations", "Chief Executive Officer", "Senior Software Engineer", None],
    )
    assert out.leads["country"].to_list() == ["GB", "US", "DE", None]
    assert out.leads["seniority"].to_list() == ["vp", "c_level", "individual", None]
    assert out.leads["function"].to_list() == ["revops", "executive", "engineering", None]


def test_fast_email_path_agrees_with_email_validator() -> None:
    """Addresses the vectorised path accepts must be exactly what the library accepts, unchanged."""
    import random

    from email_validator import EmailNotValidError, validate_email

    from connectors.prepare.emails import check_emails

    tricky = [
        "a@b.co",
        "a.b@c.io",
        "a..b@c.io",
        ".a@c.io",
        "a.@c.io",
        "a@-c.io",
        "a@c-.io",
        "a@c.i",
        "a@c.123",
        "a@localhost.localhost",
        "a@x.test",
        "a@x.onion",
        "a@xn--bcher-kva.com",
        "a+b@c.io",
        "a!#$%&'*+/=?^_`{|}~-@c.io",
        "a@c..io",
        "x" * 65 + "@c.io",
        "a@" + "b" * 64 + ".com",
        "a@sub.c.co.uk",
        "o'neill@c.ie",
        "a@c.museum",
    ]
    rng = random.Random(11)
    alphabet = "ab.-_+@1"
    tricky += ["".join(rng.choice(alphabet) for _ in range(rng.randint(3, 12))) + ".io" for _ in range(3000)]
    result = check_emails(pl.Series(tricky))
    for row in result.iter_rows(named=True):
        try:
            expected: str | None = validate_email(row["email_in"], check_deliverability=False).normalized.lower()
        except EmailNotValidError:
            expected = None
        assert row["email_norm"] == expected, row["email_in"]


def test_the_sources_own_extra_columns_are_the_signals_and_nothing_leadq_derives(rules: PrepareRules) -> None:
    prepared = _prepare(
        rules, email=["ana@acme.io", "bo@beta.io"], job_title=["VP Sales", "CTO"], plan=["pro", None], seats=["12", "3"]
    )
    leads = prepared.leads.sort("email")
    assert {"seniority", "function", "email_type", "company_domain"} <= set(leads.columns)  # derived here...
    assert leads["_signals"].to_list() == ['{"plan":"pro","seats":"12"}', '{"plan":null,"seats":"3"}']  # ...not signals
    assert _prepare(rules, email=["cy@gamma.io"]).leads["_signals"].to_list() == [None]
