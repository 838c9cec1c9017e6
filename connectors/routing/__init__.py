"""SDR routing: tier x segment x territory → queue, then weighted round-robin to an owner.

The rotation position of each queue is stored with the assignments it produced, in one
transaction, so a crash never assigns a lead twice nor skips an SDR's turn. A lead that
already has an owner keeps it and takes no turn, whatever its new tier or queue, unless
it moves into a queue with `reassign: true` (as with owners set in the CRM).
"""

from __future__ import annotations

from collections import Counter

import polars as pl

from connectors.domain import Tier
from connectors.routing.availability import Availability, availability
from connectors.routing.config import RoutingConfig, load_routing
from connectors.routing.turns import turns_by_queue

ACCOUNT = "_account"  # the domain of the lead's account: its company, or the company its typed name matched

__all__ = [
    "Availability",
    "RoutingConfig",
    "assign_queues",
    "availability",
    "load_routing",
    "rotation",
    "route_leads",
    "staffed_queues",
]


def rotation(weights: dict[str, int]) -> list[str]:
    """One period of smooth weighted round-robin: weights {a: 2, b: 1} → [a, b, a]."""
    current = dict.fromkeys(weights, 0)
    total = sum(weights.values())
    order: list[str] = []
    for _ in range(total):
        for sdr, weight in weights.items():
            current[sdr] += weight
        pick = max(current, key=lambda s: current[s])
        current[pick] -= total
        order.append(pick)
    return order


