"""Company facts from its own website: title, meta and Open Graph tags, schema.org
`Organization` JSON-LD, social links and technology signatures.

Bounded (size cap, timeout, redirect limit, HTML only) and SSRF-safe: every host,
also after each redirect, is resolved first and private, loopback, link-local and
reserved addresses are refused unless `allow_private_networks` is set. Cloud
metadata addresses are refused always. (A host that changes its DNS answer between
the check and the connection is not caught; use an egress proxy for that.)
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import polars as pl
from bs4 import BeautifulSoup
from pydantic import BaseModel, ValidationError

from connectors.enrichment.base import FIELDS, Found, Lookup
from connectors.errors import ConfigError, FatalError, RetriableError
from connectors.http import ProviderSkipped, ServiceClient, ServicePolicy
from connectors.prepare.people import country_codes
from connectors.settings import load_yaml_list, validation_message

METADATA_ADDRESSES = {"169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254"}
HTML_TYPES = ("text/html", "application/xhtml+xml")
ORGANIZATION_TYPES = {
    "organization",
    "corporation",
    "localbusiness",
    "onlinebusiness",
    "ngo",
    "educationalorganization",
}
SOCIAL = {"linkedin": "linkedin.com/company/", "twitter": "twitter.com/", "x": "x.com/", "github": "github.com/"}


class Signature(BaseModel):
    name: str
    category: str
    pattern: str


def load_signatures(path: Path) -> list[Signature]:
    raw = load_yaml_list(path)
    try:
        signatures = [Signature.model_validate(item) for item in raw]
        for s in signatures:
            re.compile(s.pattern)
    except ValidationError as exc:
        raise ConfigError(validation_message(exc, path)) from exc
    except re.error as exc:
        raise ConfigError(f"{path}: a pattern is not a valid regular expression: {exc}") from exc
    return signatures


class Refused(Exception):
    """The URL points somewhere leadq must not fetch."""


class Unresolvable(Exception):
    """The host has no address: the company has no website there."""


@dataclass
class WebsiteProvider:
    url_template: str
    policy: ServicePolicy
    signatures: list[Signature]
    max_bytes: int = 2_000_000
    max_redirects: int = 3
    allow_private_networks: bool = False
    fetch_about: bool = True
    country_aliases: dict[str, str] = field(default_factory=dict)
    probe_host: str = ""
    name: str = "website"
    fields: frozenset[str] = frozenset(FIELDS) - {"email_provider"}

    def __post_init__(self) -> None:
        self.client = ServiceClient(self.name, self.policy)
        self._compiled = [(s.name, re.compile(s.pattern, re.IGNORECASE)) for s in self.signatures]
        self._probe_lock = threading.Lock()
        self._probed = False

    def _probe(self) -> None:
        """Once per run: if even the probe host does not resolve, there is no network; stop here."""
        with self._probe_lock:
            if self._probed:
                return
            self._probed = True
            if not self.probe_host:
                return
            try:
                socket.getaddrinfo(self.probe_host, 443, proto=socket.IPPROTO_TCP)
            except (socket.gaierror, OSError) as exc:
                self.client.skip(f"no network: probe host {self.probe_host} does not resolve ({exc})")

    def usage(self) -> tuple[int, float]:
        return self.client.stats.calls, self.client.stats.cost

    def off_reason(self) -> str | None:
        self._probe()
        return self.client.stats.open_reason

    def lookup(self, domain: str) -> Lookup:
        self._probe()
        if self.client.stats.open_reason:
            return Lookup("skipped", reason=f"website: skipped for this run ({self.client.stats.open_reason})")
        url = self.url_template.format(domain=domain)
        try:
            final_url, html = self._fetch(url)
        except Unresolvable as exc:
            return Lookup("not_found", reason=str(exc))
        except Refused as exc:
            return Lookup("refused", reason=str(exc))
        except ProviderSkipped as exc:
            return Lookup("skipped", reason=str(exc))
        except FatalError as exc:  # a 4xx page: there is no site to read
            return Lookup("not_found", reason=str(exc))
        except RetriableError as exc:
            return Lookup("error", reason=str(exc))
        if html is None:
            return Lookup("not_found", reason=f"{url}: no HTML page")
        soup = BeautifulSoup(html, "html.parser")
        fields = self._extract(soup, html)
        if self.fetch_about and "employees" not in fields:
            about = _about_link(soup, final_url)
            if about:
                try:
                    _, about_html = self._fetch(about)
                except (Refused, Unresolvable, RetriableError, FatalError):
                    about_html = None
                if about_html:
                    for name, value in self._extract(BeautifulSoup(about_html, "html.parser"), about_html).items():
                        if name not in fields or fields[name].confidence < value.confidence:
                            fields[name] = value
        return Lookup("ok", fields) if fields else Lookup("not_found", reason=f"{final_url}: nothing recognisable")

    # --- fetching -----------------------------------------------------------------

    def _fetch(self, url: str) -> tuple[str, str | None]:
        for _ in range(self.max_redirects + 1):
            self._check(url)
            response = self.client.get(url, allow_redirects=False, stream=True)
            if response.is_redirect and "location" in response.headers:
                url = urljoin(url, response.headers["location"])
                response.close()
                continue
            if response.status_code != 200:
                response.close()
                return url, None
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind not in HTML_TYPES:
                response.close()
                return url, None
            return url, _read_capped(response, self.max_bytes)
        raise Refused(f"{url}: more than {self.max_redirects} redirects")

    def _check(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Refused(f"{url}: only http(s) URLs with a host are fetched")
        try:
            infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError) as exc:
            raise Unresolvable(f"{parts.hostname}: does not resolve ({exc})") from exc
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if str(address) in METADATA_ADDRESSES:
                raise Refused(f"{parts.hostname} resolves to {address}, a cloud metadata address; refused")
            private = (
                address.is_private or address.is_loopback or address.is_link_local
                or address.is_reserved or address.is_multicast or address.is_unspecified
            )  # fmt: skip
            if private and not self.allow_private_networks:
                raise Refused(
                    f"{parts.hostname} resolves to {address}, a private or loopback address; refused "
                    "(enrichment.website.allow_private_networks = false)"
                )

    # --- extraction ---------------------------------------------------------------

    def _extract(self, soup: BeautifulSoup, html: str) -> dict[str, Found]:
        found: dict[str, Found] = {}

        def put(name: str, value: Any, confidence: float, method: str) -> None:
            if value not in (None, "", []) and (name not in found or found[name].confidence < confidence):
                found[name] = Found(value, confidence, method)

        meta = _meta(soup)
        put("company_legal_name", meta.get("og:site_name"), 0.6, "og:site_name")
        put("description", meta.get("description") or meta.get("og:description"), 0.6, "meta description")
        org = _organization(soup)
        if org:
            put("company_legal_name", _text(org.get("legalName") or org.get("name")), 0.8, "json-ld Organization")
            put("industry", _lower(_text(org.get("industry"))), 0.6, "json-ld Organization.industry")
            put("employees", _employees(org.get("numberOfEmployees")), 0.7, "json-ld numberOfEmployees")
            put("company_country", self._country(_address_country(org)), 0.7, "json-ld address")
            put("founded_year", _year(org.get("foundingDate")), 0.7, "json-ld foundingDate")
            put("description", _text(org.get("description")), 0.7, "json-ld description")
            for link in _as_list(org.get("sameAs")):
                if isinstance(link, str) and SOCIAL["linkedin"] in link:
                    put("linkedin_url", _clean_url(link), 0.8, "json-ld sameAs")
        for link in soup.find_all("a", href=True):
            href = str(link["href"])
            if SOCIAL["linkedin"] in href:
                put("linkedin_url", _clean_url(href), 0.7, "page link")
        technologies = sorted({name for name, pattern in self._compiled if pattern.search(html)})
        put("technologies", ", ".join(technologies), 0.9, "html signatures")
        return found

    def _country(self, value: str | None) -> str | None:
        if not value:
            return None
        codes = country_codes(pl.Series([value]), self.country_aliases)["country_code"]
        return codes[0] if len(codes) else None


def _read_capped(response: Any, limit: int) -> str:
    """At most `limit` bytes of the body, decoded leniently."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    response.close()
    body = b"".join(chunks)[:limit]
    return body.decode(response.encoding or "utf-8", errors="replace")


