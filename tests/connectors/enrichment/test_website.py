from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from connectors.enrichment.website import WebsiteProvider, load_signatures
from connectors.http import ServicePolicy
from tests.conftest import REPO
from tests.fakes import FakeHttp, Reply, html

ORG = {
    "@context": "https://schema.org",
    "@graph": [
        {"@type": "WebSite", "name": "Acme site"},
        {
            "@type": ["Organization", "Corporation"],
            "name": "Acme Analytics Inc.",
            "industry": "Computer Software",
            "numberOfEmployees": {"@type": "QuantitativeValue", "minValue": 200, "maxValue": 500},
            "address": {"@type": "PostalAddress", "addressCountry": "United States"},
            "foundingDate": "2014-03-01",
            "sameAs": ["https://www.linkedin.com/company/acme-analytics/", "https://twitter.com/acme"],
        },
    ],
}
HOME = f"""<!doctype html><html><head><title>Acme — analytics for RevOps</title>
<meta name="description" content="Pipeline analytics for revenue teams.">
<meta property="og:site_name" content="Acme">
<script type="application/ld+json">{json.dumps(ORG)}</script>
<script src="https://js.hs-scripts.com/123.js"></script><script src="https://js.stripe.com/v3/"></script>
</head><body><a href="/about">About us</a></body></html>"""


def _provider(fake: FakeHttp, **kwargs: object) -> WebsiteProvider:
    options: dict[str, object] = {
        "url_template": fake.url + "/sites/{domain}/",
        "policy": ServicePolicy(timeout_s=2, rate_per_s=0, retries=0, breaker_after=3),
        "signatures": load_signatures(REPO / "config" / "technologies.yaml"),
        "allow_private_networks": True,
    }
    return WebsiteProvider(**{**options, **kwargs})  # type: ignore[arg-type]


def test_json_ld_open_graph_and_technologies(fake_http: FakeHttp) -> None:
    fake_http.routes["/sites/acme.io/"] = html(HOME)
    found = _provider(fake_http).lookup("acme.io")
    assert found.status == "ok"
    values = {k: v.value for k, v in found.fields.items()}
    assert values["company_legal_name"] == "Acme Analytics Inc."
    assert values["industry"] == "computer software"
    assert values["employees"] == 350
    assert values["company_country"] == "US"
    assert values["founded_year"] == 2014
    assert values["linkedin_url"] == "linkedin.com/company/acme-analytics"
    assert values["description"] == "Pipeline analytics for revenue teams."
    assert values["technologies"] == "HubSpot, Stripe"
    assert found.fields["employees"].method == "json-ld numberOfEmployees"
    assert fake_http.hits("/about") == 0  # the homepage had the size


def test_about_page_is_read_when_the_homepage_lacks_the_company(fake_http: FakeHttp) -> None:
    fake_http.routes["/sites/beta.io/"] = html(
        '<title>Beta</title><meta property="og:site_name" content="Beta"><a href="/about">About</a>'
    )
    about = {"@type": "Organization", "name": "Beta GmbH", "numberOfEmployees": 42, "address": {"addressCountry": "DE"}}
    fake_http.routes["/about"] = html(f'<script type="application/ld+json">{json.dumps(about)}</script>')
    values = {k: v.value for k, v in _provider(fake_http).lookup("beta.io").fields.items()}
    assert (values["company_legal_name"], values["employees"], values["company_country"]) == ("Beta GmbH", 42, "DE")


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (html("<html><head><title>x</title><script type='application/ld+json'>{not json</script>"), "nothing recognis"),
        (html("\x00\x01 garbage <<<>>> <meta content=>"), "nothing recognisable"),
        (Reply(200, b"%PDF-1.4 ...", {"Content-Type": "application/pdf"}), "no HTML page"),
        (html("gone", status=410), "HTTP 410"),
    ],
)
def test_garbage_and_non_html_pages_are_not_found_with_the_reason(
    fake_http: FakeHttp, reply: Reply, reason: str
) -> None:
    fake_http.routes["/sites/odd.io/"] = reply
    found = _provider(fake_http).lookup("odd.io")
    assert (found.status, found.fields) == ("not_found", {})
    assert reason in (found.reason or "")


