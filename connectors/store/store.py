"""The local store: leadq's records and the embedded CRM, on any SQLAlchemy database.

Writes are bulk upserts keyed by email (companies by domain), so writing the same
batch twice changes nothing. `record_batch` writes one batch in one transaction.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel

from connectors.errors import ConfigError, FatalError
from connectors.redact import scrub, secret_url
from connectors.sources.cursor import Cursor
from connectors.store import rows as to_rows
from connectors.store.models import (
    TABLES,
    Assessment,
    Assignment,
    AuditEvent,
    Company,
    CrewCache,
    DeadLetter,
    EnrichmentCache,
    Label,
    Lead,
    Notification,
    Review,
    Run,
    SignupRow,
    SyncState,
)

_CHUNK = 10_000


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Store:
    def __init__(self, url: str) -> None:
        self.url = secret_url(url)
        try:
            # no pool for server databases: a run's few large transactions need no pooled connections,
            # and none is left open when a run's context is dropped
            pool = {} if url.startswith("sqlite") else {"poolclass": sa.pool.NullPool}
            self.engine = sa.create_engine(url, future=True, **pool)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise ConfigError(f"settings.toml: key 'store.url': cannot use {scrub(url)!r}: {exc}") from exc
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)

    def exists(self) -> bool:
        """Whether the store has been created; a dry run on a fresh machine must not create it."""
        database = self.engine.url.database
        if self.engine.dialect.name == "sqlite" and database and database != ":memory:" and not Path(database).exists():
            return False
        try:
            return sa.inspect(self.engine).has_table(SyncState.__tablename__)
        except sa.exc.OperationalError as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc: sa.exc.OperationalError) -> FatalError:
        return FatalError(f"store {self.engine.url.render_as_string(hide_password=True)}: cannot connect: {exc.orig}")

    def create(self) -> None:
        database = self.engine.url.database
        if self.engine.dialect.name == "sqlite" and database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        try:
            SQLModel.metadata.create_all(self.engine, tables=[_table(t) for t in TABLES])
            self._add_new_columns()
        except sa.exc.OperationalError as exc:
            raise self._unreachable(exc) from exc

    def _add_new_columns(self) -> None:
        """A store made by an older leadq gets the (nullable) columns added since: no data is touched."""
        inspector = sa.inspect(self.engine)
        with self.engine.begin() as conn:
            for model in TABLES:
                table = _table(model)
                present = {c["name"] for c in inspector.get_columns(table.name)}
                for column in table.columns:
                    if column.name not in present and column.nullable:
                        kind = column.type.compile(dialect=conn.dialect)
                        conn.execute(sa.text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))

    @contextmanager
    def writer_lock(self, wait_s: float) -> Iterator[None]:
        """One writing run at a time per store, across processes and machines: the watermark, the SDR
        rotation and the CRM writes are read and advanced by one run only, so no batch is processed twice.

        PostgreSQL: a session advisory lock (released if the process dies); SQLite: a lock on a file
        next to the database. Raises FatalError when another run still holds it after `wait_s`."""
        name = f"leadq-writer:{self.engine.url.database}"
        deadline = time.monotonic() + wait_s
        if self.engine.dialect.name == "postgresql":
            key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
            try:
                conn = self.engine.connect()
            except sa.exc.OperationalError as exc:
                raise self._unreachable(exc) from exc
            with conn:
                while not conn.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar():
                    self._wait_or_fail(deadline, wait_s)
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                    conn.commit()
            return
        database = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not database or database == ":memory:":
            yield
            return
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        with Path(f"{database}.lock").open("a") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    self._wait_or_fail(deadline, wait_s)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _wait_or_fail(self, deadline: float, wait_s: float) -> None:
        if time.monotonic() >= deadline:
            raise FatalError(
                f"store {self.engine.url.render_as_string(hide_password=True)}: another leadq run is writing to "
                f"it; this one waited {wait_s:g} s and did nothing (run again, it starts where that one ends; "
                "[run] lock_wait_s sets the wait)"
            )
        time.sleep(0.2)

    # --- small state -------------------------------------------------------------

    def state(self, key: str) -> Any:
        with self.engine.connect() as conn:
            table = _table(SyncState)
            value = conn.execute(sa.select(table.c.value).where(table.c.key == key)).scalar()
        return json.loads(value) if value is not None else None

    def set_state(self, key: str, value: Any) -> None:
        with self.engine.begin() as conn:
            _set_state(conn, key, value)

    def watermark(self, source_key: str) -> Cursor:
        return Cursor.from_json(self.state(f"watermark:{source_key}"))

    def commit_watermark(self, source_key: str, cursor: Cursor) -> None:
        """Advance the watermark; called only after the batch is committed to the CRM."""
        with self.engine.begin() as conn:
            _set_state(conn, f"watermark:{source_key}", cursor.to_json())

    def rotation_positions(self) -> dict[str, int]:
        positions = self.state("rotation") or {}
        return {str(k): int(v) for k, v in positions.items()}

    # --- reads --------------------------------------------------------------------

    def existing_assignments(self, emails: Sequence[str]) -> pl.DataFrame:
        table = _table(Assignment)
        frames = [
            pl.DataFrame(
                self._fetch(sa.select(table.c.email, table.c.queue, table.c.owner).where(table.c.email.in_(chunk))),
                schema={"email": pl.String, "queue": pl.String, "owner": pl.String},
                orient="row",
            )
            for chunk in _chunks(emails)
        ]
        return (
            pl.concat(frames)
            if frames
            else pl.DataFrame(schema={"email": pl.String, "queue": pl.String, "owner": pl.String})
        )

    def stored_signups(self, emails: Sequence[str]) -> pl.DataFrame:
        """(email, signed_up_at) of these leads as the store holds them: the newest signup seen."""
        table = _table(Lead)
        rows: list[tuple[Any, ...]] = []
        for chunk in _chunks(list(emails)):
            rows += self._fetch(sa.select(table.c.email, table.c.signed_up_at).where(table.c.email.in_(chunk)))
        return pl.DataFrame(rows, schema={"email": pl.String, "signed_up_at": pl.Datetime("us")}, orient="row")

    def known_dead_letters(self, keys: Sequence[str]) -> set[str]:
        """Which of these dead-letter keys are recorded already (the row was rejected by an earlier run)."""
        table = _table(DeadLetter)
        found: set[str] = set()
        for chunk in _chunks(list(keys)):
            found.update(row[0] for row in self._fetch(sa.select(table.c.key).where(table.c.key.in_(chunk))))
        return found

    def mark_crashed_runs(self, current_run: str) -> list[str]:
        """Runs still `running` that are not this one: they died (the caller holds the writer lock, so no
        other run is writing). They become `crashed`, with the time it was noticed."""
        table = _table(Run)
        with self.engine.begin() as conn:
            stale = [
                row[0]
                for row in conn.execute(
                    sa.select(table.c.run_id).where(table.c.status == "running", table.c.run_id != current_run)
                )
            ]
            if stale:
                conn.execute(
                    sa.update(table).where(table.c.run_id.in_(stale)).values(status="crashed", finished_at=_now())
                )
        return stale

    def companies(self, domains: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored company rows for these domains (what the CRM already knows)."""
        table = _table(Company)
        rows: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(domains):
            with self.engine.connect() as conn:
                for row in conn.execute(sa.select(table).where(table.c.domain.in_(chunk))).mappings():
                    rows[row["domain"]] = dict(row)
        return rows

    def cached_lookups(self, domains: Sequence[str], max_age: dict[str, float]) -> dict[tuple[str, str], str]:
        """Fresh cached lookups as JSON, keyed by (domain, provider); `max_age` is days per provider."""
        table = _table(EnrichmentCache)
        now = _now()
        found: dict[tuple[str, str], str] = {}
        for chunk in _chunks(domains):
            query = sa.select(table.c.domain, table.c.provider, table.c.fetched_at, table.c.payload).where(
                table.c.domain.in_(chunk), table.c.provider.in_(list(max_age))
            )
            for domain, provider, fetched_at, payload in self._fetch(query):
                if (now - fetched_at).total_seconds() <= max_age[provider] * 86400:
                    found[(domain, provider)] = payload
        return found

    def save_lookups(self, rows: list[dict[str, Any]]) -> None:
        """Upsert (domain, provider, status, fetched_at, payload) rows into the cache."""
        with self.engine.begin() as conn:
            self._upsert(conn, EnrichmentCache, rows, ["domain", "provider"])

    def crew_judgements(
        self, domains: Sequence[str], icp_version: str, prompt_version: str, ttl_days: float
    ) -> dict[str, dict[str, Any]]:
        """Cached crew judgements by domain (then by lead email), if younger than the TTL."""
        table = _table(CrewCache)
        now = _now()
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(domains):
            query = sa.select(table.c.domain, table.c.fetched_at, table.c.payload).where(
                table.c.domain.in_(chunk), table.c.icp_version == icp_version, table.c.prompt_version == prompt_version
            )
            for domain, fetched_at, payload in self._fetch(query):
                if (now - fetched_at).total_seconds() <= ttl_days * 86400:
                    found[domain] = json.loads(payload)
        return found

    def save_judgements(self, domain: str, icp_version: str, prompt_version: str, judgements: dict[str, Any]) -> None:
        row = {
            "domain": domain,
            "icp_version": icp_version,
            "prompt_version": prompt_version,
            "fetched_at": _now(),
            "payload": json.dumps(judgements),
        }
        with self.engine.begin() as conn:
            self._upsert(conn, CrewCache, [row], ["domain", "icp_version", "prompt_version"])

    def edit_company(self, domain: str, values: dict[str, Any], who: str) -> None:
        """A person's edit: set the values and mark the fields so enrichment never overwrites them."""
        current = self.companies([domain]).get(domain) or {"domain": domain}
        edited = sorted(set(json.loads(current.get("edited_fields") or "[]")) | set(values))
        provenance = json.loads(current.get("provenance") or "{}")
        at = _now().isoformat(timespec="seconds")
        for name, value in values.items():
            provenance[name] = {
                "value": value,
                "source": f"person:{who}",
                "method": "edit",
                "fetched_at": at,
                "confidence": 1.0,
            }
        row = {
            **values,
            "domain": domain,
            "edited_fields": json.dumps(edited),
            "provenance": json.dumps(provenance),
            "updated_at": _now(),
        }
        with self.engine.begin() as conn:
            self._upsert(conn, Company, [row], ["domain"])

    def signups(self, emails: Sequence[str]) -> pl.DataFrame:
        """These leads as signup rows again (their product signals included), to send through the pipeline."""
        query = sa.text(
            "select l.email, l.signup_id, l.first_name, l.last_name, l.job_title, l.country, l.phone, l.source, "
            "l.signed_up_at, l.signals, c.name as company_name, l.company_domain as website "
            "from leads l left join companies c on c.domain = l.company_domain where l.email in :emails"
        ).bindparams(sa.bindparam("emails", expanding=True))
        rows: list[dict[str, Any]] = []
        for chunk in _chunks(list(emails)):
            with self.engine.connect() as conn:
                rows += [dict(r) for r in conn.execute(query, {"emails": list(chunk)}).mappings()]
        frame = pl.DataFrame(rows, infer_schema_length=None)
        if frame.is_empty() or frame["signals"].null_count() == frame.height:
            return frame.drop("signals", strict=False)
        signals = frame["signals"].str.json_decode(infer_schema_length=None)
        return frame.with_columns(signals).unnest("signals")

    def dead_letters(
        self,
        crm: bool | None = None,
        limit: int = 100_000,
        newest_first: bool = False,
        keys: Sequence[str] | None = None,
    ) -> pl.DataFrame:
        """Dead letters: all, only the CRM's refusals (crm=True) or only source rows (crm=False); oldest
        first unless `newest_first`; only these `keys` when given."""
        table = _table(DeadLetter)
        order = (table.c.created_at.desc(), table.c.key) if newest_first else (table.c.created_at, table.c.key)
        query = sa.select(table).order_by(*order).limit(limit)
        if crm is not None:
            from_crm = table.c.source_key.like("crm:%")
            query = query.where(from_crm if crm else ~from_crm)
        if keys is not None:
            query = query.where(table.c.key.in_(list(keys)))
        return self.read(query)

    def clear_fixed(self, keys: Sequence[str], run_id: str) -> int:
        """Delete the retried dead letters that run `run_id` did not refuse again and recorded as leads."""
        table, lead = _table(DeadLetter), _table(Lead)
        email = sa.func.substr(table.c.key, sa.func.length(table.c.source_key) + 2)
        recorded = sa.select(lead.c.email).where(lead.c.updated_run == run_id)
        by_crm = table.c.source_key.like("crm:%") & email.in_(recorded)
        by_row = ~table.c.source_key.like("crm:%") & table.c.signup_id.in_(
            sa.select(lead.c.signup_id).where(lead.c.updated_run == run_id)
        )
        deleted = 0
        with self.engine.begin() as conn:
            for chunk in _chunks(list(keys)):
                stmt = sa.delete(table).where(table.c.key.in_(chunk), table.c.run_id != run_id, by_crm | by_row)
                deleted += conn.execute(stmt).rowcount
        return deleted

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                _table(t).name: conn.execute(sa.select(sa.func.count()).select_from(_table(t))).scalar_one()
                for t in TABLES
            }

    def read(self, query: str | sa.Select[Any]) -> pl.DataFrame:
        with self.engine.connect() as conn:
            return pl.read_database(query, conn, infer_schema_length=None)

    def _fetch(self, query: sa.Select[Any]) -> list[tuple[Any, ...]]:
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query)]

    # --- writes -------------------------------------------------------------------

    def record_batch(
        self,
        leads: pl.DataFrame,
        rejects: pl.DataFrame,
        positions: dict[str, int],
        run_id: str,
        source_key: str,
        crm_failures: pl.DataFrame | None = None,
        crm_name: str = "local",
        held: pl.DataFrame | None = None,
        seen: pl.DataFrame | None = None,
    ) -> None:
        """Write one decided batch in a single transaction: leads, companies, assessments, assignments,
        audit trail, dead letters, the inputs the CRM refused, the rotation it advanced, the leads
        held for review (recorded and queued, not assigned) and the reviews this batch applied."""
        now = _now()
        with self.engine.begin() as conn:
            for decided, kind in ((leads, "decided"), (held, "held")):
                if decided is None or decided.is_empty():
                    continue
                self._upsert(conn, Company, to_rows.companies_rows(decided, now), ["domain"])
                self._upsert(conn, Lead, to_rows.leads_rows(decided, run_id, now), ["email"])
                self._upsert(conn, Assessment, to_rows.assessments_rows(decided, run_id, now), ["email", "icp_version"])
                self._insert_new(conn, AuditEvent, to_rows.audit_rows(decided, run_id, now, kind), "event_key")
            self._upsert(conn, Assignment, to_rows.assignments_rows(leads, run_id, now), ["email"])
            if held is not None and not held.is_empty():
                # a decision a person made meanwhile stands: the status is never overwritten
                self._upsert(conn, Review, to_rows.held_rows(held, run_id, now), ["email"], keep=("status",))
            if "review_status" in leads.columns:
                applied = leads.filter(pl.col("review_status").is_not_null())["email"].to_list()
                reviews = _table(Review)
                for chunk in _chunks(applied):
                    conn.execute(sa.update(reviews).where(reviews.c.email.in_(chunk)).values(applied_run=run_id))
            self._upsert(conn, DeadLetter, to_rows.dead_letters_rows(rejects, source_key, run_id, now), ["key"])
            if crm_failures is not None and not crm_failures.is_empty():
                self._upsert(
                    conn, DeadLetter, to_rows.crm_dead_letters_rows(crm_failures, crm_name, run_id, now), ["key"]
                )
            if seen is not None and not seen.is_empty():
                self._upsert(conn, SignupRow, to_rows.signup_rows(seen, source_key, run_id, now), ["key"])
            _set_state(conn, "rotation", positions)

    # --- reviews ------------------------------------------------------------------

    def reviews(self, status: str | None = "pending", limit: int = 1000) -> pl.DataFrame:
        """Reviews, oldest first; `status` None for all."""
        table = _table(Review)
        query = sa.select(table).order_by(table.c.held_at, table.c.email).limit(limit)
        if status is not None:
            query = query.where(table.c.status == status)
        return self.read(query)

    def decided_reviews(self, emails: Sequence[str]) -> pl.DataFrame:
        """The decisions people made on these leads; they stand over leadq's own in every later run."""
        table = _table(Review)
        columns = ["email", "status", "decided_by", "why", "tier_override", "queue_override", "owner_override"]
        rows: list[tuple[Any, ...]] = []
        for chunk in _chunks(emails):
            query = sa.select(*(table.c[c] for c in columns)).where(
                table.c.email.in_(chunk), table.c.status != "pending"
            )
            rows += self._fetch(query)
        return pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.String), orient="row")

    def decide(self, decisions: list[dict[str, Any]], run_id: str | None = None) -> list[str]:
        """Record people's decisions on pending reviews, each also as a labelled example; one transaction.

        A decision names `email`, `decision` (approved | rejected), `who`, `why` and optionally `tier`,
        `queue`, `owner`. Returns the emails decided; raises ValueError naming a lead that is not pending."""
        table, now = _table(Review), _now()
        emails = [d["email"] for d in decisions]
        with self.engine.begin() as conn:
            pending = {
                row.email: row
                for row in conn.execute(sa.select(table).where(table.c.email.in_(emails), table.c.status == "pending"))
            }
            missing = [e for e in emails if e not in pending]
            anonymous = [d["email"] for d in decisions if not str(d.get("who") or "").strip()]
            if anonymous:
                raise ValueError(f"no reviewer given for {', '.join(anonymous)}: every decision records who made it")
            if missing:
                raise ValueError(f"not waiting for review: {', '.join(missing)} (see `leadq review list`)")
            labels = []
            for d in decisions:
                held = pending[d["email"]]
                label_tier = "disqualified" if d["decision"] == "rejected" else d.get("tier") or held.tier
                conn.execute(
                    sa.update(table)
                    .where(table.c.email == d["email"])
                    .values(
                        status=d["decision"],
                        decided_by=d["who"],
                        decided_at=now,
                        why=d["why"],
                        tier_override=d.get("tier"),
                        queue_override=d.get("queue"),
                        owner_override=d.get("owner"),
                        decided_run=run_id,
                    )
                )
                labels.append(
                    {
                        "email": d["email"],
                        "decision": d["decision"],
                        "predicted_tier": held.tier,
                        "label_tier": label_tier,
                        "score": held.score,
                        "queue": d.get("queue") or held.queue,
                        "owner": d.get("owner"),
                        "icp_version": held.icp_version,
                        "who": d["who"],
                        "why": d["why"],
                        "at": now,
                    }
                )
            conn.execute(sa.insert(_table(Label)), labels)
        return emails

    def pending_reviews(self, emails: Sequence[str]) -> set[str]:
        """Which of these leads wait for a person."""
        table = _table(Review)
        found: set[str] = set()
        for chunk in _chunks(list(emails)):
            query = sa.select(table.c.email).where(table.c.email.in_(chunk), table.c.status == "pending")
            found.update(row[0] for row in self._fetch(query))
        return found

    def decided_in_run(self, run_id: str) -> int:
        table = _table(Review)
        query = sa.select(sa.func.count()).select_from(table).where(table.c.decided_run == run_id)
        return int(self._fetch(query)[0][0])

    def unapplied_decisions(self) -> list[str]:
        """Leads a person decided on that no run has routed and written since."""
        table = _table(Review)
        query = sa.select(table.c.email).where(table.c.status != "pending", table.c.applied_run.is_(None))
        return [row[0] for row in self._fetch(query)]

    def notified(self, emails: Sequence[str], kind: str) -> set[str]:
        """Which of these leads already had a `kind` notification."""
        table = _table(Notification)
        found: set[str] = set()
        for chunk in _chunks(list(emails)):
            query = sa.select(table.c.email).where(table.c.email.in_(chunk), table.c.kind == kind)
            found.update(row[0] for row in self._fetch(query))
        return found

    def mark_notified(self, emails: Sequence[str], kind: str, run_id: str) -> None:
        rows = [{"email": e, "kind": kind, "run_id": run_id, "at": _now()} for e in emails]
        with self.engine.begin() as conn:
            self._upsert(conn, Notification, rows, ["email", "kind"], update=False)

    def record_run(self, run: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            self._upsert(conn, Run, [run], ["run_id"])

    def _upsert(
        self,
        conn: sa.Connection,
        model: type[SQLModel],
        rows: list[dict[str, Any]] | pl.DataFrame,
        keys: list[str],
        update: bool = True,
        keep: tuple[str, ...] = (),
    ) -> None:
        """Insert, or on a key conflict update (or keep) the row, except the `keep` columns; many rows per statement."""
        names = rows.columns if isinstance(rows, pl.DataFrame) else list(rows[0]) if rows else []
        if not names or (isinstance(rows, pl.DataFrame) and rows.is_empty()):
            return
        table = _table(model)
        insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
        insert = insert.values({c: sa.bindparam(c) for c in names})
        columns = [c for c in names if c not in keys and c not in keep]
        if update and columns:
            stmt = insert.on_conflict_do_update(index_elements=keys, set_={c: insert.excluded[c] for c in columns})
        else:
            stmt = insert.on_conflict_do_nothing(index_elements=keys)
        if isinstance(rows, pl.DataFrame) and conn.dialect.name == "sqlite":
            _sqlite_executemany(conn, stmt, rows)
            return
        dicts = rows.to_dicts() if isinstance(rows, pl.DataFrame) else rows
        for chunk in _chunks(dicts):
            conn.execute(stmt, chunk)

    def _insert_new(self, conn: sa.Connection, model: type[SQLModel], rows: pl.DataFrame, key: str) -> None:
        self._upsert(conn, model, rows, [key], update=False)


def _sqlite_executemany(conn: sa.Connection, stmt: sa.ClauseElement, frame: pl.DataFrame) -> None:
    """SQLite's own executemany over plain tuples: several times faster than per-row binding.

    Times are written as SQLAlchemy writes them to SQLite, so the ORM reads them back unchanged."""
    compiled = stmt.compile(dialect=conn.dialect)
    order = list(getattr(compiled, "positiontup", None) or [])
    typed = frame.with_columns(
        pl.col(c).dt.strftime("%Y-%m-%d %H:%M:%S.%6f") for c, t in frame.schema.items() if isinstance(t, pl.Datetime)
    ).with_columns(pl.col(c).cast(pl.Int8) for c, t in frame.schema.items() if t == pl.Boolean)
    conn.exec_driver_sql(compiled.string, typed.select(order).rows())


def _table(model: type[SQLModel]) -> sa.Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, sa.Table)
    return table


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _set_state(conn: sa.Connection, key: str, value: Any) -> None:
    table = _table(SyncState)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(key=key, value=json.dumps(value, sort_keys=True), updated_at=_now())
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["key"], set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at}
        )
    )


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
