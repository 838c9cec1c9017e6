"""The terminal the CLI writes to: results on stdout, errors and progress on stderr."""

from __future__ import annotations

import json

import polars as pl
import typer
from rich.console import Console

from connectors.errors import LeadqError

out = Console()
err = Console(stderr=True)


def fail(exc: LeadqError) -> typer.Exit:
    """Print the error in one line and exit with its code (2: config or input, 1: a run)."""
    err.print(f"[bold red]leadq: error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(exc.exit_code)


def print_json_lines(frame: pl.DataFrame) -> None:
    for row in frame.iter_rows(named=True):
        print(json.dumps(row, default=str))
