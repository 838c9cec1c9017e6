"""A new local Prefect server's database, written at once from the schema Prefect's migrations make.

`prefect server start` on a new PREFECT_HOME creates its SQLite database by running Prefect's
migrations one by one (114 of them in prefect 3.8): half of a fresh machine's wait for the server
(8.4 s to its first answer here, 4.3 s when seeded). leadq ships the schema those migrations
produce for the pinned Prefect, `flows/prefect_schema.sql`, and writes it into a new home's
prefect.db before it starts the server. Prefect's own migration still runs at start: it finds the
database at its newest revision and has nothing to do.

The file also holds the block types a server of this install registers when it starts (54 of them,
from Prefect and its installed collections): the first server on a seeded database skips that
registration (0.6 s), later starts register as always and find them there.

- The file names the Prefect version it was made with. Another installed version is not seeded:
  Prefect migrates its database as always (slower, never wrong).
- Other Prefect collections installed than the file was made with: the first server registers
  block types as always.
- A home with a prefect.db, or a server database configured elsewhere, is left alone.
- `python -m flows.prefect_seed` makes the file again (after a Prefect upgrade); a test checks it
  against a database Prefect's own migrations make.

Nothing here imports Prefect: it runs before the server starts, while the command reads its config.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

SCHEMA = Path(__file__).with_name("prefect_schema.sql")
DATABASE = "prefect.db"
_VERSION_MARK = "-- prefect "
_COLLECTIONS_MARK = "-- block types of prefect.collections:"
# filled in by the columns' own defaults when the file is written into a database: the time of seeding
SEEDING_TIME = ("created", "updated")
# settings that put the server's database somewhere else than PREFECT_HOME/prefect.db
_DATABASE_SETTINGS = ("PREFECT_SERVER_DATABASE_CONNECTION_URL", "PREFECT_API_DATABASE_CONNECTION_URL")


def seed(home: Path, environ: Mapping[str, str]) -> bool:
    """Write the shipped schema into `home`'s new prefect.db (for a server started with `environ`);
    False when there is nothing to seed."""
    database = home / DATABASE
    if database.exists() or any(environ.get(name) for name in _DATABASE_SETTINGS):
        return False
    partial = database.with_name(f"{DATABASE}.seeding")
    try:
        script = SCHEMA.read_text()
        if _version_of(script) != metadata.version("prefect"):
            return False
        partial.unlink(missing_ok=True)
        with sqlite3.connect(partial) as conn:
            conn.executescript(script)
        conn.close()
        partial.replace(database)  # a run stopped halfway leaves no half-made database behind
    except (OSError, sqlite3.Error):
        # a full disk, a read-only home: Prefect makes its database itself and reports what is wrong
        partial.unlink(missing_ok=True)
        return False
    return True


def first_start_settings() -> dict[str, str]:
    """Settings for the first server on a database `seed` wrote: it holds the block types this install's
    server registers, so the server does not register them again. Empty when the installed Prefect
    collections (each brings block types) are not the ones the file was made with."""
    try:
        with SCHEMA.open() as schema:
            header = schema.read(2000)  # the file's first lines, not its megabyte of schema
    except OSError:
        return {}
    if f"{_COLLECTIONS_MARK} {' '.join(_collections())}\n" not in header:
        return {}
    return {
        "PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "false",
        "PREFECT_SERVER_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false",  # nor work out whether to
    }


def _collections() -> list[str]:
    return sorted(entry.name for entry in metadata.entry_points(group="prefect.collections"))


def shipped_version() -> str | None:
    """The Prefect version the shipped schema was made with."""
    try:
        return _version_of(SCHEMA.read_text())
    except OSError:
        return None


def _version_of(script: str) -> str | None:
    first = script.partition("\n")[0]
    return first.removeprefix(_VERSION_MARK) if first.startswith(_VERSION_MARK) else None


def migrate(home: Path) -> None:
    """Prefect's own migrations, run on `home`'s database (`prefect server database upgrade`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {"PREFECT_HOME": str(home)}
    subprocess.run(
        [sys.executable, "-m", "prefect", "server", "database", "upgrade", "--yes"],
        env=env,
        check=True,
        capture_output=True,
    )


# what a starting server does after its migrations (prefect.server.api.server.create_app's lifespan)
_REGISTER_BLOCKS = """
import asyncio
import prefect.plugins
import prefect.server.api.server  # the block classes a server has loaded
from prefect.server.database import provide_database_interface
from prefect.server.models.block_registration import run_block_auto_registration

async def register():
    prefect.plugins.load_prefect_collections()
    async with await provide_database_interface().session() as session:
        await run_block_auto_registration(session=session)

asyncio.run(register())
"""


def register_blocks(home: Path) -> None:
    """Prefect's block type registration, as a starting server runs it, on `home`'s database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {"PREFECT_HOME": str(home)}
    subprocess.run([sys.executable, "-c", _REGISTER_BLOCKS], env=env, check=True, capture_output=True)


def migrated_schema() -> str:
    """The database the installed Prefect's migrations and block registration make, as a script that makes it again."""
    with tempfile.TemporaryDirectory(prefix="leadq-prefect-schema-") as home:
        migrate(Path(home))
        register_blocks(Path(home))
        _make_blocks_stable(Path(home) / DATABASE)
        return schema_script(Path(home) / DATABASE)


# the block tables: what names a row, and the columns that refer to its id
_BLOCK_IDS: tuple[tuple[str, str, list[str]], ...] = (
    ("block_type", "slug", ["block_schema.block_type_id"]),
    (
        "block_schema",
        "checksum || ' ' || coalesce(version, '')",
        ["block_schema_reference.parent_block_schema_id", "block_schema_reference.reference_block_schema_id"],
    ),
    ("block_schema_reference", "parent_block_schema_id || ' ' || name || ' ' || reference_block_schema_id", []),
)


def _make_blocks_stable(database: Path) -> None:
    """Registration gives block types and schemas random ids, and lists a schema's capabilities in no
    fixed order; here ids are named by what they are (slug, checksum) and capabilities sorted, so that
    the file made again for the same Prefect is the same file."""
    conn = sqlite3.connect(database)
    try:
        with conn:
            for schema_id, capabilities in conn.execute("select id, capabilities from block_schema").fetchall():
                ordered = json.dumps(sorted(json.loads(capabilities)))
                conn.execute("update block_schema set capabilities = ? where id = ?", (ordered, schema_id))
            for table, natural_key, references in _BLOCK_IDS:
                for old, key in conn.execute(f"select id, {natural_key} from {table}").fetchall():
                    new = str(uuid.uuid5(uuid.NAMESPACE_URL, f"prefect:{table}:{key}"))
                    conn.execute(f"update {table} set id = ? where id = ?", (new, old))
                    for reference in references:
                        referring, column = reference.split(".")
                        conn.execute(f"update {referring} set {column} = ? where {column} = ?", (new, old))
    finally:
        conn.close()


def schema_script(database: Path) -> str:
    """A database's tables, indexes, triggers and views (by name) and its rows, as one SQL script."""
    conn = sqlite3.connect(database)
    try:
        objects = conn.execute(
            "select type, name, sql from sqlite_master where sql is not null and name not like 'sqlite_%' "
            "order by case type when 'table' then 0 else 1 end, name"
        ).fetchall()
        statements = [f"{sql};" for _, _, sql in objects]
        for kind, name, _ in objects:
            if kind == "table":
                columns = [c[1] for c in conn.execute(f'pragma table_info("{name}")') if c[1] not in SEEDING_TIME]
                listed = ", ".join(f'"{column}"' for column in columns)
                for row in conn.execute(f'select {listed} from "{name}" order by 1'):
                    values = ", ".join(_literal(v) for v in row)
                    statements.append(f'INSERT INTO "{name}" ({listed}) VALUES ({values});')
    finally:
        conn.close()
    header = (
        f"{_VERSION_MARK}{metadata.version('prefect')}\n"
        f"{_COLLECTIONS_MARK} {' '.join(_collections())}\n"
        "-- made by `python -m flows.prefect_seed`; do not edit\n"
    )
    return header + "\n".join(statements) + "\n"


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


if __name__ == "__main__":
    SCHEMA.write_text(migrated_schema())
    print(f"wrote {SCHEMA} for prefect {shipped_version()}")
