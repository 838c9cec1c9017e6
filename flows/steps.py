"""The steps of one batch, as Prefect tasks: prepare, enrich, score, judge, review, route, sync, notify, commit.

Each task does one step of one batch (never one lead) and the logic lives in `connectors`
and `crew`, where it is tested without Prefect. Batches are large and change every run, so
no step hashes, caches or persists them (cache_policy=NONE, persist_result=False).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from prefect import task
from prefect.cache_policies import NONE
from pydantic import BaseModel, Field

from connectors.crm import CrmResult, CrmSink, CrmStopped
from connectors.enrichment import Enricher
from connectors.errors import RetriableError
from connectors.notify import SlackNotifier, lead_messages, review_message
from connectors.prepare import Prepared, PrepareRules
from connectors.prepare.read import ReadScope, prepare_read
from connectors.routing import RoutingConfig, assign_queues, availability, route_leads, staffed_queues
from connectors.routing.availability import LOAD_SCHEMA
from connectors.routing.calendars import Calendars
from connectors.routing.names import KnownNames
from connectors.sources import Cursor
from connectors.store import Store
from connectors.store.batches import BatchWrite
from crew.icp import Icp
from crew.judge import Judge
from crew.review import HOLD, HoldRules, apply_decisions, mark_holds
from crew.scorer import score_leads


class QualifyParams(BaseModel):
    """What one run of the pipeline is asked to do (qualify-signups' parameters, also used by backfills,
    reviews and retries)."""

    source: str | None = Field(None, description="A signup file to process instead of the configured source")
    dry_run: bool = Field(False, description="Decide everything, write nothing (no CRM, no watermark)")
    refresh_enrichment: bool = Field(False, description="Ignore cached enrichment and ask the providers again")


@dataclass(frozen=True)
class DecidedBatch:
    """One batch after prepare, enrich and score: what the flow loop and the Dask workers hand on."""

    raw: pl.DataFrame
    prepared: Prepared
    skipped: int  # rows already known (older than the stored signup, or stored), not decided again
    leads: pl.DataFrame


@dataclass(frozen=True)
class Owners:
    """Where the route step reads the owners leads already have, and whether it may assign new ones."""

    store: Store | None  # None before the store exists
    crm: CrmSink | None  # None in shadow mode: leadq decides alone, to be compared later
    crm_name: str
    assign: bool  # false when `[autonomy] owner_assignment = "off"`: no owner, no rotation turn
    calendars: Calendars | None = None  # the SDRs' calendars, read once per run
    names: KnownNames | None = None  # known companies by name, for free-mail leads that typed one


@dataclass(frozen=True)
class RunIds:
    """Which run writes, from which source."""

    run_id: str
    source_key: str


@dataclass(frozen=True)
class RoutedBatch:
    """One batch ready for the CRM: routed leads, leads held for review, and the rotation after it."""

    leads: pl.DataFrame
    held: pl.DataFrame
    prepared: Prepared
    positions: dict[str, int]


@task(name="prepare", cache_policy=NONE, persist_result=False)
def prepare_step(
    raw: pl.DataFrame, rules: PrepareRules, store: Store | None, source_key: str, scope: ReadScope
) -> tuple[Prepared, int]:
    """Validate and normalise; skip what the store (if there is one yet) holds already in this or a newer version.

    Returns the batch and how many rows it skipped: rows older than the stored signup, rows read
    again for the lookback (or undated) whose lead is stored, rejects recorded by an earlier run."""
    return prepare_read(raw, rules, store, source_key, scope)


@task(name="enrich", cache_policy=NONE, persist_result=False)
def enrich_step(leads: pl.DataFrame, enricher: Enricher, cache: Store | None, params: QualifyParams) -> pl.DataFrame:
    """One waterfall per company domain in the batch; lookups are cached unless this is a dry run."""
    return enricher.enrich(leads, cache, refresh=params.refresh_enrichment, save=not params.dry_run)


@task(name="score", cache_policy=NONE, persist_result=False)
def score_step(leads: pl.DataFrame, icp: Icp, top_reasons: int) -> pl.DataFrame:
    """Every lead scored by the ICP's rules, with its reasons (vectorised)."""
    return score_leads(leads, icp, top_reasons)


@task(name="judge", cache_policy=NONE, persist_result=False)
def judge_step(leads: pl.DataFrame, judge: Judge, cache: Store | None, params: QualifyParams) -> pl.DataFrame:
    """The crew, for the uncertain band only, grouped by company; judgements are cached unless a dry run."""
    return judge.judge(leads, cache, save=not params.dry_run)


