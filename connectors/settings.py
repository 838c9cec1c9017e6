"""Settings: `config/settings.toml`, overridden by `LEADQ__SECTION__KEY` environment variables.

`LEADQ_CONFIG_DIR` points at another config folder; `LEADQ_HOME` (default `./.leadq`)
holds all local state. Secrets never live here: settings name the environment variable
that holds a secret, and the secret is read from the environment when it is used.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.errors import ConfigError

ENV_PREFIX = "LEADQ__"
SETTINGS_FILE = "settings.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


Action = Literal["auto", "approve", "off"]


class RunSettings(_Section):
    batch_size: int = Field(5000, ge=1, le=1_000_000)
    mode: Literal["live", "shadow"] = "live"  # shadow: decide and record everything, write nothing to the CRM
    schedule_cron: str = "*/15 * * * *"  # qualify-signups under `leadq serve`
    schedule_timezone: str = "UTC"
    lock_wait_s: float = Field(600.0, ge=0)  # a run waits this long for another run writing to the same store


class RuntimeSettings(_Section):
    """Where batches run: in this process, or in parallel on a Dask cluster."""

    task_runner: Literal["threads", "dask"] = "threads"
    dask_address: str = ""  # e.g. tcp://scheduler:8786; empty: a local cluster of dask_workers processes
    dask_workers: int = Field(2, ge=1, le=256)


class AutonomySettings(_Section):
    """Per action: `auto` (do it), `approve` (hold the lead for a person first) or `off` (never)."""

    crm_write: Action = "auto"
    owner_assignment: Action = "auto"
    notify: Action = "auto"


class ReviewSettings(_Section):
    borderline_points: int = Field(0, ge=0, le=100)  # hold scores this close to the qualified threshold (0: off)
    timeout_s: int = Field(86_400, ge=60)  # how long a review-leads run waits for one form
    max_per_run: int = Field(20, ge=1, le=1000)  # leads one review-leads run asks about


class SlackSettings(_Section):
    """Incoming webhooks: a route (a queue name, `reviews`, `alerts` or `default`) -> the variable holding its URL."""

    webhooks: dict[str, str] = Field(default_factory=lambda: {"default": "SLACK_WEBHOOK_URL"})
    timeout_s: float = Field(10.0, gt=0)
    attempts: int = Field(4, ge=1, le=10)
    max_backoff_s: float = Field(30.0, ge=0)


class NotifySettings(_Section):
    kind: Literal["off", "slack"] = "off"
    tiers: list[str] = Field(default_factory=lambda: ["A"])  # new leads of these tiers are announced
    slack: SlackSettings = Field(default_factory=SlackSettings)


class AlertSettings(_Section):
    max_dead_letter_rate: float = Field(0.10, ge=0, le=1)  # share of a run's signups; above it, an alert
    on_failure: bool = True  # a failed or stopped run raises an alert


# Lead statuses people set: Salesforce's standard Lead Status values and HubSpot's hs_lead_status.
QUALIFIED_STATUSES = (
    "Working",
    "Working - Contacted",
    "Qualified",
    "Converted",
    "IN_PROGRESS",
    "OPEN_DEAL",
    "CONNECTED",
)
DISQUALIFIED_STATUSES = ("Unqualified", "Closed - Not Converted", "UNQUALIFIED", "BAD_TIMING")


class ShadowSettings(_Section):
    """How `leadq shadow-report` reads what people did in the CRM."""

    qualified_statuses: list[str] = Field(default_factory=lambda: list(QUALIFIED_STATUSES))
    disqualified_statuses: list[str] = Field(default_factory=lambda: list(DISQUALIFIED_STATUSES))


class SourceSettings(_Section):
    kind: Literal["file", "sql"] = "file"
    path: str = "data/sample_signups.csv"
    url: str = ""
    table: str = "signups"
    columns: dict[str, str] = Field(default_factory=dict)
    # a signup dated more than this past the run's start (or before 1990) is a dead letter, never a watermark
    max_future_s: float = Field(300.0, ge=0)
    lookback_s: float = Field(0.0, ge=0)  # re-read this window behind the watermark (rows committed late)


class PrepareSettings(_Section):
    max_field_chars: int = Field(10_000, ge=100)
    role_accounts: list[str] = Field(default_factory=list)
    extra_free_domains: list[str] = Field(default_factory=list)
    country_aliases: dict[str, str] = Field(default_factory=dict)
    titles_file: str = "titles.yaml"


class ReferenceSettings(_Section):
    path: str = "data/companies.csv"
    preset: Literal["leadq", "pdl"] = "leadq"
    columns: dict[str, str] = Field(default_factory=dict)
    confidence: float = Field(0.9, ge=0, le=1)


class ServiceSettings(_Section):
    """Limits shared by every provider that calls out."""

    enabled: bool = True
    timeout_s: float = Field(5.0, gt=0)
    rate_per_s: float = Field(5.0, ge=0)
    max_concurrency: int = Field(4, ge=1)
    retries: int = Field(3, ge=0, le=10)
    max_retry_after_s: float = Field(30.0, ge=0)
    breaker_after: int = Field(5, ge=1)
    cost_per_call: float = Field(0.0, ge=0)
    budget: float = Field(0.0, ge=0)  # credits per run, 0 = no budget
    deadline_s: float = Field(20.0, gt=0)  # one company's lookup in total: connect, redirects, body, retries
    time_budget_s: float = Field(0.0, ge=0)  # seconds of lookups per run before the provider is skipped; 0 = none
    cache_ttl_days: float = Field(30.0, ge=0)


class WebsiteSettings(ServiceSettings):
    url_template: str = "https://{domain}/"
    max_bytes: int = Field(2_000_000, ge=1024)
    max_redirects: int = Field(3, ge=0, le=10)
    allow_private_networks: bool = False
    fetch_about: bool = True
    probe_host: str = "example.com"
    technologies_file: str = "technologies.yaml"


class DnsSettings(_Section):
    enabled: bool = True
    timeout_s: float = Field(2.0, gt=0)
    nameservers: list[str] = Field(default_factory=list)
    port: int = 53
    probe_domain: str = "gmail.com"
    cache_ttl_days: float = Field(30.0, ge=0)
    providers: dict[str, list[str]] = Field(default_factory=dict)


class ApolloSettings(ServiceSettings):
    base_url: str = "https://api.apollo.io"
    api_key_env: str = "APOLLO_API_KEY"  # the name of the variable, never the key
    rate_per_s: float = Field(1.0, ge=0)
    cost_per_call: float = Field(1.0, ge=0)


class PdlSettings(ServiceSettings):
    base_url: str = "https://api.peopledatalabs.com"
    api_key_env: str = "PDL_API_KEY"
    rate_per_s: float = Field(1.0, ge=0)
    cost_per_call: float = Field(1.0, ge=0)


ProviderName = Literal["reference", "website", "dns", "apollo", "pdl"]


DEFAULT_PROVIDERS: list[ProviderName] = ["reference", "dns", "website", "apollo", "pdl"]


class EnrichmentSettings(_Section):
    providers: list[ProviderName] = Field(default_factory=lambda: list(DEFAULT_PROVIDERS))
    fields: dict[str, list[str]] = Field(default_factory=dict)  # per-field provider order
    min_confidence: float = Field(0.7, ge=0, le=1)
    max_workers: int = Field(8, ge=1, le=256)
    write_policy: dict[str, Literal["fill_if_empty", "always", "never"]] = Field(default_factory=dict)
    reference: ReferenceSettings = Field(default_factory=ReferenceSettings)
    website: WebsiteSettings = Field(default_factory=WebsiteSettings)
    dns: DnsSettings = Field(default_factory=DnsSettings)
    apollo: ApolloSettings = Field(default_factory=ApolloSettings)
    pdl: PdlSettings = Field(default_factory=PdlSettings)


class ScoringSettings(_Section):
    icp_file: str = "icp.yaml"
    top_reasons: int = Field(3, ge=1, le=20)


class RoutingSettings(_Section):
    file: str = "routing.yaml"


class StoreSettings(_Section):
    url: str = ""


class CrmApiSettings(_Section):
    """Limits shared by the CRM APIs; every number is a setting."""

    timeout_s: float = Field(30.0, gt=0)
    window_requests: int = Field(100, ge=0)  # at most this many requests in any window_s (0: no limit)
    window_s: float = Field(10.0, gt=0)
    window_margin_s: float = Field(0.25, ge=0)  # added to each window: client and server clocks differ
    attempts: int = Field(5, ge=1, le=20)  # per request, on 429 (short-window limits), 5xx and network errors
    max_backoff_s: float = Field(60.0, ge=0)  # the longest single wait, whatever a header asks for


HUBSPOT_CONTACT_PROPERTIES = {
    "email": "email",
    "first_name": "firstname",
    "last_name": "lastname",
    "job_title": "jobtitle",
    "phone": "phone",
    "country": "country",
    "score": "leadq_score",
    "tier": "leadq_tier",
    "reasons": "leadq_reasons",
    "queue": "leadq_queue",
    "icp_version": "leadq_icp_version",
    "method": "leadq_method",
    "needs_review": "leadq_needs_review",
}
HUBSPOT_COMPANY_PROPERTIES = {
    "company_domain": "domain",
    "company_legal_name": "name",
    "industry": "leadq_industry",
    "employees": "numberofemployees",
    "company_country": "country",
    "linkedin_url": "linkedin_company_page",
    "description": "description",
}
SALESFORCE_LEAD_FIELDS = {
    "email": "Email",
    "first_name": "FirstName",
    "last_name": "LastName",
    "job_title": "Title",
    "phone": "Phone",
    "country": "Country",
    "company_label": "Company",
    "company_domain": "Website",
    "industry": "Industry",
    "employees": "NumberOfEmployees",
    "score": "Leadq_Score__c",
    "tier": "Leadq_Tier__c",
    "reasons": "Leadq_Reasons__c",
    "queue": "Leadq_Queue__c",
    "icp_version": "Leadq_ICP_Version__c",
    "method": "Leadq_Method__c",
    "needs_review": "Leadq_Needs_Review__c",
}


class HubSpotSettings(CrmApiSettings):
    base_url: str = "https://api.hubapi.com"
    token_env: str = "HUBSPOT_ACCESS_TOKEN"  # a private-app token; the variable's name, never the token
    batch_size: int = Field(100, ge=1, le=100)  # HubSpot's limit for batch/read and batch/upsert
    association_batch_size: int = Field(100, ge=1, le=2000)  # v4 batch endpoints take more; 100 is always safe
    property_group: str = "leadq"
    company_key_property: str = "leadq_company_key"  # a unique custom property: companies upsert by it
    contact_properties: dict[str, str] = Field(default_factory=lambda: dict(HUBSPOT_CONTACT_PROPERTIES))
    company_properties: dict[str, str] = Field(default_factory=lambda: dict(HUBSPOT_COMPANY_PROPERTIES))


class SalesforceSettings(CrmApiSettings):
    login_url: str = "https://login.salesforce.com"  # your My Domain URL for the client-credentials flow
    api_version: str = Field("v61.0", pattern=r"^v\d+\.\d$")
    client_id_env: str = "SALESFORCE_CLIENT_ID"
    client_secret_env: str = "SALESFORCE_CLIENT_SECRET"
    sobject: str = "Lead"
    external_id_field: str = "Leadq_Email__c"  # an External ID, Unique field on the object
    batch_size: int = Field(200, ge=1, le=200)  # sObject Collections take at most 200 records
    fields: dict[str, str] = Field(default_factory=lambda: dict(SALESFORCE_LEAD_FIELDS))


class CrmSettings(_Section):
    kind: Literal["local", "hubspot", "salesforce"] = "local"
    sync_retries: int = Field(2, ge=0, le=10)  # whole-batch retries of the sync step after a 5xx storm
    sync_retry_delay_s: list[float] = Field(default_factory=lambda: [5.0, 30.0])
    hubspot: HubSpotSettings = Field(default_factory=HubSpotSettings)
    salesforce: SalesforceSettings = Field(default_factory=SalesforceSettings)


class LlmSettings(_Section):
    """The LLM behind the crew; an empty model means rules decide every lead."""

    model: str = ""  # any model string CrewAI supports, e.g. "openai/gpt-4o-mini"
    base_url: str = ""
    api_key_env: str = "OPENAI_API_KEY"  # the variable's name, never the key
    temperature: float = Field(0.0, ge=0, le=2)
    timeout_s: float = Field(60.0, gt=0)
    max_calls_per_run: int = Field(200, ge=0)
    max_cost_usd_per_run: float = Field(2.0, ge=0)
    usd_per_1k_prompt_tokens: float = Field(0.00015, ge=0)
    usd_per_1k_completion_tokens: float = Field(0.0006, ge=0)
    max_adjustment: int = Field(25, ge=0, le=100)
    max_attempts: int = Field(2, ge=1, le=5)  # tries per company when the answer fails validation
    cache_ttl_days: float = Field(30.0, ge=0)
    max_workers: int = Field(2, ge=1, le=32)
    researcher_max_iter: int = Field(3, ge=1, le=10)  # the researcher's tool loop: at most this many LLM calls + 1
    analyst_max_iter: int = Field(2, ge=1, le=10)

    @property
    def calls_per_crew_run(self) -> int:
        """The most LLM calls one crew run can make: each agent's iterations and its forced final answer."""
        return self.researcher_max_iter + 1 + self.analyst_max_iter + 1


