"""A throwaway PostgreSQL server for the tests, started from the installed binaries on a free port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path
from types import TracebackType

import sqlalchemy as sa


def find_binaries() -> Path | None:
    """The newest installed server's bin folder (Debian puts it in /usr/lib/postgresql/N/bin)."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    if candidates:
        return candidates[-1].parent
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and (Path(found).parent / "postgres").exists() else None


class PostgresServer:
    """initdb + pg_ctl start in a temporary folder; as root, the server runs as the `postgres` user."""

    def __init__(self, binaries: Path, folder: Path) -> None:
        self.bin = binaries
        self.data = folder / "data"
        self.port = _free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/leadq"
        self._as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self._folder = folder

    def __enter__(self) -> PostgresServer:
        if self._as_user:
            shutil.chown(self._folder, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
        options = f"-p {self.port} -k {self._folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-w", "-l", str(self._folder / "server.log"), "start")
        new_database(self.url, "leadq")
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run([*self._as_user, str(self.bin / program), *args], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr or result.stdout}")


def new_database(server_url: str, name: str) -> str:
    """Create database `name` on the server of `server_url`; its URL."""
    engine = sa.create_engine(server_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"create database {name}"))
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
