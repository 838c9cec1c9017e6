"""The terminal the CLI writes to: results on stdout, errors and progress on stderr."""

from __future__ import annotations

import functools
import json
import logging
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from connectors.errors import LeadqError
from connectors.redact import scrub

if TYPE_CHECKING:
    import polars as pl

    from connectors.settings.operation import RuntimeSettings

CommandFunction = TypeVar("CommandFunction", bound=Callable[..., Any])
# Options several commands share, declared once
JsonLines = Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")]
JsonOutcome = Annotated[bool, typer.Option("--json", help="Print the outcome as one JSON object.")]
Limit = Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")]
out = Console()
err = Console(stderr=True)


def printable(value: object) -> str:
    """Text from the outside world made safe for a terminal: secrets scrubbed, and control and
    format characters (escape sequences, carriage returns, bidi overrides) shown as escapes."""
    text = scrub(str(value))
    if text.isprintable():
        return text
    return "".join(
        ch if ch == " " or unicodedata.category(ch)[0] not in "CZ" else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def cell(value: object) -> Text:
    """A table cell that shows the value as it is: no Rich markup read from data, nothing unprintable."""
    return Text("" if value is None else printable(value))


class LeadqTyper(typer.Typer):
    """typer with one error boundary: a LeadqError from any command is one line on stderr and its exit code
    (2: config or input, 1: a run), never a traceback."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[CommandFunction], CommandFunction]:
        register = super().command(*args, **kwargs)

        def decorator(func: CommandFunction) -> CommandFunction:
            @functools.wraps(func)
            def guarded(*a: Any, **kw: Any) -> Any:
                try:
                    return func(*a, **kw)
                except LeadqError as exc:
                    raise fail(exc) from None

            register(guarded)
            return func

        return decorator


def fail(exc: LeadqError) -> typer.Exit:
    """Print the error in one line and exit with its code (2: config or input, 1: a run)."""
    error_line(f"leadq: error: {exc}")
    return typer.Exit(exc.exit_code)


def error_line(message: str) -> None:
    """One error line on stderr: the message as data (no markup from it, nothing unprintable)."""
    err.print(
        Text("leadq: ", style="bold red") + Text(printable(message.removeprefix("leadq: "))),
        highlight=False,
        soft_wrap=True,
    )


def print_json_lines(frame: pl.DataFrame) -> None:
    for row in frame.iter_rows(named=True):
        print(json.dumps(row, default=str))


@contextmanager
def flow_errors(what: str, hint: str = "") -> Iterator[None]:
    """A failed flow run exits 1 in one line, with a hint (a LeadqError is left to the commands' boundary)."""
    try:
        yield
    except LeadqError:
        raise
    except Exception as exc:  # a failed flow run: Prefect has logged the traceback
        error_line(f"leadq: {what} failed: {type(exc).__name__}: {exc}")
        if hint:
            err.print(hint)
        raise typer.Exit(1) from None


@contextmanager
def heartbeats(runtime: RuntimeSettings) -> Iterator[None]:
    """The flows this command runs send Prefect's flow-run heartbeats only with `[runtime] flow_heartbeats`.

    Nothing in Prefect reads them unless someone made a zombie-flow automation; a flow that sends
    them waits for its heartbeat thread when it ends (up to 1 s, 0.7 s of the sample's first run)."""
    if runtime.flow_heartbeats:
        yield
        return
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def console_logs(verbose: bool) -> None:
    """Prefect logs every step at INFO; on a terminal only warnings show unless --verbose."""
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler):
            handler.setLevel(logging.INFO if verbose else logging.WARNING)


def print_outcome(outcome: dict[str, Any], as_json: bool, sentence: str) -> None:
    """A command's outcome: one JSON object for machines, or one sentence for a person."""
    if as_json:
        print(json.dumps(outcome, default=str))
    else:
        out.print(sentence)


def print_rows(
    frame: pl.DataFrame,
    as_json: bool,
    title: str,
    columns: tuple[str, ...],
    cells: Callable[[dict[str, Any]], Sequence[Text | str]],
) -> None:
    """A listing: JSON lines for machines, or a table whose cells show data as text."""
    if as_json:
        print_json_lines(frame)
        return
    table = Table(title=f"{title} ({frame.height} shown)", title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in frame.iter_rows(named=True):
        table.add_row(*cells(row))
    out.print(table)
