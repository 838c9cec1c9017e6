"""The crew's part of a batch: triage, one crew run per uncertain company, then guardrails.

- Only leads in the uncertain band reach the crew, grouped by company domain.
- Signup and web text reaches the LLM only as labelled JSON inside <untrusted> tags,
  with the fields it needs (no names, emails or phone numbers: leads are refs).
- An answer that fails validation is asked again up to `max_attempts` times, then dropped.
- The crew moves a score at most `max_adjustment` points; a larger disagreement keeps
  the rules score and flags the lead for review. Hard disqualifiers never reach the
  crew. Tiers follow the ICP's thresholds, never the LLM's word; queues follow routing.
- An LLM error, timeout, bad answer or spent budget leaves the rules assessment and
  flags the lead `needs_review`; the run carries on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import ValidationError

from connectors.canonical import Industries
from connectors.enrichment.base import Lookup
from connectors.enrichment.choose import STORED
from connectors.settings import LlmSettings, TriageSettings
from connectors.store import Store
from crew.budget import CrewRunFailed, LlmBudget
from crew.icp import Icp
from crew.models import CompanyAssessment, CompanyProfile, LeadJudgement
from crew.prompt_data import json_text, untrusted
from crew.research import PROVIDER, ResearchMeter, ResearchScope, apply_findings, findings_lookup
from crew.scorer import score_leads, tier_expr
from crew.triage import uncertain

log = logging.getLogger("leadq.crew")

# What the analyst may see of a lead: no names, emails or phone numbers.
LEAD_FIELDS = ("job_title", "seniority", "function", "country", "email_type", "score", "confidence", "reasons")
COMPANY_FIELDS = ("company_legal_name", "industry", "employees", "company_country", "description", "technologies")


# (inputs, the researcher's tools, after research, known research) -> (the analyst's answer text, or None
# when research settled every lead; calls, prompt tokens, completion tokens); raises on LLM failure
CrewRunner = Callable[
    [dict[str, Any], list[Any], Callable[[dict[str, Any]], dict[str, Any] | None], dict[str, Any] | None],
    tuple[str | None, int, int, int],
]


@dataclass
class Research:
    """What the researcher works with: its tools per company, its limits, and how findings merge."""

    tools: Callable[[str], tuple[list[Any], ResearchScope]]  # domain -> (tools, the scope they report to)
    meter: ResearchMeter
    confidence: float
    ttl_days: float
    industries: Industries | None
    country_aliases: dict[str, str]
    write_policy: dict[str, str]


@dataclass
class Judge:
    llm: LlmSettings
    triage: TriageSettings
    icp: Icp
    prompt_version: str
    run_crew: CrewRunner
    budget: LlmBudget
    research: Research
    top_reasons: int = 3

    def judge(self, leads: pl.DataFrame, store: Store | None, save: bool = True) -> pl.DataFrame:
        """Add method, needs_review and evidence; crew-assessed leads get the crew's (bounded) score."""
        leads = decided_by_rules(leads).with_columns(pl.lit(None, dtype=pl.String).alias("evidence"))
        todo = leads.filter(uncertain(self.triage))
        if todo.is_empty():
            return leads
        domains = sorted(todo["company_domain"].unique().to_list())
        cached = (
            store.crew_judgements(domains, self.icp.version, self.prompt_version, self.llm.cache_ttl_days)
            if store
            else {}
        )
        known = store.cached_lookups(domains, {PROVIDER: self.research.ttl_days}) if store else {}
        # the research's findings by domain (cached within the TTL, or made now); one batch's own
        found = {d: Lookup.from_json(json.loads(payload)) for (d, _), payload in known.items()}
        researched_now: dict[str, Lookup] = {}
        # what people edited on these companies: the research never overwrites it (read once per batch)
        edited = store.company_frame(domains, STORED) if store and store.exists() else None
        groups = {d: todo.filter(pl.col("company_domain") == d) for d in domains}
        # CrewAI prints its warnings on stdout, where `--json` output goes: they go to stderr instead
        with (
            contextlib.redirect_stdout(sys.stderr),
            ThreadPoolExecutor(max_workers=self.llm.max_workers, thread_name_prefix="crew") as pool,
        ):
            outcomes = list(
                pool.map(
                    lambda d: self._company(d, groups[d], cached.get(d, {}), found, researched_now, edited), domains
                )
            )
        answers: dict[str, dict[str, Any]] = {}
        for domain, (judged, fresh) in zip(domains, outcomes, strict=True):
            answers.update(judged)
            if fresh and store and save:
                store.save_judgements(
                    domain, self.icp.version, self.prompt_version, {**cached.get(domain, {}), **judged}
                )
        if researched_now and store and save:
            store.save_lookups([lookup.cache_row(domain, PROVIDER) for domain, lookup in researched_now.items()])
        if any(lookup.fields for lookup in found.values()):
            # the research's facts reach every lead of the company, and the rules score them again:
            # a lead they move out of the uncertain band is decided by rules
            leads = self._rescored(leads, found, edited)
            still = set(leads.filter(uncertain(self.triage))["email"].to_list())
            answers = {e: a for e, a in answers.items() if e in still}
            todo = todo.filter(pl.col("email").is_in(list(still)))
        return self._apply(leads, todo, answers)

    def _rescored(self, leads: pl.DataFrame, found: dict[str, Lookup], edited: pl.DataFrame | None) -> pl.DataFrame:
        """Leads with the researched facts merged (write policy, people's `edited` fields) and scored again."""
        with_facts = {d: lookup for d, lookup in found.items() if lookup.fields}
        r = self.research
        merged = apply_findings(leads, with_facts, r.industries, r.country_aliases, r.write_policy, edited)
        researched = pl.col("company_domain").is_in(list(with_facts))
        again = score_leads(merged.filter(researched), self.icp, self.top_reasons)
        return (
            pl.concat([merged.filter(~researched), again.select(merged.columns)])
            .join(leads.select("email").with_row_index("_at"), on="email", how="left")
            .sort("_at")
            .drop("_at")
        )

    def _company(
        self,
        domain: str,
        group: pl.DataFrame,
        cached: dict[str, Any],
        found: dict[str, Lookup],
        researched_now: dict[str, Lookup],
        edited: pl.DataFrame | None,
    ) -> tuple[dict[str, dict[str, Any]], bool]:
        """Judgements by email for one company's uncertain leads, and whether the crew ran; the research's
        findings go into `found` (and `researched_now`, when made now)."""
        missing = group.filter(~pl.col("email").is_in(list(cached)))
        judged = {e: cached[e] for e in group["email"].to_list() if e in cached}
        if missing.is_empty():
            return judged, False
        refs = {f"L{i + 1}": email for i, email in enumerate(missing["email"].to_list())}
        inputs = {
            "domain": domain,
            "company": untrusted(_company_facts(missing.row(0, named=True))),
            "icp": self._icp_text(),
            "leads": untrusted(
                [{"ref": ref, **_lead_facts(row)} for ref, row in zip(refs, missing.to_dicts(), strict=True)]
            ),
        }
        failure = "not attempted"
        tools, scope = self.research.tools(domain)
        asked = dict(refs)  # the leads the analyst is asked about: those the research left uncertain

        def after_research(research: dict[str, Any]) -> dict[str, Any] | None:
            lookup = found.get(domain)
            if lookup is None:
                try:
                    profile = CompanyProfile.model_validate(research)
                except ValidationError:
                    profile = CompanyProfile()
                lookup, dropped = findings_lookup(profile, scope, self.research.confidence)
                self.research.meter.researched(lookup, dropped)
                found[domain] = researched_now[domain] = lookup
            if not lookup.fields:
                return inputs
            rescored = self._rescored(missing, {domain: lookup}, edited)
            still = rescored.filter(uncertain(self.triage))
            asked.clear()
            asked.update({ref: email for ref, email in refs.items() if email in set(still["email"].to_list())})
            if not asked:
                return None
            rows = {r["email"]: r for r in still.to_dicts()}
            return {
                **inputs,
                "company": untrusted(_company_facts(still.row(0, named=True))),
                "leads": untrusted([{"ref": ref, **_lead_facts(rows[email])} for ref, email in asked.items()]),
            }

        for attempt in range(1, self.llm.max_attempts + 1):
            held = self.budget.reserve()
            if held is None:
                return {**judged, **{e: {"failed": "LLM budget for this run is spent"} for e in refs.values()}}, False
            known = _research_of(found[domain]) if domain in found else None
            try:
                raw, calls, prompt, completion = self.run_crew(inputs, tools, after_research, known)
            except Exception as exc:  # an LLM outage must not fail the batch
                self.budget.settle(held, *(exc.usage if isinstance(exc, CrewRunFailed) else (1, 0, 0)))
                log.warning("crew run for %s failed (attempt %d): %s", domain, attempt, _short(exc))
                failure = f"LLM error: {_short(exc)}"
                continue
            if raw is None:  # the research settled every lead: rules decide them, no analyst was asked
                self.budget.settle(held, calls, prompt, completion)
                return judged, False
            try:
                answer = CompanyAssessment.model_validate_json(json_text(raw))
            except ValidationError as exc:
                self.budget.settle(held, calls, prompt, completion)
                log.warning("crew answer for %s failed validation (attempt %d): %s", domain, attempt, _short(exc))
                failure = f"answer failed validation: {_short(exc)}"
                continue
            by_ref: dict[str, LeadJudgement] = {j.ref: j for j in answer.leads}
            fresh = {
                email: by_ref[ref].model_dump() if ref in by_ref else {"failed": "no answer for this lead"}
                for ref, email in asked.items()
            }
            self.budget.settle(
                held, calls, prompt, completion, leads=sum(1 for v in fresh.values() if "failed" not in v)
            )
            return {**judged, **fresh}, True
        return {**judged, **{e: {"failed": failure} for e in refs.values()}}, False

    def _apply(self, leads: pl.DataFrame, todo: pl.DataFrame, answers: dict[str, dict[str, Any]]) -> pl.DataFrame:
        """Guardrails, vectorised: bounded moves, review on larger ones, tiers from thresholds."""
        rows = [
            {
                "email": e,
                "crew_score": a.get("score"),
                "crew_confidence": a.get("confidence"),
                "crew_summary": a.get("summary"),
                "crew_failed": a.get("failed"),
                "crew_evidence": json.dumps(a.get("evidence")) if "evidence" in a else None,
            }
            for e, a in answers.items()
        ]
        schema = {
            "email": pl.String,
            "crew_score": pl.Int64,
            "crew_confidence": pl.Float64,
            "crew_summary": pl.String,
            "crew_failed": pl.String,
            "crew_evidence": pl.String,
        }
        crew = pl.DataFrame(rows, schema=schema, orient="row")
        frame = leads.join(crew, on="email", how="left")
        judged = pl.col("crew_score").is_not_null()
        within = judged & ((pl.col("crew_score") - pl.col("score")).abs() <= self.llm.max_adjustment)
        too_far = judged & ~within
        frame = frame.with_columns(
            pl.when(within).then(pl.col("crew_score")).otherwise(pl.col("score")).cast(pl.Int32).alias("score"),
            pl.when(within).then(pl.col("crew_confidence")).otherwise(pl.col("confidence")).alias("confidence"),
            pl.when(within)
            .then(pl.lit("crew"))
            .when(too_far)
            .then(pl.lit("review"))
            .otherwise(pl.lit("rules"))
            .alias("method"),
            (too_far | pl.col("crew_failed").is_not_null()).alias("needs_review"),
            pl.when(judged).then(pl.col("crew_evidence")).alias("evidence"),
            _reasons(within, too_far),
        )
        frame = frame.with_columns(tier_expr(self.icp))
        return frame.drop("crew_score", "crew_confidence", "crew_summary", "crew_failed", "crew_evidence")

    def _icp_text(self) -> str:
        lines = []
        for name, c in self.icp.criteria.items():
            scale = (
                f"values {c.match}" if c.match else f"bands {[b.model_dump(exclude_none=True) for b in c.bands or []]}"
            )
            lines.append(f"- {name}: field {c.field}, weight {c.weight:g}, {scale}")
        lines.append(f"Tiers by minimum score: {self.icp.tiers}")
        return "\n".join(lines)


