"""Everything a run needs, loaded and validated before the first batch is touched."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from connectors.crm import CrmSink, build_crm
from connectors.enrichment import Enricher, build_enricher
from connectors.notify import SlackNotifier, build_notifier
from connectors.prepare import PrepareRules
from connectors.routing import RoutingConfig, load_routing, staffed_queues
from connectors.settings import Settings, load_settings
from connectors.sources import SignupSource, open_source
from connectors.store import Store
from crew.build import build_judge
from crew.icp import Icp, load_icp
from crew.judge import Judge
from crew.review import HoldRules


@dataclass
class RunContext:
    settings: Settings
    icp: Icp
    routing: RoutingConfig
    rules: PrepareRules
    enricher: Enricher
    source: SignupSource
    store: Store
    crm: CrmSink
    judge: Judge | None
    holds: HoldRules
    notifier: SlackNotifier | None = None
    has_store: bool = False  # whether the store exists; set once per run, not asked per batch

    @property
    def shadow(self) -> bool:
        return self.settings.run.mode == "shadow"

    @property
    def writes_crm(self) -> bool:
        """Shadow mode and `crm_write = "off"` record everything in the store and write nothing to the CRM."""
        return not self.shadow and self.settings.autonomy.crm_write != "off"

    @property
    def announces(self) -> bool:
        """New leads are announced in Slack: a notifier, live mode, and `notify` not off."""
        return self.notifier is not None and not self.shadow and self.settings.autonomy.notify != "off"


def load_context(source: str | None = None) -> RunContext:
    """Read and validate every config file; raises ConfigError (file, key, problem) on the first fault."""
    settings = load_settings()
    store = Store(settings.store_url)
    icp = load_icp(settings.config_path(settings.scoring.icp_file))
    routing = load_routing(settings.config_path(settings.routing.file))
    return RunContext(
        settings=settings,
        icp=icp,
        routing=routing,
        rules=PrepareRules.from_settings(settings),
        enricher=build_enricher(settings),
        source=open_source(settings, Path(source) if source else None),
        store=store,
        crm=build_crm(settings),
        judge=build_judge(settings, icp, store),
        holds=HoldRules.from_settings(settings, icp, routing.approval_domains(), staffed_queues(routing)),
        notifier=build_notifier(settings.notify),
    )


# The CLI validates the config before Prefect starts; the flow then takes that same context
# instead of reading every file (and a possibly large reference file) a second time.
_preloaded: tuple[tuple[object, ...], RunContext] | None = None
_shared: tuple[tuple[object, ...], RunContext] | None = None


def _key(source: str | None) -> tuple[object, ...]:
    return (
        source,
        os.environ.get("LEADQ_CONFIG_DIR"),
        os.environ.get("LEADQ_HOME"),
        tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("LEADQ__"))),
    )


def preload_context(source: str | None = None) -> RunContext:
    """Load and keep the context for the next run in this process with the same source and settings."""
    global _preloaded
    ctx = load_context(source)
    _preloaded = (_key(source), ctx)
    return ctx


def take_context(source: str | None = None) -> RunContext:
    """The shared context if one is open, the preloaded one if it matches (once), else a freshly loaded one."""
    global _preloaded
    if _shared is not None and _shared[0] == _key(source):
        return _shared[1]
    if _preloaded is not None and _preloaded[0] == _key(source):
        ctx = _preloaded[1]
        _preloaded = None
        return ctx
    return load_context(source)


_worker: dict[tuple[object, ...], RunContext] = {}


def worker_context() -> RunContext:
    """The context of a Dask worker process, loaded once per worker (the flow's own is not shipped:
    it holds connections and locks). Workers read the same config folder and settings."""
    key = _key(None)
    if key not in _worker:
        ctx = load_context()
        ctx.has_store = ctx.store.exists()
        _worker[key] = ctx
    return _worker[key]


@contextmanager
def shared_context(source: str | None = None) -> Iterator[RunContext]:
    """One context for several runs in a row (a backfill's chunks): config and reference files are read,
    and the CRM's owners and properties fetched, once. Usage counters then add up across the runs.
    At the end the store's connections are closed, so SQLite folds its write-ahead log into the database."""
    global _shared
    ctx = take_context(source)
    _shared = (_key(source), ctx)
    try:
        yield ctx
    finally:
        _shared = None
        ctx.store.close()
