"""A new local Prefect server's database, written at once from the schema Prefect's migrations make.

`prefect server start` on a new PREFECT_HOME creates its SQLite database by running Prefect's
migrations one by one (114 of them in prefect 3.8): half of a fresh machine's wait for the server
(8.4 s to its first answer here, 4.3 s when seeded). leadq ships the schema those migrations
produce for the pinned Prefect, `flows/prefect_schema.sql`, and writes it into a new home's
prefect.db before it starts the server. Prefect's own migration still runs at start: it finds the
database at its newest revision and has nothing to do.

- The file names the Prefect version it was made with. Another installed version is not seeded:
  Prefect migrates its database as always (slower, never wrong).
- A home with a prefect.db, or a server database configured elsewhere, is left alone.
- `python -m flows.prefect_seed` makes the file again (after a Prefect upgrade); a test checks it
  against a database Prefect's own migrations make.

Nothing here imports Prefect: it runs before the server starts, while the command reads its config.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

SCHEMA = Path(__file__).with_name("prefect_schema.sql")
DATABASE = "prefect.db"
_VERSION_MARK = "-- prefect "
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


def migrated_schema() -> str:
    """The schema the installed Prefect's migrations make, as a script that makes it again."""
    with tempfile.TemporaryDirectory(prefix="leadq-prefect-schema-") as home:
        migrate(Path(home))
        return schema_script(Path(home) / DATABASE)


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
                for row in conn.execute(f'select * from "{name}" order by 1'):
                    values = ", ".join(_literal(v) for v in row)
                    statements.append(f'INSERT INTO "{name}" VALUES ({values});')
    finally:
        conn.close()
    header = f"{_VERSION_MARK}{metadata.version('prefect')}\n-- made by `python -m flows.prefect_seed`; do not edit\n"
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
