"""A new local server's database is written from the shipped schema, and that schema is Prefect's own."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from flows import local_server, prefect_seed
from tests.conftest import SESSION_SERVER


def schema_facts(script: str, tmp_path: Path) -> dict[str, object]:
    """What a schema script makes, table by table: columns in order (type, null, default, key), foreign
    keys, indexes with their columns, and the rows but for their created/updated times; constraint order in
    the SQL text is left out (Prefect's migrations rebuild tables with their foreign keys in no fixed order)."""
    database = tmp_path / f"facts-{len(list(tmp_path.iterdir()))}.db"
    with sqlite3.connect(database) as conn:
        conn.executescript(script)
        facts: dict[str, object] = {}
        for kind, name, sql in conn.execute("select type, name, sql from sqlite_master where sql is not null"):
            if kind != "table":
                facts[f"{kind} {name}"] = " ".join(sql.split())
                continue
            facts[f"foreign keys {name}"] = sorted(
                key[1:]
                for key in conn.execute(f'pragma foreign_key_list("{name}")')  # not its number
            )
            facts[f"indexes {name}"] = sorted(
                (index[1:], conn.execute(f'pragma index_info("{index[1]}")').fetchall())
                for index in conn.execute(f'pragma index_list("{name}")')
            )
            table_info = conn.execute(f'pragma table_info("{name}")').fetchall()
            facts[f"columns {name}"] = table_info
            columns = [c[1] for c in table_info if c[1] not in prefect_seed.SEEDING_TIME]  # times of seeding differ
            listed = ", ".join(f'"{column}"' for column in columns)
            facts[f"rows {name}"] = sorted(conn.execute(f'select {listed} from "{name}"').fetchall())
    conn.close()
    return facts


def test_the_shipped_schema_makes_what_the_installed_prefects_migrations_make(tmp_path: Path) -> None:
    shipped = schema_facts(prefect_seed.SCHEMA.read_text(), tmp_path)
    migrated = schema_facts(prefect_seed.migrated_schema(), tmp_path)
    assert len(migrated) > 100  # tables, indexes and rows were all compared
    assert len(migrated["rows block_type"]) > 50  # with the block types a server registers
    assert shipped == migrated, (
        "flows/prefect_schema.sql is not what the installed Prefect's migrations make: "
        "run `uv run python -m flows.prefect_seed` and commit the file"
    )


@pytest.mark.parametrize(
    "starting_server_step",
    [
        prefect_seed.migrate,  # Prefect's own migration, which every server start runs
        prefect_seed.register_blocks,  # what lets the first server on a seeded database skip it
    ],
)
def test_a_starting_servers_own_steps_find_a_seeded_database_complete(
    tmp_path: Path, starting_server_step: Callable[[Path], None]
) -> None:
    assert prefect_seed.seed(tmp_path, environ={})
    before = prefect_seed.schema_script(tmp_path / "prefect.db")
    starting_server_step(tmp_path)
    assert schema_facts(prefect_seed.schema_script(tmp_path / "prefect.db"), tmp_path) == schema_facts(before, tmp_path)


def test_the_first_server_skips_block_registration_only_with_the_collections_the_file_was_made_with(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert prefect_seed.first_start_settings()["PREFECT_SERVER_REGISTER_BLOCKS_ON_START"] == "false"
    monkeypatch.setattr(prefect_seed, "_collections", lambda: ["prefect_aws", "prefect_dask"])
    assert prefect_seed.first_start_settings() == {}  # prefect-aws brings block types the file lacks


def test_the_suites_server_was_started_on_a_seeded_database_and_answers() -> None:
    assert "leadq: prefect.db written from prefect_schema.sql" in SESSION_SERVER.log.read_text()
    database = SESSION_SERVER.home / "prefect.db"
    with sqlite3.connect(database) as conn:
        revision = conn.execute("select version_num from alembic_version").fetchone()[0]
    conn.close()
    assert f"VALUES ('{revision}')" in prefect_seed.SCHEMA.read_text()
    assert local_server.recorded(SESSION_SERVER.home) is not None
    assert SESSION_SERVER.healthy()
    # it skipped registering block types, and serves them from the seeded rows
    block_types = requests.post(f"{SESSION_SERVER.url}/block_types/filter", json={}, timeout=10).json()
    assert {"secret", "slack-webhook", "local-file-system"} <= {block_type["slug"] for block_type in block_types}


def test_an_existing_database_is_never_touched(tmp_path: Path) -> None:
    (tmp_path / "prefect.db").write_bytes(b"the user's history")
    assert not prefect_seed.seed(tmp_path, environ={})
    assert (tmp_path / "prefect.db").read_bytes() == b"the user's history"


@pytest.mark.parametrize("setting", ["PREFECT_SERVER_DATABASE_CONNECTION_URL", "PREFECT_API_DATABASE_CONNECTION_URL"])
def test_a_server_database_configured_elsewhere_is_not_seeded(tmp_path: Path, setting: str) -> None:
    assert not prefect_seed.seed(tmp_path, environ={setting: "postgresql+asyncpg://prefect@db/prefect"})
    assert not (tmp_path / "prefect.db").exists()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("-- prefect ", "-- prefect 0."),  # made for another Prefect version: Prefect migrates as always
        ("CREATE TABLE agent", "CREATE TABLE agent agent"),  # cannot be written: Prefect makes its own
    ],
)
def test_a_schema_file_that_does_not_fit_leaves_the_home_to_prefect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: str, new: str
) -> None:
    changed = tmp_path / "schema.sql"
    changed.write_text(prefect_seed.SCHEMA.read_text().replace(old, new, 1))
    monkeypatch.setattr(prefect_seed, "SCHEMA", changed)
    home = tmp_path / "home"
    home.mkdir()
    assert not prefect_seed.seed(home, environ={})
    assert list(home.iterdir()) == []  # no database, and no half-written one