@task(name="review", cache_policy=NONE, persist_result=False)
def review_step(
    leads: pl.DataFrame, store: Store | None, routing: RoutingConfig, holds: HoldRules
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """People's decisions win over leadq's; then split off the leads a person must see first.

    Returns (leads to route, leads held for review)."""
    no_decisions = pl.DataFrame(
        schema=dict.fromkeys(
            ["email", "status", "decided_by", "why", "tier_override", "queue_override", "owner_override"], pl.String
        )
    )
    decided = store.decided_reviews(leads["email"].to_list()) if store is not None else no_decisions
    leads = mark_holds(assign_queues(apply_decisions(leads, decided), routing), holds)
    held = pl.col(HOLD).is_not_null()
    return leads.filter(~held).drop(HOLD), leads.filter(held)


def _retriable(_task: object, _run: object, state: Any) -> bool:
    """Retry a CRM step only when the CRM failed for now (5xx storm, network), never on a refusal."""
    try:
        state.result()
    except RetriableError:
        return True
    except Exception:
        return False
    return False


@task(name="route", retry_condition_fn=_retriable, cache_policy=NONE, persist_result=False)
def route_step(
    leads: pl.DataFrame, owners: Owners, routing: RoutingConfig, positions: dict[str, int]
) -> tuple[pl.DataFrame, dict[str, int], str | None]:
    """Queues and owners; owners already set in the store or the CRM are kept (unless the queue reassigns).

    The third value says why the CRM could not be read (a spent daily limit): the run stops there.
    In shadow mode the CRM's owners are not read: leadq decides on its own, to be compared later."""
    emails = leads["email"].to_list()
    if owners.names is not None and routing.account_routing and "company_domain" in leads.columns:
        leads = owners.names.account_domains(leads)  # a typed company name may name a known account
    existing = (
        owners.store.existing_assignments(emails)
        if owners.store is not None
        else pl.DataFrame(schema={"email": pl.String, "queue": pl.String, "owner": pl.String})
    )
    try:
        crm_owners = owners.crm.existing_owners(emails) if owners.crm is not None else None
        accounts = _account_owners(leads, existing, crm_owners, owners, routing, emails)
    except CrmStopped as exc:
        return leads, positions, str(exc)
    except RetriableError as exc:
        raise RetriableError(f"route step: reading the lead owners from {owners.crm_name} failed: {exc}") from exc
    now = datetime.now(UTC)
    loads = owners.store.sdr_loads(now.date() - timedelta(days=8)) if owners.store is not None else None
    available = availability(
        routing, now, loads if loads is not None else pl.DataFrame(schema=LOAD_SCHEMA), owners.calendars
    )
    routed = route_leads(
        leads, routing, positions, existing, crm_owners, owners.assign, account_owners=accounts, available=available
    )
    return *routed, None


def _account_owners(
    leads: pl.DataFrame,
    existing: pl.DataFrame,
    crm_owners: pl.DataFrame | None,
    owners: Owners,
    routing: RoutingConfig,
    routing_now: list[str],
) -> pl.DataFrame | None:
    """(company_domain, account_owner) for the accounts of the leads that may take a rotation turn (in a
    staffed queue, with no owner of their own or in a queue that reassigns): the CRM's company (Account)
    owner first, then the owner of the company's other leads in the store. None without account routing."""
    if not routing.account_routing or "company_domain" not in leads.columns:
        return None
    queued = leads if "queue" in leads.columns else assign_queues(leads, routing)
    owned = set(existing.filter(pl.col("owner").is_not_null())["email"])
    owned |= set(crm_owners["email"]) if crm_owners is not None else set()
    reassigning = [q for q, queue in routing.queues.items() if queue.reassign or queue.reassign_when_away]
    may_turn = ~pl.col("email").is_in(list(owned)) | pl.col("queue").is_in(reassigning)
    turns = queued.filter(may_turn & pl.col("queue").is_in(staffed_queues(routing)))
    account = "account_domain" if "account_domain" in turns.columns else "company_domain"
    domains = turns[account].drop_nulls().unique().to_list()
    if not domains:
        return None
    found = []
    if owners.crm is not None:
        asked = domains
        if owners.crm.writes_companies:  # HubSpot: only a company leadq wrote carries its key, so only those
            asked = owners.store.known_companies(domains) if owners.store is not None else []
        found += [owners.crm.account_owners(asked)] if asked else []
    if owners.store is not None:
        found.append(owners.store.account_owners(domains, routing_now))
    return pl.concat(found).unique("company_domain", keep="first", maintain_order=True) if found else None


@task(name="sync", retry_condition_fn=_retriable, cache_policy=NONE, persist_result=False)
def sync_step(batch: RoutedBatch, crm: CrmSink, writes_crm: bool, store: Store, run: RunIds) -> CrmResult:
    """Publish to the CRM, then record the batch (what the CRM refused, and the leads held for
    review) in the store, in one transaction. Shadow mode and `crm_write = "off"` skip the CRM.

    Redoing it is safe: every CRM write is an upsert by a stable key."""
    try:
        result = crm.publish(batch.leads) if writes_crm else CrmResult()
    except CrmStopped as exc:
        return CrmResult(stopped=str(exc))
    except RetriableError as exc:
        raise RetriableError(f"sync step: writing to {crm.name} failed: {exc}") from exc
    write = BatchWrite(
        batch.leads,
        batch.prepared.rejects,
        batch.positions,
        held=batch.held,
        seen=batch.prepared.seen,
        crm_failures=result.failure_frame(),
        crm_name=crm.name,
    )
    store.record_batch(write, run.run_id, run.source_key)
    return result


@task(name="notify", cache_policy=NONE, persist_result=False)
def notify_step(
    leads: pl.DataFrame, held: pl.DataFrame, notifier: SlackNotifier, tiers: list[str] | None, store: Store, run_id: str
) -> None:
    """Announce new leads of these `tiers` (None: announce none) in their queue's channel, and new holds
    to `reviews`. Each lead is announced once (the store remembers what was sent); what Slack did not
    take is logged and counted, and the run goes on."""
    new = leads.filter(pl.col("tier").is_in(tiers)) if tiers is not None else leads.clear()
    new = new.filter(~pl.col("email").is_in(list(store.notified(new["email"].to_list(), "lead"))))
    for route, (text, emails) in lead_messages(new).items():
        if notifier.post(route, text):
            store.mark_notified(emails, "lead", run_id)
    waiting = held.filter(~pl.col("email").is_in(list(store.notified(held["email"].to_list(), "review"))))
    if not waiting.is_empty() and notifier.post("reviews", review_message(waiting)):
        store.mark_notified(waiting["email"].to_list(), "review", run_id)


@task(name="commit", cache_policy=NONE, persist_result=False)
def commit_step(store: Store, source_key: str, cursor: Cursor) -> None:
    """Move the source's watermark past the batch: only after the CRM and the store have it."""
    store.commit_watermark(source_key, cursor)
