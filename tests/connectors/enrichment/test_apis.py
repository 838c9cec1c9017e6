"""Apollo and People Data Labs against local servers that answer as their docs describe."""

from __future__ import annotations

import time

from connectors.enrichment.apollo import ApolloProvider
from connectors.enrichment.pdl import PdlProvider
from connectors.http import ServicePolicy
from tests.fakes import FakeHttp, Seen, json_reply

APOLLO_ORG = {
    "organization": {
        "id": "5e66b6381e05b4008c8331b8",
        "name": "Acme Analytics",
        "website_url": "http://www.acme.io",
        "linkedin_url": "http://www.linkedin.com/company/acme-analytics",
        "founded_year": 2014,
        "industry": "Computer Software",
        "estimated_num_employees": 310,
        "country": "United States",
        "short_description": "Pipeline analytics.",
        "technology_names": ["Stripe", "Salesforce"],
    }
}
PDL_COMPANY = {
    "status": 200,
    "name": "acme analytics",
    "display_name": "Acme Analytics",
    "size": "201-500",
    "employee_count": 310,
    "founded": 2014,
    "industry": "computer software",
    "location": {"name": "boston, massachusetts, united states", "country": "united states"},
    "linkedin_url": "linkedin.com/company/acme-analytics",
    "likelihood": 8,
}
FAST = ServicePolicy(timeout_s=2, rate_per_s=0, retries=2, max_retry_after_s=5, breaker_after=3, cost_per_call=1)


def _apollo(fake: FakeHttp, policy: ServicePolicy = FAST) -> ApolloProvider:
    return ApolloProvider(fake.url, "test-key", policy)


def _apollo_route(seen: Seen):  # type: ignore[no-untyped-def]
    if seen.headers.get("x-api-key") != "test-key":
        return json_reply({"error": "Invalid access credentials."}, 401)
    return json_reply(APOLLO_ORG if seen.query.get("domain") == ["acme.io"] else {"organization": None})


def test_apollo_enrichment_fields_key_header_and_credits(fake_http: FakeHttp) -> None:
    fake_http.routes["/api/v1/organizations/enrich"] = _apollo_route
    apollo = _apollo(fake_http)
    found = apollo.lookup("acme.io")
    values = {k: v.value for k, v in found.fields.items()}
    assert values["employees"] == 310 and values["industry"] == "computer software"
    assert values["linkedin_url"] == "linkedin.com/company/acme-analytics"
    assert values["technologies"] == "Salesforce, Stripe"
    assert apollo.lookup("nobody.io").status == "not_found"
    assert apollo.usage() == (2, 2.0)


def test_bad_key_is_an_error_not_a_retry(fake_http: FakeHttp) -> None:
    fake_http.routes["/api/v1/organizations/enrich"] = _apollo_route
    found = ApolloProvider(fake_http.url, "wrong", FAST).lookup("acme.io")
    assert found.status == "error" and "HTTP 401" in (found.reason or "")
    assert fake_http.hits("/api/v1/organizations/enrich") == 1


def test_429_waits_for_retry_after_then_succeeds(fake_http: FakeHttp) -> None:
    limited = json_reply({"error": "rate limited"}, 429, **{"Retry-After": "1"})
    fake_http.routes["/api/v1/organizations/enrich"] = [limited, json_reply(APOLLO_ORG)]
    started = time.perf_counter()
    found = _apollo(fake_http).lookup("acme.io")
    assert found.status == "ok"
    assert time.perf_counter() - started >= 1.0
    assert fake_http.hits("/api/v1/organizations/enrich") == 2


def test_500_storm_trips_the_breaker_and_the_run_carries_on(fake_http: FakeHttp) -> None:
    fake_http.routes["/api/v1/organizations/enrich"] = json_reply({"error": "boom"}, 500)
    apollo = _apollo(fake_http, ServicePolicy(timeout_s=2, rate_per_s=0, retries=1, breaker_after=3))
    statuses = [apollo.lookup(f"c{i}.io").status for i in range(6)]
    assert statuses == ["error"] * 3 + ["skipped"] * 3
    assert fake_http.hits("/api/v1/organizations/enrich") == 3 * 2  # each failed call tried twice, then none
    assert "3 failures in a row" in (apollo.lookup("x.io").reason or "")


def test_budget_stops_paid_calls(fake_http: FakeHttp) -> None:
    fake_http.routes["/api/v1/organizations/enrich"] = _apollo_route
    apollo = _apollo(fake_http, ServicePolicy(timeout_s=2, rate_per_s=0, cost_per_call=1, budget=2))
    statuses = [apollo.lookup("acme.io").status for _ in range(3)]
    assert statuses == ["ok", "ok", "skipped"]
    assert apollo.usage() == (2, 2.0)


def test_rate_limit_spaces_requests(fake_http: FakeHttp) -> None:
    fake_http.routes["/api/v1/organizations/enrich"] = _apollo_route
    apollo = _apollo(fake_http, ServicePolicy(timeout_s=2, rate_per_s=5))
    started = time.perf_counter()
    for _ in range(4):
        apollo.lookup("acme.io")
    assert time.perf_counter() - started >= 0.55  # 4 requests at 5/s: 3 gaps of 0.2 s


def test_pdl_match_likelihood_and_unbilled_404(fake_http: FakeHttp) -> None:
    def route(seen: Seen):  # type: ignore[no-untyped-def]
        if seen.query.get("website") == ["acme.io"]:
            return json_reply(PDL_COMPANY)
        return json_reply({"status": 404, "error": {"type": "not_found", "message": "No records were found"}}, 404)

    fake_http.routes["/v5/company/enrich"] = route
    pdl = PdlProvider(fake_http.url, "test-key", FAST)
    found = pdl.lookup("acme.io")
    assert found.fields["employees"].value == 310
    assert found.fields["employees"].confidence == 0.8
    assert found.fields["company_country"].value == "united states"
    assert pdl.lookup("nobody.io").status == "not_found"
    assert pdl.usage() == (2, 1.0)  # two calls, one billed
    assert all(s.headers.get("x-api-key") == "test-key" for s in fake_http.seen)


def test_rolling_window_never_starts_more_than_its_limit(fake_http: FakeHttp) -> None:
    from connectors.http import ServiceClient

    fake_http.routes["/ping"] = json_reply({"ok": True})
    client = ServiceClient("crm", ServicePolicy(timeout_s=2, rate_per_s=0, window_requests=5, window_s=0.5))
    started = time.perf_counter()
    for _ in range(12):
        assert client.get(fake_http.url + "/ping").status_code == 200
    assert time.perf_counter() - started >= 1.0  # 12 requests at 5 per 0.5 s need two full windows
    assert client.stats.calls == 12