def _reasons(within: pl.Expr, too_far: pl.Expr) -> pl.Expr:
    """The crew's summary first when it decided; why a person must look when it did not."""
    reasons, summary = pl.col("reasons"), pl.col("crew_summary")
    disagreed = pl.format(
        "review: the crew said {} (rules {}): {}; {}", pl.col("crew_score"), pl.col("score"), summary, reasons
    )
    return (
        pl.when(within)
        .then(pl.format("crew: {}; {}", summary, reasons))
        .when(too_far)
        .then(disagreed)
        .when(pl.col("crew_failed").is_not_null())
        .then(pl.format("review: {}; {}", pl.col("crew_failed"), reasons))
        .otherwise(reasons)
        .alias("reasons")
    )


def decided_by_rules(leads: pl.DataFrame) -> pl.DataFrame:
    """Leads as the rules decided them (no LLM configured, or not in the uncertain band)."""
    return leads.with_columns(pl.lit("rules").alias("method"), pl.lit(False).alias("needs_review"))


def prompt_version(folder: Path) -> str:
    """A hash of the crew's prompt files: a changed prompt is a new cache key."""
    digest = hashlib.sha256()
    for name in ("agents.yaml", "tasks.yaml"):
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()[:12]


def _lead_facts(row: dict[str, Any]) -> dict[str, Any]:
    facts = {k: row.get(k) for k in LEAD_FIELDS if row.get(k) not in (None, "")}
    facts["rules_score"] = facts.pop("score", None)
    return facts


def _company_facts(row: dict[str, Any]) -> dict[str, Any]:
    facts = {k: row.get(k) for k in COMPANY_FIELDS if row.get(k) not in (None, "")}
    facts["domain"] = row.get("company_domain")
    return facts


def _research_of(lookup: Lookup) -> dict[str, Any]:
    """Research done before (cached per company): its findings, as the analyst reads research."""
    findings = [{"field": name, "value": f.value, "url": f.url} for name, f in lookup.fields.items()]
    return {"findings": findings, "researched_at": lookup.fetched_at} if findings else {"findings": []}


def _short(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
