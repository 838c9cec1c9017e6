"""Company facts from its own website: title, meta and Open Graph tags, schema.org
`Organization` JSON-LD, social links and technology signatures.

Bounded: a size cap, a timeout per read, a total deadline per company (connect,
redirects, the about page, body and retries together), a redirect limit, HTML only.
SSRF-safe through `connectors.egress`: every URL (the template, each redirect, the
about link) is parsed once as the HTTP stack parses it, and every connection goes
to the address that was checked. Whatever a site sends (a short body, a drip, bytes
in an unknown charset, markup no parser likes) is that domain's "not found" with
the reason, never a failed run.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import polars as pl
import requests
import urllib3
from bs4 import BeautifulSoup, UnicodeDammit
from pydantic import BaseModel, ValidationError

from connectors.canonical.countries import country_codes
from connectors.egress import EgressRefused, EgressUnresolvable, Resolver, parse_public_url
from connectors.enrichment.base import FIELDS, Found, Lookup
from connectors.errors import ConfigError, FatalError, RetriableError
from connectors.http import Deadline, ProviderSkipped, ServiceClient, ServicePolicy
from connectors.settings import load_yaml_list, validation_message

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


class Unreadable(Exception):
    """The page could not be read to its end or parsed: the site's fault, not the run's."""


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
    resolve: Resolver = socket.getaddrinfo
    name: str = "website"
    fields: frozenset[str] = frozenset(FIELDS) - {"email_provider"}

    def __post_init__(self) -> None:
        self.client = ServiceClient(
            self.name,
            self.policy,
            pinned=True,
            allow_private_networks=self.allow_private_networks,
            resolve=self.resolve,
        )
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
                self.resolve(self.probe_host, 443, proto=socket.IPPROTO_TCP)
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
        with self.client.timed():
            return self._lookup(self.url_template.format(domain=domain), Deadline(self.policy.deadline_s))

    def _lookup(self, url: str, deadline: Deadline) -> Lookup:
        try:
            final_url, html = self._fetch(url, deadline)
            if html is None:
                return Lookup("not_found", reason=f"{url}: no HTML page")
            soup, fields = self._read(html)
        except EgressUnresolvable as exc:
            return Lookup("not_found", reason=str(exc))
        except EgressRefused as exc:
            return Lookup("refused", reason=str(exc))
        except Unreadable as exc:
            return Lookup("not_found", reason=str(exc))
        except ProviderSkipped as exc:
            return Lookup("skipped", reason=str(exc))
        except FatalError as exc:  # a 4xx page: there is no site to read
            return Lookup("not_found", reason=str(exc))
        except RetriableError as exc:
            return Lookup("error", reason=str(exc))
        if self.fetch_about and "employees" not in fields:
            about = _about_link(soup, final_url)
            if about:
                try:
                    _, about_html = self._fetch(about, deadline)
                    about_fields = self._read(about_html)[1] if about_html else {}
                except (Unreadable, RetriableError, FatalError):
                    about_fields = {}
                for name, value in about_fields.items():
                    if name not in fields or fields[name].confidence < value.confidence:
                        fields[name] = value
        return Lookup("ok", fields) if fields else Lookup("not_found", reason=f"{final_url}: nothing recognisable")

    def _read(self, html: str) -> tuple[BeautifulSoup, dict[str, Found]]:
        """The parsed page and its facts; markup no parser survives is Unreadable, never a crash."""
        try:
            soup = BeautifulSoup(html, "html.parser")
            return soup, self._extract(soup, html)
        except Exception as exc:  # hostile markup is data: any parser failure means "nothing to read here"
            raise Unreadable(f"the page could not be parsed ({type(exc).__name__}: {str(exc)[:200]})") from exc

    # --- fetching -----------------------------------------------------------------

    def fetch(
        self, url: str, deadline: Deadline, within: Callable[[str], bool] | None = None
    ) -> tuple[str, str | None]:
        """(final URL, HTML or None) through the SSRF-safe, bounded client; with `within`, every URL
        on the way (the first and each redirect) must pass it, else EgressRefused."""
        return self._fetch(url, deadline, within)

    def _fetch(
        self, url: str, deadline: Deadline, within: Callable[[str], bool] | None = None
    ) -> tuple[str, str | None]:
        for _ in range(self.max_redirects + 1):
            parse_public_url(url)
            if within is not None and not within(url):
                raise EgressRefused(f"{url}: not the company's own site")
            response = self.client.get(url, deadline, allow_redirects=False, stream=True)
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
            body, truncated = _read_body(response, self.max_bytes, deadline, self.policy.timeout_s)
            return url, _decode(body, truncated, response.headers.get("content-type", ""))
        raise EgressRefused(f"{url}: more than {self.max_redirects} redirects")

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


def _read_body(response: requests.Response, limit: int, deadline: Deadline, timeout_s: float) -> tuple[bytes, bool]:
    """At most `limit` bytes of the (decompressed) body, within the deadline; and whether it was cut.

    Each read waits at most what is left of the deadline, so a site that drips one byte
    at a time is cut off at the deadline, not after it."""
    raw = response.raw
    chunks: list[bytes] = []
    size = 0
    try:
        while size < limit:
            wait = deadline.bound(timeout_s, f"{response.url}: reading the page")
            sock = getattr(raw.connection, "sock", None)
            if sock is not None:
                sock.settimeout(wait)
            chunk = raw.read1(min(64 * 1024, limit - size), decode_content=True)
            if not chunk:
                return b"".join(chunks), False
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks), True
    except (urllib3.exceptions.HTTPError, requests.RequestException, OSError, RetriableError) as exc:
        raise Unreadable(
            f"{response.url}: the page broke off after {size:,} bytes ({type(exc).__name__}: {str(exc)[:200]})"
        ) from exc
    finally:
        response.close()


def _decode(body: bytes, truncated: bool, content_type: str) -> str:
    """Text in the page's own encoding: the header's charset, else a BOM or meta tag, else the bytes' look."""
    if truncated:  # a cut may split a character; end at the last tag instead
        end = body.rfind(b">")
        body = body[: end + 1] if end > 0 else body
    match = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", content_type, re.IGNORECASE)
    dammit = UnicodeDammit(body, known_definite_encodings=[match.group(1)] if match else [], is_html=True)
    return dammit.unicode_markup if dammit.unicode_markup is not None else body.decode("utf-8", errors="replace")


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
        for node in json_ld_nodes(data):
            types = {str(t).lower() for t in _as_list(node.get("@type"))}
            if types & ORGANIZATION_TYPES:
                return node
    return None


def json_ld_nodes(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, list):
        return [n for item in data for n in json_ld_nodes(item)]
    if isinstance(data, dict):
        return [data, *(json_ld_nodes(data["@graph"]) if "@graph" in data else [])]
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
