"""MX look-ups against a real DNS server on 127.0.0.1 (dnspython answers the wire protocol)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from connectors.enrichment.dns import DnsProvider

ZONE = {
    "gmail.com.": ["5 gmail-smtp-in.l.google.com."],
    "acme.io.": ["1 aspmx.l.google.com.", "5 alt1.aspmx.l.google.com."],
    "contoso.com.": ["0 contoso-com.mail.protection.outlook.com."],
    "selfhosted.org.": ["10 mail.selfhosted.org."],
}
PROVIDERS = {"google_workspace": ["google.com"], "microsoft_365": ["outlook.com"]}


@pytest.fixture
def dns_server() -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                wire, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(wire)
            reply = dns.message.make_response(query)
            name = str(query.question[0].name)
            if name in ZONE:
                reply.answer.append(dns.rrset.from_text(name, 300, "IN", "MX", *ZONE[name]))
            else:
                reply.set_rcode(dns.rcode.NXDOMAIN)
            sock.sendto(reply.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join()
    sock.close()


def _provider(port: int, **kwargs: object) -> DnsProvider:
    return DnsProvider(PROVIDERS, **{"timeout_s": 1.0, "nameservers": ["127.0.0.1"], "port": port, **kwargs})  # type: ignore[arg-type]


def test_mx_records_name_the_email_provider(dns_server: int) -> None:
    dns_provider = _provider(dns_server)
    found = {
        d: dns_provider.lookup(d).fields["email_provider"].value
        for d in ("acme.io", "contoso.com", "selfhosted.org", "nomail.net")
    }
    assert found == {
        "acme.io": "google_workspace",
        "contoso.com": "microsoft_365",
        "selfhosted.org": "other",
        "nomail.net": "none",
    }
    assert "aspmx.l.google.com" in dns_provider.lookup("acme.io").fields["email_provider"].method


def test_unreachable_dns_is_found_once_and_skipped_quickly() -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))  # receives, never answers
    dns_provider = _provider(silent.getsockname()[1], timeout_s=0.3)
    results = [dns_provider.lookup(f"c{i}.com") for i in range(20)]
    silent.close()
    assert {r.status for r in results} == {"skipped"}
    assert "DNS unreachable" in (results[0].reason or "")
    assert dns_provider.usage()[0] == 0
