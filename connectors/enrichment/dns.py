"""The company's mail provider from its MX records (dnspython), with short timeouts.

If the resolver cannot answer for a domain that certainly has MX records (the probe)
at the start of a run, DNS is treated as unreachable for the whole run: one quick
failure, not one per domain. Repeated failures later trip a breaker the same way.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from connectors.enrichment.base import Found, Lookup

if TYPE_CHECKING:
    import dns.resolver


@dataclass
class DnsProvider:
    providers: dict[str, list[str]]  # email provider name -> MX host suffixes
    timeout_s: float = 2.0
    nameservers: list[str] = field(default_factory=list)
    port: int = 53
    probe_domain: str = "gmail.com"
    breaker_after: int = 5
    name: str = "dns"
    fields: frozenset[str] = frozenset({"email_provider"})

    def __post_init__(self) -> None:
        self._made: dns.resolver.Resolver | None = None
        self._calls = 0
        self._lock = threading.Lock()
        self._offline: str | None = None
        self._probed = False
        self._failures = 0

    @property
    def _resolver(self) -> dns.resolver.Resolver:
        """Made on first use: dnspython takes 0.2 s to import, and a run with nothing new needs none."""
        import dns.resolver

        if self._made is None:
            self._made = dns.resolver.Resolver(configure=not self.nameservers)
            if self.nameservers:
                self._made.nameservers = list(self.nameservers)
            self._made.port = self.port
            self._made.lifetime = self.timeout_s
            self._made.timeout = self.timeout_s
        return self._made

    def usage(self) -> tuple[int, float]:
        return self._calls, 0.0

    def off_reason(self) -> str | None:
        with self._lock:
            if not self._probed:
                self._probed = True
                self._offline = self._probe()
        return self._offline

    def lookup(self, domain: str) -> Lookup:
        if self.off_reason():
            return Lookup("skipped", reason=self._offline)
        import dns.exception
        import dns.resolver

        with self._lock:
            self._calls += 1
        try:
            answer = self._resolver.resolve(domain, "MX")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            self._failures = 0
            return Lookup("ok", {"email_provider": Found("none", 0.95, "dns MX: none")})
        except (dns.exception.DNSException, OSError) as exc:
            with self._lock:
                self._failures += 1
                if self._failures >= self.breaker_after and not self._offline:
                    self._offline = f"DNS skipped for this run after {self._failures} failures in a row"
            return Lookup("error", reason=f"MX {domain}: {type(exc).__name__}")
        self._failures = 0
        hosts = sorted(str(r.exchange).rstrip(".").lower() for r in answer)
        provider = next(
            (name for name, suffixes in self.providers.items() for h in hosts for s in suffixes if h.endswith(s)),
            "other",
        )
        return Lookup("ok", {"email_provider": Found(provider, 0.95, f"dns MX: {hosts[0] if hosts else '-'}")})

    def _probe(self) -> str | None:
        if not self.probe_domain:
            return None
        import dns.exception

        try:
            self._resolver.resolve(self.probe_domain, "MX")
        except (dns.exception.DNSException, OSError) as exc:  # NXDOMAIN for a known domain: a filtered resolver
            return f"DNS unreachable this run (probe MX {self.probe_domain}: {type(exc).__name__})"
        return None
