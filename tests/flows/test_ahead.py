"""One batch decided ahead: results in order, the next one worked on while the caller handles this one,
errors where they belong, and never more than one item read ahead."""

from __future__ import annotations

import threading

import pytest

from flows.ahead import one_ahead


def test_results_come_in_order_and_the_next_is_worked_on_meanwhile() -> None:
    started = {n: threading.Event() for n in range(4)}

    def work(n: int) -> int:
        started[n].set()
        return n * 10

    seen = []
    for result in one_ahead(work, range(4)):
        n = result // 10
        if n + 1 < 4:  # while the caller still holds result n, item n+1 is under way
            assert started[n + 1].wait(timeout=10)
        seen.append(result)
    assert seen == [0, 10, 20, 30]


def test_an_error_is_raised_where_its_result_would_have_come() -> None:
    def work(n: int) -> int:
        if n == 2:
            raise ValueError("batch 2 is bad")
        return n

    got = []
    with pytest.raises(ValueError, match="batch 2 is bad"):
        for result in one_ahead(work, range(5)):
            got.append(result)
    assert got == [0, 1]  # the batches before it were handed over, none after it


def test_a_caller_that_stops_early_reads_no_more_than_one_item_ahead() -> None:
    read: list[int] = []

    def items() -> object:
        for n in range(100):
            read.append(n)
            yield n

    results = one_ahead(lambda n: n, items())  # type: ignore[arg-type]
    assert next(results) == 0
    results.close()  # the caller stops (a CRM stop, an error): the work ahead is finished and dropped
    assert read == [0, 1]


def test_nothing_to_do() -> None:
    assert list(one_ahead(lambda n: n, [])) == []
