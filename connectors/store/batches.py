"""One decided batch written in one transaction, and the stored signups and assignments it is checked against."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from connectors.store import rows as to_rows
from connectors.store.engine import StoreEngine, chunks, table_of, utc_now, write_state
from connectors.store.models import (
    Assessment,
    Assignment,
    AuditEvent,
    Company,
    DeadLetter,
    Lead,
    Review,
    SdrLoad,
    SignupRow,
)


@dataclass(frozen=True)
class BatchWrite:
    """What one decided batch writes to the store."""

    leads: pl.DataFrame  # routed leads
    rejects: pl.DataFrame  # source rows that could not become leads
    positions: dict[str, int]  # the SDR rotation after the batch
    held: pl.DataFrame | None = None  # leads held for review: recorded and queued, not assigned
    seen: pl.DataFrame | None = None  # every source row read, with its outcome
    crm_failures: pl.DataFrame | None = None  # the inputs the CRM refused
    crm_name: str = "local"


class BatchRecords(StoreEngine):
    def record_batch(self, batch: BatchWrite, run_id: str, source_key: str) -> None:
        """Write one decided batch in a single transaction: leads, companies, assessments, assignments,
        audit trail, dead letters, the inputs the CRM refused, the rotation it advanced, the leads
        held for review and the reviews this batch applied."""
        leads, held, seen, crm_failures = batch.leads, batch.held, batch.seen, batch.crm_failures
        now = utc_now()
        with self.engine.begin() as conn:
            for decided, kind in ((leads, "decided"), (held, "held")):
                if decided is None or decided.is_empty():
                    continue
                self._upsert(conn, Company, to_rows.companies_rows(decided, now), ["domain"])
                self._upsert(conn, Lead, to_rows.leads_rows(decided, run_id, now), ["email"])
                self._upsert(conn, Assessment, to_rows.assessments_rows(decided, run_id, now), ["email", "icp_version"])
                self._insert_new(conn, AuditEvent, to_rows.audit_rows(decided, run_id, now, kind), "event_key")
            assignments, fresh = to_rows.assignments_rows(leads, run_id, now), to_rows.newly_owned(leads)
            self._upsert(conn, Assignment, assignments.filter(fresh), ["email"])
            # an owner kept keeps its SLA clock and its first touch
            self._upsert(conn, Assignment, assignments.filter(~fresh), ["email"], keep=("owned_at", "touched_at"))
            self._add_loads(conn, to_rows.load_rows(leads))
            if held is not None and not held.is_empty():
                # a decision a person made meanwhile stands: the status is never overwritten
                self._upsert(conn, Review, to_rows.held_rows(held, run_id, now), ["email"], keep=("status",))
            if "review_status" in leads.columns:
                applied = leads.filter(pl.col("review_status").is_not_null())["email"].to_list()
                reviews = table_of(Review)
                for chunk in chunks(applied):
                    conn.execute(
                        sa.update(reviews).where(self._any_of(reviews.c.email, chunk)).values(applied_run=run_id)
                    )
            self._upsert(conn, DeadLetter, to_rows.dead_letters_rows(batch.rejects, source_key, run_id, now), ["key"])
            if crm_failures is not None and not crm_failures.is_empty():
                self._upsert(
                    conn, DeadLetter, to_rows.crm_dead_letters_rows(crm_failures, batch.crm_name, run_id, now), ["key"]
                )
            if seen is not None and not seen.is_empty():
                self._upsert(conn, SignupRow, to_rows.signup_rows(seen, source_key, run_id, now), ["key"])
            write_state(conn, "rotation", batch.positions)

    def _add_loads(self, conn: sa.Connection, loads: pl.DataFrame) -> None:
        """Add this batch's new leads to each owner's count of the day (what caps read)."""
        if loads.is_empty():
            return
        table = table_of(SdrLoad)
        insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
        stmt = insert.on_conflict_do_update(
            index_elements=["owner", "day"], set_={"assigned": table.c.assigned + insert.excluded.assigned}
        )
        conn.execute(stmt, loads.to_dicts())

    def sdr_loads(self, since: date) -> pl.DataFrame:
        """(owner, day, assigned) from `since` on: the counts daily and weekly caps read."""
        table = table_of(SdrLoad)
        rows = self._fetch(
            sa.select(table.c.owner, table.c.day, table.c.assigned).where(table.c.day >= since.isoformat())
        )
        return pl.DataFrame(rows, schema={"owner": pl.String, "day": pl.String, "assigned": pl.Int64}, orient="row")

    def waiting_leads(self) -> list[str]:
        """Leads waiting unowned in a queue whose SDRs were all away or at capacity, oldest first."""
        table = table_of(Assignment)
        query = sa.select(table.c.email).where(table.c.status == "waiting").order_by(table.c.assigned_at, table.c.email)
        return [row[0] for row in self._fetch(query)]

    # --- reviews ------------------------------------------------------------------

    def existing_assignments(self, emails: Sequence[str]) -> pl.DataFrame:
        table = table_of(Assignment)
        frames = [
            pl.DataFrame(
                self._fetch(
                    sa.select(table.c.email, table.c.queue, table.c.owner).where(self._any_of(table.c.email, chunk))
                ),
                schema={"email": pl.String, "queue": pl.String, "owner": pl.String},
                orient="row",
            )
            for chunk in chunks(emails)
        ]
        return (
            pl.concat(frames)
            if frames
            else pl.DataFrame(schema={"email": pl.String, "queue": pl.String, "owner": pl.String})
        )

    def account_owners(self, domains: Sequence[str], routing: Sequence[str] = ()) -> pl.DataFrame:
        """(company_domain, account_owner): who owns each company's other leads in the store (not the
        `routing` ones: a lead is never its own account), the most recent active assignment with an owner."""
        leads, assignments = table_of(Lead), table_of(Assignment)
        rows: list[tuple[Any, ...]] = []
        for chunk in chunks(sorted(set(domains))):
            rows += self._fetch(
                sa.select(leads.c.company_domain, assignments.c.owner, assignments.c.assigned_at, leads.c.email)
                .join(assignments, assignments.c.email == leads.c.email)
                .where(
                    self._any_of(leads.c.company_domain, chunk),
                    assignments.c.owner.is_not(None),
                    assignments.c.status == "active",
                )
            )
        frame = pl.DataFrame(
            rows,
            schema={
                "company_domain": pl.String,
                "account_owner": pl.String,
                "at": pl.Datetime("us"),
                "email": pl.String,
            },
            orient="row",
        )
        if routing:
            frame = frame.filter(~pl.col("email").is_in(list(routing)))
        return frame.sort("at", descending=True).unique("company_domain", keep="first").drop("at", "email")

    def owned_company_names(self) -> pl.DataFrame:
        """(company_domain, name) of the companies with a lead that has an owner: what a free-mail lead's
        typed company name is matched against."""
        query = sa.text(
            "select distinct c.domain as company_domain, c.name from companies c "
            "join leads l on l.company_domain = c.domain join assignments a on a.email = l.email "
            "where a.owner is not null and a.status = 'active' and c.name is not null"
        )
        with self.engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(query)]
        return pl.DataFrame(rows, schema={"company_domain": pl.String, "name": pl.String}, orient="row")

    def stored_signups(self, emails: Sequence[str]) -> pl.DataFrame:
        """(email, signed_up_at, input_hash) of these leads as the store holds them: the newest signup seen,
        and (from a CRM source) a hash of what its record said."""
        table = table_of(Lead)
        rows: list[tuple[Any, ...]] = []
        for chunk in chunks(list(emails)):
            rows += self._fetch(
                sa.select(table.c.email, table.c.signed_up_at, table.c.input_hash).where(
                    self._any_of(table.c.email, chunk)
                )
            )
        schema = {"email": pl.String(), "signed_up_at": pl.Datetime("us"), "input_hash": pl.String()}
        return pl.DataFrame(rows, schema=schema, orient="row")

    def signups(self, emails: Sequence[str]) -> pl.DataFrame:
        """These leads as signup rows again (their product signals included), to send through the pipeline."""
        query = sa.text(
            "select l.email, l.signup_id, l.first_name, l.last_name, l.job_title, l.country, l.phone, l.source, "
            "l.signed_up_at, l.signals, c.name as company_name, l.company_domain as website, l.crm_id as _crm_id "
            "from leads l left join companies c on c.domain = l.company_domain where l.email in :emails"
        ).bindparams(sa.bindparam("emails", expanding=True))
        rows: list[dict[str, Any]] = []
        for chunk in chunks(list(emails)):
            with self.engine.connect() as conn:
                rows += [dict(r) for r in conn.execute(query, {"emails": list(chunk)}).mappings()]
        frame = pl.DataFrame(rows, infer_schema_length=None)
        if frame.is_empty() or frame["signals"].null_count() == frame.height:
            return frame.drop("signals", strict=False)
        signals = frame["signals"].str.json_decode(infer_schema_length=None)
        return frame.with_columns(signals).unnest("signals")
