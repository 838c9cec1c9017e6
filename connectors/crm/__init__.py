"""CRM sinks: where decided leads are published. `local` is the embedded store."""

from connectors.crm.local import LocalCrm

__all__ = ["LocalCrm"]
