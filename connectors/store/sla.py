"""Speed to lead: when each owner got a lead, when they first touched it, and the SLA's reads."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import sqlalchemy as sa

from connectors.errors import FatalError
from connectors.store.engine import StoreEngine, table_of, utc_now
from connectors.store.models import Assessment, Assignment, Lead

TEXT, TIME = pl.String(), pl.Datetime("us")
SLA_SCHEMA = {"email": TEXT, "queue": TEXT, "owner": TEXT, "tier": TEXT, "owned_at": TIME, "touched_at": TIME}
LEAD_STATUSES = ("worked", "new")  # worked: the owner touched it (the SLA is met); new: not touched yet


class SlaRecords(StoreEngine):
    def owned_since(self, since: datetime) -> pl.DataFrame:
        """SLA_SCHEMA rows: active leads whose current owner got them at `since` or later, with their tier."""
        s, a, lead = table_of(Assignment), table_of(Assessment), table_of(Lead)
        query = (
            sa.select(s.c.email, s.c.queue, s.c.owner, a.c.tier, s.c.owned_at, s.c.touched_at)
            .join(lead, lead.c.email == s.c.email)
            .join(a, (a.c.email == s.c.email) & (a.c.icp_version == lead.c.icp_version))
            .where(s.c.status == "active", s.c.owner.is_not(None), s.c.owned_at >= since)
            .order_by(s.c.owned_at, s.c.email)
        )
        return pl.DataFrame(self._fetch(query), schema=SLA_SCHEMA, orient="row")

    def record_touches(self, touches: pl.DataFrame) -> int:
        """(email, touched_at): the first activity on each lead; a touch already recorded stands."""
        table = table_of(Assignment)
        done = 0
        with self.engine.begin() as conn:
            for email, at in touches.select("email", "touched_at").rows():
                done += conn.execute(
                    sa.update(table).where(table.c.email == email, table.c.touched_at.is_(None)).values(touched_at=at)
                ).rowcount
        return done

    def set_lead_status(self, email: str, status: str) -> dict[str, object]:
        """`leadq lead status`: `worked` records the owner's first touch now (a first touch stands);
        `new` clears it. Returns the lead's assignment after the change."""
        if status not in LEAD_STATUSES:
            raise FatalError(f"lead status '{status}' is not one of: {', '.join(LEAD_STATUSES)}")
        table = table_of(Assignment)
        email = email.strip().lower()
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(table).where(table.c.email == email)).mappings().first()
            if row is None:
                raise FatalError(f"no lead {email} in the store (see `leadq export`)")
            if status == "worked" and row["touched_at"] is None:
                conn.execute(sa.update(table).where(table.c.email == email).values(touched_at=utc_now()))
            if status == "new":
                conn.execute(sa.update(table).where(table.c.email == email).values(touched_at=None))
            return dict(conn.execute(sa.select(table).where(table.c.email == email)).mappings().one())
