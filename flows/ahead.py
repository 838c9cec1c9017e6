"""The next batch decided while the flow routes and writes this one: one batch ahead, on one thread.

Deciding a batch (prepare, enrich, score) reads the store but writes only the enrichment cache,
and sources hand out rows in cursor order, so a batch decided before the previous one is written
is decided as it would be after: a row older than one the previous batch stored cannot follow it.
polars and SQLite release the GIL while they work, so on two cores the two halves overlap.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def one_ahead(work: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
    """`work(item)` for each item, in order; item n+1 is read and worked on on a helper thread while
    the caller handles result n. Prefect's run context goes along (the task runs belong to the flow
    run). An error is raised where its result would have been; when the caller stops early, the work
    ahead is finished and dropped (nothing of it is written beyond the enrichment cache)."""
    source = iter(items)
    done = object()

    def next_result() -> R | object:
        item = next(source, done)  # read on the helper thread too: the source's read overlaps as well
        return done if item is done else work(item)  # type: ignore[arg-type]

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="decide-ahead") as pool:

        def submit() -> Future[R | object]:
            return pool.submit(contextvars.copy_context().run, next_result)

        ahead = submit()
        while True:
            result = ahead.result()
            if result is done:
                return
            ahead = submit()
            yield result  # type: ignore[misc]
