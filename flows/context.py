"""Everything a run needs, loaded and validated before the first batch is touched."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from connectors.crm import LocalCrm
from connectors.enrichment import Enricher, build_enricher
from connectors.prepare import PrepareRules
from connectors.routing import RoutingConfig, load_routing
from connectors.settings import Settings, load_settings
from connectors.sources import SignupSource, open_source
from connectors.store import Store
from crew.build import build_judge
from crew.icp import Icp, load_icp
from crew.judge import Judge


@dataclass
class RunContext:
    settings: Settings
    icp: Icp
    routing: RoutingConfig
    rules: PrepareRules
    enricher: Enricher
    source: SignupSource
    store: Store
    crm: LocalCrm
    judge: Judge | None


def load_context(source: str | None = None) -> RunContext:
    """Read and validate every config file; raises ConfigError (file, key, problem) on the first fault."""
    settings = load_settings()
    store = Store(settings.store_url)
    icp = load_icp(settings.config_path(settings.scoring.icp_file))
    return RunContext(
        settings=settings,
        icp=icp,
        routing=load_routing(settings.config_path(settings.routing.file)),
        rules=PrepareRules.from_settings(settings),
        enricher=build_enricher(settings),
        source=open_source(settings, Path(source) if source else None),
        store=store,
        crm=LocalCrm(store),
        judge=build_judge(settings, icp, store),
    )
