"""A CSV reader that keeps going past malformed rows, for files polars' fast reader refuses.

A row with more fields than the header, a quote that never closes, or a bare carriage
return inside an unquoted field becomes one malformed row, named by its line; the
rows around it are read as usual. Used only when the fast reader fails, so a clean
file costs nothing extra.
"""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl

MALFORMED = "_malformed"  # why a row could not be read as CSV; null for a good row
LINE = "_row"  # the line the row starts on (the header is line 1)
_MAX_RECORD_LINES = 1_000  # a quoted field may span lines; past this many, the quote is taken as unclosed


def read_lenient(path: Path, separator: str = ",") -> pl.DataFrame:
    """Every row of the file as text, with its line number and, for a malformed row, why."""
    lines = path.read_bytes().decode("utf-8", errors="replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    header = _fields(lines[0].rstrip("\r"), separator) if lines else None
    if not header:
        raise ValueError("the first line is not a CSV header")
    records: list[list[str | None]] = []
    width = len(header)
    number = 1
    while number < len(lines):
        fields, used, problem = _record(lines, number, separator, width)
        line = number + 1
        if problem is None:
            assert fields is not None
            if fields:  # a blank line is no row
                records.append([*fields, *[None] * (width - len(fields)), str(line), None])
        else:
            text = lines[number].rstrip("\r")
            records.append([*[None] * width, str(line), f"malformed CSV at line {line}: {problem}: {text[:120]!r}"])
        number += used
    # every column typed as text up front: a malformed row after the first 100 must not meet a column inferred as null
    frame = pl.DataFrame(records, schema=[(name, pl.String) for name in [*header, LINE, MALFORMED]], orient="row")
    return frame.with_columns(pl.col(LINE).cast(pl.UInt32))


def _record(lines: list[str], start: int, separator: str, width: int) -> tuple[list[str] | None, int, str | None]:
    """The record starting at `start`: (fields, lines used, None) or (None, 1, what is wrong)."""
    text = lines[start].rstrip("\r")
    used = 1
    while text.count('"') % 2 == 1:  # a quoted field goes on over the next line
        if start + used >= len(lines) or used >= _MAX_RECORD_LINES:
            return None, 1, "a quoted field is never closed"
        text += "\n" + lines[start + used].rstrip("\r")
        used += 1
    if not _in_quotes(text, "\r"):
        return None, 1, "a carriage return inside an unquoted field"
    try:
        fields = _fields(text, separator)
    except csv.Error as exc:
        return None, 1, str(exc)
    if fields is None:
        return [], used, None
    if len(fields) > width:
        return None, used, f"{len(fields)} fields where the header has {width}"
    return fields, used, None


def _fields(text: str, separator: str) -> list[str] | None:
    rows = list(csv.reader([text], delimiter=separator, strict=True)) if text else []
    return rows[0] if rows else None


def _in_quotes(text: str, char: str) -> bool:
    """Whether every `char` in `text` sits inside a quoted field."""
    quoted = False
    for c in text:
        if c == '"':
            quoted = not quoted
        elif c == char and not quoted:
            return False
    return True
