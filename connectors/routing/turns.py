"""Rotation turns in one queue when some SDRs cannot take one: they are skipped, and the turn
goes to the next SDR of the cycle; when nobody can, the rest of the leads wait.

The cycle is walked from the stored position; every slot passed moves the position, whether
its SDR took the lead or was skipped, so the rotation stays fair to ±1 over time. Whole
periods of the cycle are handed out at once (no loop per lead) until a cap is reached.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from connectors.routing.availability import Availability

TURN_SCHEMA = {"queue": pl.String(), "_rank": pl.Int64(), "_next_owner": pl.String(), "_skipped": pl.String()}


@dataclass
class Turns:
    owners: list[str] = field(default_factory=list)  # who took each turn, in order
    skipped: list[list[str]] = field(default_factory=list)  # per turn: the SDRs passed over before it
    position: int = 0  # where the cycle stands after the last turn taken


def take_turns(
    cycle: list[str], position: int, count: int, left: dict[str, int | None], absent: Callable[[str], bool]
) -> Turns:
    """Up to `count` turns of `cycle` from `position`. `left[sdr]`: turns an SDR may still take (None:
    no cap; it is decreased as turns are taken); `absent(sdr)`: the SDR takes no turn at all."""
    turns = Turns(position=position)
    if not cycle:
        return turns
    passed: list[str] = []  # SDRs skipped since the last turn taken
    while len(turns.owners) < count:
        start = turns.position
        period = [cycle[(start + i) % len(cycle)] for i in range(len(cycle))]
        can = [not absent(s) and left.get(s) != 0 for s in period]
        if not any(can):
            break
        takers = [s for s, ok in zip(period, can, strict=True) if ok]
        whole = (count - len(turns.owners)) // len(takers)
        for sdr, times in Counter(takers).items():
            cap = left.get(sdr)
            if cap is not None:
                whole = min(whole, cap // times)
        if whole > 0:  # hand out `whole` periods at once: no loop per lead
            *notes, tail = _skips_per_taker(period, can)
            turns.skipped += [passed + notes[0], *notes[1:]] + [tail + notes[0], *notes[1:]] * (whole - 1)
            turns.owners += takers * whole
            for sdr, times in Counter(takers).items():
                if left.get(sdr) is not None:
                    left[sdr] = left[sdr] - times * whole  # type: ignore[operator]
            last = max(i for i, ok in enumerate(can) if ok)
            turns.position, passed = (start + last + 1) % len(cycle), []
            continue
        for step, sdr in enumerate(period):  # near a cap or the end: one slot at a time, one period at most
            if len(turns.owners) == count:
                break
            if absent(sdr) or left.get(sdr) == 0:
                passed.append(sdr)
                continue
            turns.owners.append(sdr)
            turns.skipped.append(passed)
            turns.position, passed = (start + step + 1) % len(cycle), []
            if left.get(sdr) is not None:
                left[sdr] = left[sdr] - 1  # type: ignore[operator]
        passed = []  # the slots after the last turn taken are walked again from the position
    return turns


def _skips_per_taker(period: list[str], can: list[bool]) -> list[list[str]]:
    """For each taker of a period, the SDRs skipped right before it; the last entry holds the SDRs
    skipped after the last taker (they are passed before the next period's first taker)."""
    notes: list[list[str]] = []
    current: list[str] = []
    for sdr, ok in zip(period, can, strict=True):
        if ok:
            notes.append(current)
            current = []
        else:
            current.append(sdr)
    notes.append(current)
    return notes


def turns_by_queue(
    wanted: pl.DataFrame,
    cycles: dict[str, list[str]],
    positions: dict[str, int],
    now: Availability,
    given: Counter[str],
) -> tuple[pl.DataFrame, dict[str, int]]:
    """(queue, _rank, _next_owner, _skipped) for `wanted` = (queue, len) turns, and the positions after.

    SDRs away, off hours or at a cap are skipped; a turn nobody can take has no owner. `given`
    counts the leads each SDR already got in this batch (they count toward its caps) and grows."""
    advanced = dict(positions)
    parts = []
    for queue, count in wanted.iter_rows():
        cycle = cycles[queue]
        caps = {s: now.caps.get((queue, s)) for s in set(cycle)}
        left: dict[str, int | None] = {s: None if c is None else max(c.left - given[s], 0) for s, c in caps.items()}

        def absent(sdr: str, queue: str = queue) -> bool:
            return now.cannot_take(queue, sdr) is not None

        turns = take_turns(cycle, positions.get(queue, 0), count, left, absent)
        given.update(turns.owners)
        advanced[queue] = turns.position
        why = {s: now.cannot_take(queue, s) or (f"{c.limit} reached" if c is not None else "") for s, c in caps.items()}
        notes = ["skipped " + _who(skipped, why) if skipped else None for skipped in turns.skipped]
        nobody = _who(sorted(set(cycle)), why) if len(turns.owners) < count else None
        parts.append(
            pl.DataFrame(
                {
                    "queue": [queue] * count,
                    "_rank": range(count),
                    "_next_owner": turns.owners + [None] * (count - len(turns.owners)),
                    "_skipped": notes + [nobody] * (count - len(turns.owners)),
                },
                schema=TURN_SCHEMA,
            )
        )
    empty = pl.DataFrame(schema=TURN_SCHEMA)
    return pl.concat(parts) if parts else empty, advanced


def _who(sdrs: list[str], why: dict[str, str]) -> str:
    """`devon@x (daily cap 2 reached), emery@x (away until 2026-12-31)`."""
    return ", ".join(f"{s} ({why[s]})" for s in dict.fromkeys(sdrs))