class TriageSettings(_Section):
    """Which leads the crew sees: rules decide the rest."""

    band: tuple[int, int] = (45, 79)  # scores in this band are uncertain
    min_confidence: float = Field(0.6, ge=0, le=1)  # less evidence than this is uncertain
    missing_firmographics: bool = True  # no industry or no size is uncertain


class Settings(_Section):
    """The whole of `settings.toml`, validated."""

    run: RunSettings = Field(default_factory=RunSettings)
    source: SourceSettings = Field(default_factory=SourceSettings)
    prepare: PrepareSettings = Field(default_factory=PrepareSettings)
    enrichment: EnrichmentSettings = Field(default_factory=EnrichmentSettings)
    scoring: ScoringSettings = Field(default_factory=ScoringSettings)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    crm: CrmSettings = Field(default_factory=CrmSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    triage: TriageSettings = Field(default_factory=TriageSettings)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    autonomy: AutonomySettings = Field(default_factory=AutonomySettings)
    review: ReviewSettings = Field(default_factory=ReviewSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    shadow: ShadowSettings = Field(default_factory=ShadowSettings)

    # Where the settings came from; not part of the file.
    config_dir: Path = Field(default=Path("config"), exclude=True)
    home: Path = Field(default=Path(".leadq"), exclude=True)

    def config_path(self, relative: str) -> Path:
        """A path from the settings, resolved against the config folder."""
        path = Path(relative).expanduser()
        return path if path.is_absolute() else self.config_dir / path

    @property
    def store_url(self) -> str:
        return self.store.url or f"sqlite:///{self.home / 'leadq.db'}"


def config_dir(environ: dict[str, str] | None = None) -> Path:
    """The config folder: `LEADQ_CONFIG_DIR`, else `./config`, else the one in this checkout."""
    env = os.environ if environ is None else environ
    if env.get("LEADQ_CONFIG_DIR"):
        return Path(env["LEADQ_CONFIG_DIR"]).expanduser().resolve()
    local = Path.cwd() / "config"
    if local.is_dir():
        return local.resolve()
    return (Path(__file__).resolve().parents[1] / "config").resolve()


def leadq_home(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("LEADQ_HOME") or ".leadq").expanduser().resolve()


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read, override and validate the settings; raise ConfigError with file and key on error."""
    env = dict(os.environ if environ is None else environ)
    folder = config_dir(env)
    path = folder / SETTINGS_FILE
    if not path.is_file():
        raise ConfigError(
            f"{path}: settings file not found (set LEADQ_CONFIG_DIR to the folder that holds {SETTINGS_FILE})"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    origins = _apply_env_overrides(data, env)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(exc, path, origins)) from exc
    settings.config_dir = folder
    settings.home = leadq_home(env)
    return settings


def _apply_env_overrides(data: dict[str, Any], env: dict[str, str]) -> dict[tuple[str, ...], str]:
    """Merge `LEADQ__A__B=value` into data; return which keys came from which variable."""
    origins: dict[tuple[str, ...], str] = {}
    for name, raw in sorted(env.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        keys = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        if not all(keys):
            raise ConfigError(f"environment variable {name}: expected LEADQ__SECTION__KEY, found an empty part")
        node = data
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"environment variable {name}: '{key}' is a value, not a section")
            node = child
        node[keys[-1]] = _parse_env_value(raw)
        origins[keys] = name
    return origins


def _parse_env_value(raw: str) -> Any:
    """Read an override as a TOML value (numbers, booleans, lists), else as a plain string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML config file that holds a mapping, or raise ConfigError naming the file."""
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, found {type(data).__name__}")
    return data


def load_yaml_list(path: Path) -> list[Any]:
    """Read a YAML config file that holds a list, or raise ConfigError naming the file."""
    data = _read_yaml(path)
    if not isinstance(data, list):
        raise ConfigError(f"{path}: expected a list at the top level, found {type(data).__name__}")
    return data


def validation_message(exc: ValidationError, path: Path, origins: dict[tuple[str, ...], str] | None = None) -> str:
    """One line naming the file (or the environment variable), the key and the problem."""
    error = exc.errors()[0]
    loc = tuple(str(part) for part in error["loc"])
    known = origins or {}
    env_var = next((known[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in known), None)
    where = f"environment variable {env_var}" if env_var else str(path)
    found = error.get("input")
    found_text = "" if isinstance(found, dict | list) else f" (found {found!r})"
    return f"{where}: key '{'.'.join(loc) or '(top level)'}': {error['msg']}{found_text}"
