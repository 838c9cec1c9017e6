"""Secrets stay in memory: every secret leadq reads is registered here, and text that leaves the
process (an error message, a log line, a stored vendor body, a terminal cell) is scrubbed first.

- `secret(value)` registers a value read from the environment (a token, a key, a webhook URL,
  the password of a database URL) and returns it.
- `scrub(text)` replaces every registered value with `***` and hides the password of any URL
  written as `scheme://user:password@host`, registered or not.
- `install_log_scrubber()` makes every log record of this process go through `scrub`.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][\w+.-]*://[^\s:/@?#]*:)(?P<password>[^\s@/?#]+)@")

_secrets: set[str] = set()
_lock = threading.Lock()


def secret(value: str) -> str:
    """Remember a secret value so that `scrub` hides it; returns the value unchanged."""
    if len(value) >= MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(value)
    return value


def secret_url(url: str) -> str:
    """Remember the password inside a database URL, if it has one; returns the URL unchanged."""
    from sqlalchemy.engine import make_url  # loaded here: `leadq --help` need not load SQLAlchemy

    try:
        password = make_url(url).password
    except Exception:  # not a SQLAlchemy URL: the URL pattern in `scrub` still hides a password
        return url
    if password:
        secret(str(password))
    return url


def scrub(text: str) -> str:
    """The text with every registered secret and every URL password replaced by ***."""
    text = _URL_PASSWORD.sub(rf"\g<head>{MASK}@", text)
    with _lock:
        values = sorted(_secrets, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


def scrubbed(column: str) -> pl.Expr:
    """`scrub` as a polars expression over a text column (vendor messages stored with a batch)."""
    import polars as pl

    expr = pl.col(column).str.replace_all(_URL_PASSWORD.pattern, f"${{head}}{MASK}@")
    with _lock:
        values = sorted(_secrets, key=len, reverse=True)
    for value in values:
        expr = expr.str.replace_all(value, MASK, literal=True)
    return expr.alias(column)


def install_log_scrubber() -> None:
    """Every log record made in this process from now on is scrubbed (message and arguments)."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "leadq_scrubs", False):
        return

    def scrubbing(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed format string: leave it to logging to report
            return record
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        return record

    scrubbing.leadq_scrubs = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(scrubbing)