def test_huge_page_is_read_only_up_to_the_cap(fake_http: FakeHttp) -> None:
    head = '<head><meta property="og:site_name" content="Big Co"></head>'
    tail = f'<script type="application/ld+json">{json.dumps(ORG)}</script>'  # beyond the cap
    fake_http.routes["/sites/big.io/"] = html(head + "<p>" + "x" * 3_000_000 + "</p>" + tail)
    capped = _provider(fake_http, max_bytes=20_000).lookup("big.io")
    assert capped.fields["company_legal_name"].value == "Big Co"
    assert "employees" not in capped.fields  # the JSON-LD past the cap was never read
    whole = _provider(fake_http, max_bytes=4_000_000).lookup("big.io")
    assert whole.fields["employees"].value == 350  # the same page, read whole, has it


def test_slow_site_times_out(fake_http: FakeHttp) -> None:
    fake_http.routes["/sites/slow.io/"] = Reply(200, "<title>late</title>", {"Content-Type": "text/html"}, delay_s=2)
    policy = ServicePolicy(timeout_s=0.3, rate_per_s=0, retries=0)
    started = time.perf_counter()
    found = _provider(fake_http, policy=policy).lookup("slow.io")
    assert found.status == "error" and "timed out" in (found.reason or "")
    assert time.perf_counter() - started < 1.5


def test_a_body_shorter_than_its_content_length_is_not_found_with_the_reason(fake_http: FakeHttp) -> None:
    page = '<meta property="og:site_name" content="Short Co">'
    fake_http.routes["/sites/short.io/"] = Reply(200, page, {"Content-Type": "text/html"}, declared_length=50_000)
    found = _provider(fake_http).lookup("short.io")
    assert found.status == "not_found" and found.cacheable  # cached: the next run does not fetch it again
    assert "broke off" in (found.reason or "") and "short.io" in (found.reason or "")


def test_a_site_that_drips_its_page_is_cut_off_at_the_deadline(fake_http: FakeHttp) -> None:
    fake_http.routes["/sites/drip.io/"] = Reply(
        200, "<title>" + "x" * 200 + "</title>", {"Content-Type": "text/html"}, drip_s=0.1
    )
    policy = ServicePolicy(timeout_s=5, rate_per_s=0, retries=0, deadline_s=1.0)
    provider = _provider(fake_http, policy=policy)
    started = time.perf_counter()
    found = provider.lookup("drip.io")
    elapsed = time.perf_counter() - started
    assert found.status == "not_found" and "deadline of 1 s" in (found.reason or "")
    assert 0.9 < elapsed < 3  # 20 s to send it all, and each read was under the 5 s timeout
    assert provider.client.stats.time_s == pytest.approx(elapsed, abs=0.3)


def test_retries_of_a_slow_site_stop_at_the_deadline(fake_http: FakeHttp) -> None:
    fake_http.routes["/sites/slow.io/"] = Reply(200, "<title>late</title>", {"Content-Type": "text/html"}, delay_s=3)
    policy = ServicePolicy(timeout_s=0.5, rate_per_s=0, retries=3, deadline_s=1.2)
    started = time.perf_counter()
    found = _provider(fake_http, policy=policy).lookup("slow.io")
    assert found.status == "error"
    assert time.perf_counter() - started < 2.5  # 4 tries of 0.5 s and their backoff would take 5.5 s
    assert 1 <= fake_http.hits("/sites/slow.io/") <= 2