def _meta(soup: BeautifulSoup) -> dict[str, str]:
    out: dict[str, str] = {}
    for tag in soup.find_all("meta"):
        key = tag.get("property") or tag.get("name")
        if key and tag.get("content"):
            out.setdefault(str(key).lower(), str(tag["content"]).strip())
    if soup.title and soup.title.string:
        out.setdefault("title", soup.title.string.strip())
    return out


def _organization(soup: BeautifulSoup) -> dict[str, Any] | None:
    """The first schema.org Organization (or subtype) in any JSON-LD block, @graph included."""
    for script in soup.find_all("script", type="application/ld+json"):
        try:
            data = json.loads(script.string or "")
        except (json.JSONDecodeError, TypeError):
            continue
        for node in _nodes(data):
            types = {str(t).lower() for t in _as_list(node.get("@type"))}
            if types & ORGANIZATION_TYPES:
                return node
    return None


def _nodes(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, list):
        return [n for item in data for n in _nodes(item)]
    if isinstance(data, dict):
        return [data, *(_nodes(data["@graph"]) if "@graph" in data else [])]
    return []


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def _text(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("name")
    return str(value).strip() if value not in (None, "") else None


def _lower(value: str | None) -> str | None:
    return value.lower() if value else None


def _employees(value: Any) -> int | None:
    """A number, '120', or a QuantitativeValue with value or min/max (the midpoint)."""
    if isinstance(value, dict):
        if "value" in value:
            return _employees(value["value"])
        low, high = _employees(value.get("minValue")), _employees(value.get("maxValue"))
        return (low + high) // 2 if low and high else low or high
    try:
        return int(float(str(value).replace(",", "")))
    except (TypeError, ValueError):
        return None


def _address_country(org: dict[str, Any]) -> str | None:
    for address in _as_list(org.get("address")):
        if isinstance(address, dict) and address.get("addressCountry"):
            return _text(address["addressCountry"])
    return None


def _year(value: Any) -> int | None:
    match = re.match(r"\s*(\d{4})", str(value or ""))
    return int(match.group(1)) if match else None


def _clean_url(url: str) -> str:
    return re.sub(r"^https?://(www\.)?", "", url).rstrip("/")


def _about_link(soup: BeautifulSoup, base: str) -> str | None:
    """An 'about' page on the same host, when the homepage links one."""
    host = urlsplit(base).hostname
    for link in soup.find_all("a", href=True):
        target = urljoin(base, str(link["href"]))
        if urlsplit(target).hostname == host and re.search(r"/about(-us)?/?$", urlsplit(target).path, re.IGNORECASE):
            return target
    return None
