"""Settings: `config/settings.toml`, overridden by `LEADQ__SECTION__KEY` environment variables.

Every default lives in one place, leadq's own `config/settings.toml`. A config folder named by
`LEADQ_CONFIG_DIR` holds a `settings.toml` that overrides it key by key (a copy of the whole
file works too), and environment variables override both. `LEADQ_HOME` (default `./.leadq`)
holds all local state. Secrets never live here: settings name the environment variable that
holds a secret, and the secret is read from the environment when it is used.

The sections are pydantic models, one module per area: `operation`, `pipeline`, `crm`.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from connectors.errors import ConfigError
from connectors.settings.crm import CrmApiSettings, CrmSettings, HubSpotSettings, SalesforceSettings
from connectors.settings.operation import (
    AlertSettings,
    AutonomySettings,
    NotifySettings,
    ReviewSettings,
    RunSettings,
    RuntimeSettings,
    ShadowSettings,
    SlackSettings,
    SlaSettings,
    StoreSettings,
)
from connectors.settings.pipeline import (
    ApolloSettings,
    DnsSettings,
    EnrichmentSettings,
    LlmSettings,
    PdlSettings,
    PrepareSettings,
    ProviderName,
    ReferenceSettings,
    ResearchSettings,
    RoutingSettings,
    ScoringSettings,
    ServiceSettings,
    SourceSettings,
    TriageSettings,
    WebsiteSettings,
)
from connectors.settings.section import Section

__all__ = [
    "AlertSettings",
    "ApolloSettings",
    "AutonomySettings",
    "CrmApiSettings",
    "CrmSettings",
    "DnsSettings",
    "EnrichmentSettings",
    "HubSpotSettings",
    "LlmSettings",
    "NotifySettings",
    "PdlSettings",
    "PrepareSettings",
    "ProviderName",
    "ReferenceSettings",
    "ReviewSettings",
    "RoutingSettings",
    "RunSettings",
    "RuntimeSettings",
    "SalesforceSettings",
    "ScoringSettings",
    "ServiceSettings",
    "Settings",
    "ShadowSettings",
    "SlaSettings",
    "SlackSettings",
    "SourceSettings",
    "StoreSettings",
    "TriageSettings",
    "WebsiteSettings",
    "config_dir",
    "leadq_home",
    "load_settings",
    "load_yaml",
    "load_yaml_list",
    "validation_message",
]

ENV_PREFIX = "LEADQ__"
SETTINGS_FILE = "settings.toml"
DEFAULTS = Path(__file__).resolve().parents[2] / "config" / SETTINGS_FILE  # leadq's own: every default, once


class Settings(Section):
    """The whole of `settings.toml`, validated."""

    run: RunSettings
    source: SourceSettings
    prepare: PrepareSettings
    enrichment: EnrichmentSettings
    scoring: ScoringSettings
    routing: RoutingSettings
    store: StoreSettings
    crm: CrmSettings
    llm: LlmSettings
    research: ResearchSettings
    triage: TriageSettings
    runtime: RuntimeSettings
    autonomy: AutonomySettings
    review: ReviewSettings
    notify: NotifySettings
    alerts: AlertSettings
    sla: SlaSettings
    shadow: ShadowSettings

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
    return DEFAULTS.parent


def leadq_home(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("LEADQ_HOME") or ".leadq").expanduser().resolve()


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read, override and validate the settings; raise ConfigError with file and key on error.

    leadq's own config/settings.toml gives every default; the config folder's settings.toml
    overrides it key by key; `LEADQ__SECTION__KEY` variables override both."""
    env = dict(os.environ if environ is None else environ)
    folder = config_dir(env)
    path = folder / SETTINGS_FILE
    if not path.is_file():
        raise ConfigError(
            f"{path}: settings file not found (set LEADQ_CONFIG_DIR to the folder that holds {SETTINGS_FILE})"
        )
    data = _read_toml(DEFAULTS) if DEFAULTS.is_file() and path.resolve() != DEFAULTS else {}
    _merge(data, _read_toml(path))
    origins = _apply_env_overrides(data, env)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(exc, path, origins)) from exc
    settings.config_dir = folder
    settings.home = leadq_home(env)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def _merge(base: dict[str, Any], override: dict[str, Any]) -> None:
    """Override `base` key by key; a section (a table) merges, any other value replaces."""
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


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
