"""The local store: leadq's records and the embedded CRM, on any SQLAlchemy database.

One facade over the store's parts, each in its own module: the engine, schema and writer lock
(engine.py), run bookkeeping (state.py), companies and caches (caches.py), dead letters
(dead_letters.py), reviews (reviews.py), speed to lead (sla.py) and the batch write (batches.py).
"""

from __future__ import annotations

from connectors.store.batches import BatchRecords
from connectors.store.caches import CompanyRecords
from connectors.store.dead_letters import DeadLetterRecords
from connectors.store.reviews import ReviewRecords
from connectors.store.sla import SlaRecords
from connectors.store.state import StateRecords


class Store(BatchRecords, ReviewRecords, DeadLetterRecords, CompanyRecords, StateRecords, SlaRecords):
    """Everything leadq keeps, behind one object: `Store(url)`."""
