"""The local store (leadq's records and the embedded CRM)."""

from connectors.store.store import Store

__all__ = ["Store"]
