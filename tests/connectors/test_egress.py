"""What a stranger's URL may make leadq connect to: the parser, the address policy and the pinned connection."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from connectors.egress import EgressRefused, parse_public_url, refusal
from connectors.enrichment.website import WebsiteProvider
from connectors.http import ServicePolicy
from tests import loopback_only
from tests.fakes import FakeHttp, Reply, html

PAGE = html('<meta property="og:site_name" content="Reached">')


def _provider(template: str, allow_private: bool, **kwargs: Any) -> WebsiteProvider:
    return WebsiteProvider(
        url_template=template,
        policy=ServicePolicy(timeout_s=2, rate_per_s=0, retries=0),
        signatures=[],
        allow_private_networks=allow_private,
        fetch_about=False,
        **kwargs,
    )


@pytest.mark.parametrize(
    "spelling",
    [
        "169.254.169.254",
        "::ffff:169.254.169.254",  # IPv4-mapped
        "::ffff:a9fe:a9fe",
        "::169.254.169.254",  # IPv4-compatible
        "64:ff9b::169.254.169.254",  # NAT64
        "64:ff9b:1::a9fe:a9fe",  # local-use NAT64
        "2002:a9fe:a9fe::1",  # 6to4
        "2001:0:4136:e378:8000:63bf:5601:5601",  # Teredo whose client is 169.254.169.254 (obfuscated)
        "fd00:ec2::254",
        "100.100.100.200",
        "169.254.170.2",
        "fe80::1",
    ],
)
def test_metadata_is_refused_in_every_spelling_even_with_private_networks_allowed(spelling: str) -> None:
    why = refusal(ipaddress.ip_address(spelling), allow_private_networks=True)
    assert why is not None and "always refused" in why


@pytest.mark.parametrize(
    "spelling",
    [
        "10.0.0.1",
        "127.0.0.1",
        "100.64.0.1",
        "192.0.0.8",
        "192.168.1.1",
        "::1",
        "fc00::1",
        "::ffff:10.0.0.1",
        "2002:0a00:0001::1",
        "64:ff9b::10.1.2.3",
        "198.18.0.1",
        "240.0.0.1",
        "0.0.0.0",
        "224.0.0.1",
    ],
)
def test_non_public_addresses_are_refused_by_default(spelling: str) -> None:
    assert refusal(ipaddress.ip_address(spelling), allow_private_networks=False) is not None


@pytest.mark.parametrize("spelling", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:93.184.216.34"])
def test_public_addresses_are_allowed(spelling: str) -> None:
    assert refusal(ipaddress.ip_address(spelling), allow_private_networks=False) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080\\@93.184.216.34/",
        "http://user:pw@93.184.216.34/",
        "http://93.184.216.34@127.0.0.1/",
        "file:///etc/passwd",
        "gopher://93.184.216.34/",
        "http:///nohost",
        "http://exa mple.com/",
        "http://example.com/\x00",
    ],
)
def test_urls_that_parsers_read_differently_are_refused(url: str) -> None:
    with pytest.raises(EgressRefused):
        parse_public_url(url)


def test_the_backslash_userinfo_trick_is_refused_in_the_template_and_in_a_redirect(fake_http: FakeHttp) -> None:
    fake_http.routes["/"] = PAGE
    trick = f"http://127.0.0.1:{fake_http.port}\\@93.184.216.34/"
    found = _provider(trick + "{domain}", allow_private=False).lookup("acme.io")
    assert found.status == "refused" and "backslash" in (found.reason or "")
    fake_http.routes["/sites/evil.io/"] = Reply(302, "", {"Location": trick})
    found = _provider(fake_http.url + "/sites/{domain}/", allow_private=True).lookup("evil.io")
    assert found.status == "refused" and "backslash" in (found.reason or "")
    assert [s.path for s in fake_http.seen] == ["/sites/evil.io/"]  # the redirect target was never fetched


@pytest.mark.parametrize(
    "host", ["[::ffff:169.254.169.254]", "2852039166", "0xa9fea9fe", "0251.0376.0251.0376", "[64:ff9b::a9fe:a9fe]"]
)
def test_metadata_urls_in_any_spelling_are_refused_before_connecting(host: str) -> None:
    found = _provider(f"http://{host}/" + "{domain}", allow_private=True).lookup("acme.io")
    assert found.status == "refused" and "always refused" in (found.reason or "")


def test_a_name_resolving_to_a_private_address_is_refused(fake_http: FakeHttp) -> None:
    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        return socket.getaddrinfo("127.0.0.1", port, *args, **kwargs)

    fake_http.routes["/"] = PAGE
    found = _provider(f"http://intranet.acme.test:{fake_http.port}/", allow_private=False, resolve=resolve).lookup("x")
    assert found.status == "refused" and "intranet.acme.test resolves to 127.0.0.1" in (found.reason or "")
    assert fake_http.seen == []


def test_dns_rebinding_gains_nothing_the_connection_goes_to_the_checked_address(fake_http: FakeHttp) -> None:
    """The first answer is public and passes the check; a second lookup would give loopback. There is none."""
    answers = ["93.184.216.34", "127.0.0.1"]
    asked: list[str] = []

    def rebinding(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        asked.append(host)
        return socket.getaddrinfo(answers[min(len(asked), 2) - 1], port, *args, **kwargs)

    fake_http.routes["/"] = PAGE
    found = _provider(f"http://rebind.test:{fake_http.port}/", allow_private=False, resolve=rebinding).lookup("x")
    assert found.status == "error"  # the checked public address is out of reach from the test suite
    assert asked == ["rebind.test"] and fake_http.seen == []
    assert loopback_only.escapes == [f"connect to ('93.184.216.34', {fake_http.port})"]
    loopback_only.escapes.clear()  # the suite's guard saw exactly the pinned connect, and refused it
