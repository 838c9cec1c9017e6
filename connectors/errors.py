"""The one error tree of leadq.

    LeadqError                  anything leadq raises on purpose
    ├── ConfigError             a setting, icp.yaml or routing.yaml is wrong       → exit 2
    ├── SourceError             the signup input cannot be read as signups         → exit 2
    ├── RetriableError          an outside service failed for now (429, 5xx, I/O)  → retried
    ├── FatalError              an outside service refused for good                → exit 1
    └── LedgerError             a run's books do not balance: a bug, never normal  → exit 1

Messages say what was expected, what was found, and where (file, key, row). A message never
carries a secret: it is scrubbed (`connectors.redact`) when the error is made.
"""

from __future__ import annotations

from connectors.redact import scrub


class LeadqError(Exception):
    """Base of every error leadq raises on purpose."""

    exit_code = 1

    def __init__(self, *args: object) -> None:
        super().__init__(*(scrub(a) if isinstance(a, str) else a for a in args))


class ConfigError(LeadqError):
    """A configuration file or environment override is invalid; nothing was processed."""

    exit_code = 2


class SourceError(LeadqError):
    """The signup source is missing, unreadable or lacks a required column."""

    exit_code = 2


class RetriableError(LeadqError):
    """A transient failure: doing the same thing again later may succeed."""


class FatalError(LeadqError):
    """A permanent failure: doing the same thing again will fail the same way."""


class LedgerError(LeadqError):
    """A run's counts do not add up (processed != leads + duplicates + rejected + skipped_known).

    Always a bug in leadq: the run stops before it records anything more."""
