"""Enrichment providers and the waterfall that combines them, built from settings.

Providers: `reference` (offline company file), `website`, `dns` (MX → email provider),
`apollo` and `pdl` (paid APIs, active only when their key is in the environment).
"""

from __future__ import annotations

import os

from connectors.canonical import load_industries
from connectors.enrichment.apollo import ApolloProvider
from connectors.enrichment.base import FIELDS, Found, Lookup, Provider
from connectors.enrichment.dns import DnsProvider
from connectors.enrichment.pdl import PdlProvider
from connectors.enrichment.reference import ReferenceFile
from connectors.enrichment.waterfall import Enricher
from connectors.enrichment.website import WebsiteProvider, load_signatures
from connectors.http import service_policy
from connectors.redact import secret
from connectors.settings import Settings

__all__ = ["FIELDS", "Enricher", "Found", "Lookup", "Provider", "build_enricher"]


def build_enricher(settings: Settings, environ: dict[str, str] | None = None) -> Enricher:
    """The providers named in `[enrichment] providers`, in that order, that can run here."""
    env = os.environ if environ is None else environ
    e = settings.enrichment
    aliases = settings.prepare.country_aliases
    providers: list[Provider] = []
    inactive: dict[str, str] = {}
    ttl: dict[str, float] = {}
    for name in e.providers:
        if name == "reference":
            providers.append(ReferenceFile.from_settings(settings))
        elif name == "website" and e.website.enabled:
            w = e.website
            providers.append(
                WebsiteProvider(
                    url_template=w.url_template,
                    policy=service_policy(w),
                    signatures=load_signatures(settings.config_path(w.technologies_file)),
                    max_bytes=w.max_bytes,
                    max_redirects=w.max_redirects,
                    allow_private_networks=w.allow_private_networks,
                    fetch_about=w.fetch_about,
                    country_aliases=aliases,
                    probe_host=w.probe_host,
                )
            )
            ttl[name] = w.cache_ttl_days
        elif name == "dns" and e.dns.enabled:
            d = e.dns
            providers.append(DnsProvider(d.providers, d.timeout_s, d.nameservers, d.port, d.probe_domain))
            ttl[name] = d.cache_ttl_days
        elif name in ("apollo", "pdl"):
            api = e.apollo if name == "apollo" else e.pdl
            key = secret(env.get(api.api_key_env, ""))
            if not api.enabled:
                inactive[name] = "disabled in settings"
            elif not key:
                inactive[name] = f"{api.api_key_env} is not set"
            else:
                cls = ApolloProvider if name == "apollo" else PdlProvider
                providers.append(cls(api.base_url, key, service_policy(api)))
                ttl[name] = api.cache_ttl_days
        else:
            inactive[name] = "disabled in settings"
    return Enricher(
        providers=providers,
        field_orders=e.fields,
        min_confidence=e.min_confidence,
        ttl_days=ttl,
        write_policy=dict(e.write_policy),
        max_workers=e.max_workers,
        country_aliases=aliases,
        inactive=inactive,
        industries=load_industries(settings.config_path(e.industries_file), e.industry_match_threshold),
    )
