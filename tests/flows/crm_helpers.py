"""Signup files and settings shared by the HubSpot and Salesforce flow tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from connectors.settings import load_settings
from connectors.store import Store
from flows.qualify import qualify_signups

START = datetime(2026, 3, 1)


def write_signups(path: Path, n: int, companies: int = 100, free_every: int = 10, first: int = 0) -> Path:
    """n signups from `companies` companies (every `free_every`-th on gmail), one minute apart."""
    i = pl.int_range(first, first + n, eager=True).alias("i")
    frame = pl.DataFrame(i).select(
        pl.format("s-{}", "i").alias("signup_id"),
        pl.when(pl.col("i") % free_every == free_every - 1)
        .then(pl.format("person{}@gmail.com", "i"))
        .otherwise(pl.format("person{}@company{}.com", "i", pl.col("i") % companies))
        .alias("email"),
        pl.format("First{}", "i").alias("first_name"),
        pl.format("Last{}", "i").alias("last_name"),
        pl.lit("VP of Sales").alias("job_title"),
        pl.format("Company {}", pl.col("i") % companies).alias("company_name"),
        pl.lit("US").alias("country"),
        pl.col("i")
        .map_elements(lambda k: (START + timedelta(minutes=k)).isoformat() + "Z", return_dtype=pl.String)
        .alias("signed_up_at"),
    )
    frame.write_csv(path)
    return path


def write_companies(path: Path, companies: int = 100) -> Path:
    """The reference file for those companies: software firms of four sizes, in the US and Germany."""
    c = pl.int_range(0, companies, eager=True).alias("c")
    pl.DataFrame(c).select(
        pl.format("company{}.com", "c").alias("domain"),
        pl.format("Company {}", "c").alias("name"),
        pl.lit("computer software").alias("industry"),
        pl.col("c").map_elements(lambda k: [20, 150, 600, 2500][k % 4], return_dtype=pl.Int64).alias("employees"),
        pl.when(pl.col("c") % 5 == 4).then(pl.lit("Germany")).otherwise(pl.lit("United States")).alias("country"),
    ).write_csv(path)
    return path


def crash_once_before_the_watermark(monkeypatch: pytest.MonkeyPatch, message: str) -> None:
    """The next watermark commit raises RuntimeError(message), as if the process died after the CRM write."""
    commit = Store.commit_watermark
    crashes = [RuntimeError(message)]

    def crash_once(self: Store, *args: Any) -> None:
        if crashes:
            raise crashes.pop()
        commit(self, *args)

    monkeypatch.setattr(Store, "commit_watermark", crash_once)


def run(**params: Any) -> dict[str, Any]:
    return qualify_signups(**params)


def store() -> Store:
    return Store(load_settings().store_url)


def sdr_emails(config_dir: Path) -> list[str]:
    routing = yaml.safe_load((config_dir / "routing.yaml").read_text())
    return sorted({sdr["email"] for queue in routing["queues"].values() for sdr in queue["sdrs"]})