def test_a_time_budget_per_run_skips_the_site_once_spent(fake_http: FakeHttp) -> None:
    fake_http.routes["/sites/slow.io/"] = Reply(200, "<title>late</title>", {"Content-Type": "text/html"}, delay_s=1)
    policy = ServicePolicy(timeout_s=0.3, rate_per_s=0, retries=0, time_budget_s=0.5)
    provider = _provider(fake_http, policy=policy)
    assert [provider.lookup(d).status for d in ("slow.io", "slow.io", "slow.io")] == ["error", "error", "skipped"]
    assert "time budget of 0.5 s spent" in (provider.off_reason() or "")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('<meta charset="utf-8"><meta property="og:site_name" content="Müller Straße Überseé GmbH">', "text/html"),
        (
            '<meta property="og:site_name" content="Müller Straße Überseé GmbH">'
            + "<p>Grüße aus Köln, schöne Straße</p>" * 20,
            "text/html",
        ),
        (
            '<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'
            '<meta property="og:site_name" content="Müller Straße Überseé GmbH">',
            "text/html",
        ),
    ],
    ids=["meta-charset-utf8", "undeclared-utf8", "meta-windows-1252"],
)
def test_pages_without_a_charset_header_decode_without_mojibake(
    fake_http: FakeHttp, body: str, content_type: str
) -> None:
    encoding = "windows-1252" if "1252" in body else "utf-8"
    fake_http.routes["/sites/muller.de/"] = Reply(200, body.encode(encoding), {"Content-Type": content_type})
    found = _provider(fake_http).lookup("muller.de")
    assert found.fields["company_legal_name"].value == "Müller Straße Überseé GmbH"


def test_the_charset_header_wins_over_a_wrong_guess(fake_http: FakeHttp) -> None:
    body = '<meta property="og:site_name" content="Société Générale">'.encode("iso-8859-1")
    fake_http.routes["/sites/sg.fr/"] = Reply(200, body, {"Content-Type": "text/html; charset=ISO-8859-1"})
    assert _provider(fake_http).lookup("sg.fr").fields["company_legal_name"].value == "Société Générale"


def test_loopback_is_refused_by_default_with_the_reason(fake_http: FakeHttp) -> None:
    fake_http.routes["/sites/acme.io/"] = html(HOME)
    found = _provider(fake_http, allow_private_networks=False).lookup("acme.io")
    assert found.status == "refused"
    assert "127.0.0.1" in (found.reason or "") and "allow_private_networks" in (found.reason or "")
    assert fake_http.seen == []  # nothing was fetched


def test_redirect_to_a_metadata_address_is_refused(fake_http: FakeHttp) -> None:
    fake_http.routes["/sites/evil.io/"] = Reply(302, "", {"Location": "http://169.254.169.254/latest/meta-data/"})
    found = _provider(fake_http).lookup("evil.io")
    assert found.status == "refused" and "169.254.169.254" in (found.reason or "")


def test_redirect_loops_stop_at_the_limit(fake_http: FakeHttp) -> None:
    fake_http.routes["/sites/loop.io/"] = Reply(302, "", {"Location": "/sites/loop.io/"})
    found = _provider(fake_http, max_redirects=2).lookup("loop.io")
    assert found.status == "refused" and "more than 2 redirects" in (found.reason or "")
    assert fake_http.hits("/sites/loop.io/") == 3


def test_no_network_is_detected_once_and_skips_the_rest(fake_http: FakeHttp) -> None:
    asked: list[object] = []

    def offline(host: object, *_args: object, **_kwargs: object) -> None:
        asked.append(host)
        raise socket.gaierror(-2, "Name or service not known")  # what an offline resolver answers

    provider = _provider(fake_http, probe_host="probe.example", resolve=offline)
    assert provider.lookup("acme.io").status == "skipped"
    assert provider.lookup("beta.io").status == "skipped"
    assert fake_http.seen == [] and asked == ["probe.example"]


def test_signature_file_errors_name_the_file(tmp_path: Path) -> None:
    from connectors.errors import ConfigError

    path = tmp_path / "technologies.yaml"
    path.write_text("- {name: X, category: y, pattern: '(unclosed'}\n")
    with pytest.raises(ConfigError, match=str(path)):
        load_signatures(path)


def test_an_endless_error_page_is_not_read_past_its_first_lines(fake_http: FakeHttp) -> None:
    import tracemalloc

    fake_http.routes["/sites/huge.io/"] = Reply(403, b"denied " * 5_000_000, {"Content-Type": "text/html"})  # 35 MB
    tracemalloc.start()
    try:
        found = _provider(fake_http).lookup("huge.io")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found.status == "not_found" and "HTTP 403: denied denied" in (found.reason or "")
    assert peak < 5_000_000  # the 35 MB body was never held