def route_leads(
    leads: pl.DataFrame,
    config: RoutingConfig,
    positions: dict[str, int],
    existing: pl.DataFrame,
    crm_owners: pl.DataFrame | None = None,
    assign: bool = True,
    account_owners: pl.DataFrame | None = None,
    available: Availability | None = None,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Add segment, territory, queue and owner; return the advanced rotation positions.

    `existing` holds (email, queue, owner) of leads already assigned in the store;
    `crm_owners` (email, crm_owner) the owners already set in the CRM, which are kept
    (and recorded as the lead's owner) unless the lead's queue says `reassign: true`.
    A reviewer's `queue_override` / `owner_override` columns, where present, win.
    With `assign` False (owner assignment off) no lead takes a turn in any rotation.
    Leads that already have their queues (the review step assigns them) are not assigned again.

    Account routing (`account_routing`, on by default): a lead that would take a turn goes instead to
    its company's owner, pinned in `accounts:` or found in `account_owners` (company_domain,
    account_owner: who owns the company's other leads), and takes no turn. Within a batch the first
    lead of a new company takes the turn and the company's other leads follow it to the same owner.

    `available` says who is away, outside working hours or at a cap (default: everyone, no caps):
    such SDRs are skipped and the turn goes on; when nobody in a queue can take a lead, it waits
    there unowned (`waiting`) for a later run. `routing_reason` says why each lead has its owner
    (or none); `load_day` is set for each lead given to an owner now, the day its owner's caps count it.
    """
    now = available or Availability.anytime()
    frame = leads if {"segment", "territory", "queue"} <= set(leads.columns) else assign_queues(leads, config)
    override = pl.col("owner_override") if "owner_override" in frame.columns else pl.lit(None, dtype=pl.String)
    frame = frame.join(
        existing.select("email", pl.col("queue").alias("_old_queue"), pl.col("owner").alias("_old_owner")),
        on="email",
        how="left",
    )
    crm = crm_owners if crm_owners is not None else pl.DataFrame(schema={"email": pl.String, "crm_owner": pl.String})
    frame = frame.drop("crm_owner", strict=False).join(crm.unique("email"), on="email", how="left")
    cycles = {q: rotation({s.email: s.weight for s in queue.sdrs}) for q, queue in config.queues.items()}
    staffed = staffed_queues(config) if assign else []
    reassigns = _queue_in([q for q, queue in config.queues.items() if queue.reassign])
    leaves_away = _queue_in([q for q, queue in config.queues.items() if queue.reassign_when_away])
    away = list(now.away)
    crm_away = (pl.col("crm_owner").is_in(away) & leaves_away).fill_null(False)
    old_away = (pl.col("_old_owner").is_in(away) & leaves_away).fill_null(False)
    keeps_crm = pl.col("crm_owner").is_not_null() & ~reassigns & ~crm_away
    # an owner leadq recorded from the CRM is the CRM's owner: a reassigning queue replaces it too
    from_crm = (pl.col("_old_owner") == pl.col("crm_owner")).fill_null(False)
    # a requalified lead keeps its owner, in another queue too (and disqualified: the record stays,
    # marked), unless it moved into a queue that reassigns; in its own queue only a CRM owner is replaced
    same_queue = (pl.col("_old_queue") == pl.col("queue")).fill_null(False)
    keeps_local = pl.col("_old_owner").is_not_null() & ((same_queue & ~(reassigns & from_crm)) | ~reassigns)
    keeps = keeps_crm | (keeps_local.fill_null(False) & ~old_away) | override.is_not_null()
    needs_turn = (pl.col("queue").is_in(staffed) & ~keeps).fill_null(False)
    frame = _with_account_owners(frame, config, account_owners)  # adds ACCOUNT: the domain of the lead's account
    account_away = pl.col("_account_owner").is_in(away).fill_null(False)
    by_account = needs_turn & pl.col("_account_owner").is_not_null() & ~account_away
    open_turn = needs_turn & ~by_account
    company = pl.col(ACCOUNT)
    leads_company = company.is_null() | ~pl.lit(config.account_routing)
    if config.account_routing:  # a new company's first lead in the batch takes the turn; the others follow it
        leads_company = leads_company | (pl.int_range(pl.len()).over(company, open_turn) == 0)
    away_note = (
        pl.when(needs_turn & account_away)
        .then(pl.format("account owner {} of {} is away", "_account_owner", company))
        .when(needs_turn & crm_away)
        .then(pl.format("owner {} is away", "crm_owner"))
        .when(needs_turn & old_away)
        .then(pl.format("owner {} is away", "_old_owner"))
    )
    frame = frame.with_columns(
        (open_turn & leads_company).alias("_turn"),
        (open_turn & ~leads_company).alias("_follow"),
        by_account.alias("_by_account"),
        away_note.alias("_away_note"),
    )
    frame = frame.with_columns(pl.when("_turn").then(pl.int_range(pl.len()).over("queue", "_turn")).alias("_rank"))
    given = Counter(frame.filter("_by_account")["_account_owner"].to_list())  # accounts' leads count toward caps
    wanted = frame.filter("_turn").group_by("queue").len().sort("queue")
    taken, advanced = turns_by_queue(wanted, cycles, positions, now, given)
    frame = frame.join(taken, on=["queue", "_rank"], how="left", maintain_order="left").with_columns(
        pl.when(override.is_not_null())
        .then(override)
        .when(keeps_crm)
        .then(pl.col("crm_owner"))
        .when(keeps)
        .then(pl.col("_old_owner"))
        .when(pl.col("_by_account"))
        .then(pl.col("_account_owner"))
        .when(pl.col("_turn"))
        .then(pl.col("_next_owner"))
        .alias("owner")
    )
    leaders = frame.filter(pl.col("_turn") & company.is_not_null()).select(company, pl.col("owner").alias("_leader"))
    leaders = leaders.unique(ACCOUNT, keep="first")
    frame = frame.join(leaders, on=ACCOUNT, how="left", maintain_order="left").with_columns(
        pl.when("_follow").then(pl.col("_leader")).otherwise(pl.col("owner")).alias("owner")
    )
    waiting = (pl.col("_turn") | pl.col("_follow")) & pl.col("owner").is_null()
    rotation_reason = pl.concat_str(
        [pl.format("rotation of {}", "queue"), pl.col("_away_note"), pl.col("_skipped")],
        separator="; ",
        ignore_nulls=True,
    )
    typed = pl.col("company_name") if "company_name" in frame.columns else pl.lit("")
    reason = (
        pl.when(override.is_not_null())
        .then(pl.lit("override"))
        .when(keeps_crm)
        .then(pl.lit("owner in the CRM kept"))
        .when(keeps)
        .then(pl.lit("owner kept"))
        .when(pl.col("_by_account") & pl.col("_pinned"))
        .then(pl.format("account {} pinned in routing.yaml", company))
        .when(pl.col("_by_account") & pl.col("company_domain").is_null())
        .then(pl.format("account owner of {} (company name '{}')", company, typed))
        .when(pl.col("_by_account"))
        .then(pl.format("account owner of {}", company))
        .when(pl.col("_follow") & pl.col("owner").is_not_null())
        .then(pl.format("account owner of {} (its first lead in this batch)", company))
        .when(pl.col("_follow"))
        .then(pl.format("waiting in {} with the first lead of {}", "queue", company))
        .when(pl.col("_turn") & pl.col("owner").is_not_null())
        .then(rotation_reason)
        .when(pl.col("_turn"))
        .then(pl.format("waiting in {}: nobody can take it now ({})", "queue", "_skipped"))
    )
    new_owner = pl.col("owner").is_not_null() & ~(keeps_crm | keeps)
    frame = frame.with_columns(
        reason.alias("routing_reason"),
        waiting.fill_null(False).alias("waiting"),
        pl.when(new_owner | override.is_not_null())
        .then(pl.col("owner").replace_strict(now.days, default=now.day_of(""), return_dtype=pl.String))
        .alias("load_day"),
    )
    helpers = ["_old_queue", "_old_owner", "_turn", "_rank", "_next_owner", "_skipped", "_follow", "_leader"]
    return frame.drop(*helpers, "_by_account", "_account_owner", "_pinned", "_away_note", ACCOUNT), advanced


def _queue_in(queues: list[str]) -> pl.Expr:
    return pl.col("queue").is_in(queues).fill_null(False)


def _with_account_owners(frame: pl.DataFrame, config: RoutingConfig, owners: pl.DataFrame | None) -> pl.DataFrame:
    """ACCOUNT: the lead's company domain, else (a free-mail lead) the `account_domain` its typed company
    name matched; `_account_owner`: the owner pinned in `accounts:` (`_pinned`), else, with account routing,
    the account's owner; null for a lead without an account."""
    if "company_domain" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias("company_domain"))
    matched = pl.col("account_domain") if "account_domain" in frame.columns else pl.lit(None, dtype=pl.String)
    frame = frame.with_columns(pl.coalesce(pl.col("company_domain"), matched).alias(ACCOUNT))
    pinned = pl.DataFrame(
        list(config.pinned_owners().items()), schema={ACCOUNT: pl.String, "_pin": pl.String}, orient="row"
    )
    known = owners if owners is not None and config.account_routing else None
    if known is None:
        known = pl.DataFrame(schema={"company_domain": pl.String, "account_owner": pl.String})
    return (
        frame.join(pinned, on=ACCOUNT, how="left", maintain_order="left")
        .join(
            known.unique("company_domain").rename({"company_domain": ACCOUNT}),
            on=ACCOUNT,
            how="left",
            maintain_order="left",
        )
        .with_columns(
            pl.coalesce("_pin", "account_owner").alias("_account_owner"), pl.col("_pin").is_not_null().alias("_pinned")
        )
        .drop("_pin", "account_owner")
    )


def assign_queues(leads: pl.DataFrame, config: RoutingConfig) -> pl.DataFrame:
    """Add segment, territory and queue (a reviewer's `queue_override` wins); no owners, no turns."""
    frame = leads.with_columns(_segment(config), _territory(leads, config)).with_columns(_queue(config))
    pins = config.pinned_queues()
    if pins and "company_domain" in frame.columns:  # a named account's leads go to its queue, whatever the rules
        pinned = pl.col("company_domain").replace_strict(pins, default=None, return_dtype=pl.String)
        frame = frame.with_columns(
            pl.when(pl.col("queue").is_not_null()).then(pl.coalesce(pinned, "queue")).alias("queue")
        )
    if "queue_override" in frame.columns:
        frame = frame.with_columns(pl.coalesce("queue_override", "queue").alias("queue"))
    return frame


def staffed_queues(config: RoutingConfig) -> list[str]:
    """Queues with SDRs to take turns (a marketing queue has none)."""
    return [name for name, queue in config.queues.items() if queue.sdrs]


def _segment(config: RoutingConfig) -> pl.Expr:
    employees = pl.col("employees") if config.segments else pl.lit(None)
    expr: pl.Expr = pl.lit("unknown")
    for seg in sorted(config.segments, key=lambda s: s.min_employees):
        expr = pl.when(employees >= seg.min_employees).then(pl.lit(seg.name)).otherwise(expr)
    return pl.when(employees.is_null()).then(pl.lit("unknown")).otherwise(expr).alias("segment")


def _territory(leads: pl.DataFrame, config: RoutingConfig) -> pl.Expr:
    present: list[pl.Expr] = [pl.col(c) for c in ("company_country", "country") if c in leads.columns]
    country = pl.coalesce(present or [pl.lit(None, dtype=pl.String)])
    mapping = {code.upper(): name for name, codes in config.territories.items() for code in codes}
    return country.replace_strict(mapping, default="other", return_dtype=pl.String).alias("territory")


def _queue(config: RoutingConfig) -> pl.Expr:
    expr: pl.Expr = pl.lit(config.fallback_queue)
    for rule in reversed(config.rules):
        match = pl.lit(True)
        for column, allowed in (("tier", rule.tiers), ("segment", rule.segments), ("territory", rule.territories)):
            if allowed is not None:
                match = match & pl.col(column).is_in(allowed)
        expr = pl.when(match).then(pl.lit(rule.queue)).otherwise(expr)
    disqualified = pl.col("tier") == Tier.DISQUALIFIED.value
    return pl.when(disqualified).then(pl.lit(None, dtype=pl.String)).otherwise(expr).alias("queue")
