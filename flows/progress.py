"""A hook through which a flow reports progress to whoever runs it (the CLI's progress bar)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Reporter = Callable[[str, int], None]  # (message, signups done so far)

_reporter: ContextVar[Reporter | None] = ContextVar("leadq_progress", default=None)


def report(message: str, done: int) -> None:
    callback = _reporter.get()
    if callback is not None:
        callback(message, done)


@contextmanager
def reporting_to(callback: Reporter) -> Iterator[None]:
    token = _reporter.set(callback)
    try:
        yield
    finally:
        _reporter.reset(token)
