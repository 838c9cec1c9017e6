"""The pipeline's settings: the source, prepare, enrichment providers, scoring, routing, triage and the LLM."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from connectors.settings.section import Section


class HubSpotSourceSettings(Section):
    """`[source] kind = "hubspot"`: contacts read through HubSpot's CRM search API (token and base URL
    from [crm.hubspot])."""

    cursor_property: Literal["createdate", "lastmodifieddate"]  # new contacts only, or created or updated
    page_size: int = Field(ge=1, le=200)  # results per search page (HubSpot's maximum: 200)
    max_results: int = Field(ge=200, le=10_000)  # HubSpot stops a search at 10,000 results: a new window then
    window_requests: int = Field(ge=1)  # search requests per window_s (HubSpot: 5 per second per token)
    window_s: float = Field(gt=0)
    properties: dict[str, str]  # leadq signup column = contact property read as input (never leadq's own)


class SalesforceSourceSettings(Section):
    """`[source] kind = "salesforce"`: Leads read with SOQL (credentials and org from [crm.salesforce])."""

    cursor_field: Literal["CreatedDate", "SystemModstamp"]  # new Leads only, or created or changed
    include_converted: bool  # false: converted Leads are left out
    fields: dict[str, str]  # leadq signup column = Lead field read as input (never leadq's own)


class SourceSettings(Section):
    kind: Literal["file", "sql", "hubspot", "salesforce"]
    path: str
    url: str
    table: str
    columns: dict[str, str]
    hubspot: HubSpotSourceSettings
    salesforce: SalesforceSourceSettings
    # a signup dated more than this past the run's start (or before 1990) is a dead letter, never a watermark
    max_future_s: float = Field(ge=0)
    lookback_s: float = Field(ge=0)  # re-read this window behind the watermark (rows committed late)


class PrepareSettings(Section):
    max_field_chars: int = Field(ge=100)
    role_accounts: list[str]
    extra_free_domains: list[str]
    country_aliases: dict[str, str]
    titles_file: str


class ReferenceSettings(Section):
    path: str
    preset: Literal["leadq", "pdl"]
    columns: dict[str, str]
    confidence: float = Field(ge=0, le=1)


class ServiceSettings(Section):
    """Limits shared by every provider that calls out."""

    enabled: bool
    timeout_s: float = Field(gt=0)
    rate_per_s: float = Field(ge=0)
    max_concurrency: int = Field(ge=1)
    retries: int = Field(ge=0, le=10)
    max_retry_after_s: float = Field(ge=0)
    breaker_after: int = Field(ge=1)
    cost_per_call: float = Field(ge=0)
    budget: float = Field(ge=0)  # credits per run, 0 = no budget
    deadline_s: float = Field(gt=0)  # one company's lookup in total: connect, redirects, body, retries
    time_budget_s: float = Field(ge=0)  # seconds of lookups per run before the provider is skipped; 0 = none
    cache_ttl_days: float = Field(ge=0)


class WebsiteSettings(ServiceSettings):
    url_template: str
    max_bytes: int = Field(ge=1024)
    max_redirects: int = Field(ge=0, le=10)
    allow_private_networks: bool
    fetch_about: bool
    probe_host: str
    technologies_file: str


class DnsSettings(Section):
    enabled: bool
    timeout_s: float = Field(gt=0)
    nameservers: list[str]
    port: int
    probe_domain: str
    cache_ttl_days: float = Field(ge=0)
    providers: dict[str, list[str]]


class ApolloSettings(ServiceSettings):
    base_url: str
    api_key_env: str  # the name of the variable, never the key


class PdlSettings(ServiceSettings):
    base_url: str
    api_key_env: str


ProviderName = Literal["reference", "website", "dns", "apollo", "pdl"]


class EnrichmentSettings(Section):
    providers: list[ProviderName]
    fields: dict[str, list[str]]  # per-field provider order
    min_confidence: float = Field(ge=0, le=1)
    max_workers: int = Field(ge=1, le=256)
    write_policy: dict[str, Literal["fill_if_empty", "always", "never"]]
    industries_file: str  # the canonical industry list, in the config folder
    industry_match_threshold: float = Field(ge=50, le=100)  # fuzzy matching, of 100
    reference: ReferenceSettings
    website: WebsiteSettings
    dns: DnsSettings
    apollo: ApolloSettings
    pdl: PdlSettings


class ScoringSettings(Section):
    icp_file: str
    top_reasons: int = Field(ge=1, le=20)


class RoutingSettings(Section):
    file: str
    calendar_timeout_s: float = Field(gt=0)  # reading one SDR's calendar URL
    calendar_max_bytes: int = Field(ge=1024)
    calendar_allow_private_networks: bool  # a calendar on a private address (an intranet server)


class SearchSettings(ServiceSettings):
    """The researcher's web search: Tavily (an API key) or a SearXNG instance (a URL), or none."""

    kind: Literal["none", "tavily", "searxng"]
    base_url: str  # Tavily's API (empty: https://api.tavily.com) or the SearXNG instance
    api_key_env: str  # Tavily's key: the variable's name, never the key
    depth: Literal["basic", "advanced"]  # Tavily: 1 or 2 credits a search
    max_results: int = Field(ge=1, le=20)


class ResearchSettings(Section):
    """The crew researcher's tools and what they may spend; research runs only for uncertain companies."""

    enabled: bool
    pages: list[Literal["home", "about", "pricing", "customers", "careers", "contact"]]
    max_page_chars: int = Field(ge=500, le=50_000)  # text and JSON-LD handed to the LLM per page
    max_tool_calls_per_company: int = Field(ge=0)
    max_tool_calls_per_run: int = Field(ge=0)
    max_search_credits_per_run: float = Field(ge=0)
    confidence: float = Field(ge=0, le=1)  # what a crew finding weighs in the waterfall
    cache_ttl_days: float = Field(ge=0)  # a company is researched once per this many days
    search: SearchSettings


class TriageSettings(Section):
    """Which leads the crew sees: rules decide the rest."""

    band: tuple[int, int]  # scores in this band are uncertain
    min_confidence: float = Field(ge=0, le=1)  # less evidence than this is uncertain
    missing_firmographics: bool  # no industry or no size is uncertain


class LlmSettings(Section):
    """The LLM behind the crew; an empty model means rules decide every lead."""

    model: str  # any model string CrewAI supports, e.g. "openai/gpt-4o-mini"
    base_url: str
    api_key_env: str  # the variable's name, never the key
    temperature: float = Field(ge=0, le=2)
    timeout_s: float = Field(gt=0)
    max_calls_per_run: int = Field(ge=0)
    max_cost_usd_per_run: float = Field(ge=0)
    usd_per_1k_prompt_tokens: float = Field(ge=0)
    usd_per_1k_completion_tokens: float = Field(ge=0)
    max_adjustment: int = Field(ge=0, le=100)
    max_attempts: int = Field(ge=1, le=5)  # tries per company when the answer fails validation
    cache_ttl_days: float = Field(ge=0)
    max_workers: int = Field(ge=1, le=32)
    researcher_max_iter: int = Field(ge=1, le=10)  # the researcher's tool loop: at most this many LLM calls + 1
    analyst_max_iter: int = Field(ge=1, le=10)

    @property
    def calls_per_crew_run(self) -> int:
        """The most LLM calls one crew run can make: each agent's iterations and its forced final answer."""
        return self.researcher_max_iter + 1 + self.analyst_max_iter + 1
