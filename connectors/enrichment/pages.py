"""A company's own pages for the crew's researcher: text and JSON-LD, capped, from its own site only.

Pages are fetched through the website provider's SSRF-safe, bounded client. A page is the
company's own when its URL is under the site the URL template gives for the domain, or its
host belongs to the domain (www.acme.io for acme.io); a redirect anywhere else is refused.
Each (domain, page) is fetched at most once per run. What a page says is a stranger's text:
the caller hands it on as untrusted data.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup

from connectors.egress import EgressRefused, EgressUnresolvable
from connectors.enrichment.website import WebsiteProvider, json_ld_nodes
from connectors.errors import FatalError, RetriableError
from connectors.http import Deadline, ProviderSkipped
from connectors.prepare.emails import registrable_domain

PAGE_PATHS = {
    "home": "",
    "about": "about",
    "pricing": "pricing",
    "customers": "customers",
    "careers": "careers",
    "contact": "contact",
}


@dataclass
class CompanyPages:
    website: WebsiteProvider
    max_chars: int = 6000
    _cache: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def read(self, domain: str, page: str) -> dict[str, Any]:
        """{url, text, json_ld} of one of the company's pages, or {url, error}; cached for the run."""
        key = (domain, page)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        result = self._read(domain, page)
        with self._lock:
            self._cache[key] = result
        return result

    def _read(self, domain: str, page: str) -> dict[str, Any]:
        if page not in PAGE_PATHS:
            return {"error": f"unknown page '{page}'; one of {', '.join(PAGE_PATHS)}"}
        site = self.website.url_template.format(domain=domain)
        url = urljoin(site, PAGE_PATHS[page])

        def own(candidate: str) -> bool:
            host = (urlsplit(candidate).hostname or "").lower()
            return candidate.startswith(site) or registrable_domain(host) == domain

        try:
            with self.website.client.timed():
                final, html = self.website.fetch(url, Deadline(self.website.policy.deadline_s), own)
        except (EgressRefused, EgressUnresolvable, ProviderSkipped, FatalError, RetriableError) as exc:
            return {"url": url, "error": str(exc)[:300]}
        if html is None:
            return {"url": final, "error": "no HTML page here"}
        return {"url": final, **self._extract(html)}

    def _extract(self, html: str) -> dict[str, Any]:
        try:
            soup = BeautifulSoup(html, "html.parser")
            blocks = []
            for script in soup.find_all("script", type="application/ld+json"):
                try:
                    blocks += json_ld_nodes(json.loads(script.string or ""))
                except (json.JSONDecodeError, TypeError):
                    continue
            for tag in soup(["script", "style", "noscript", "template"]):
                tag.decompose()
            text = " ".join(soup.get_text(" ").split())
        except Exception as exc:  # hostile markup is data: nothing to read, never a crash
            return {"error": f"the page could not be parsed ({type(exc).__name__})"}
        json_ld = json.dumps(blocks, ensure_ascii=False, default=str)[: self.max_chars // 2] if blocks else None
        return {"text": text[: self.max_chars], "json_ld": json_ld}
