"""leadq's local Prefect server: started once, in the background, and reused by every later run.

Prefect's in-process ("ephemeral") API starts a server inside every run: about 10 s of each run
here, and on a busy 2-core machine it can miss its start timeout so that nothing is processed.
Instead, the first command that runs a flow starts `prefect server start` under PREFECT_HOME as
a background process, and every later `leadq run`, `leadq serve` and `leadq server` talks to it:
runs start at once, and the UI shows the whole history.

- The server's address and process id are kept in PREFECT_HOME/leadq-server.json; its output in
  PREFECT_HOME/leadq-server.log. `leadq server --stop` stops it.
- Two leadq processes starting at once start one server (a lock file), and both wait for it.
- A slow start is waited for (`[runtime] prefect_start_timeout_s`), never a failure on its own.
- PREFECT_API_URL in the environment wins: leadq then uses that server and starts none.
- `[runtime] prefect_api = "in-process"` goes back to Prefect's in-process API.

Nothing here imports Prefect, so that a command can start the server first and load Prefect (and
its flows) while the server starts; `connect` points Prefect at the server once it answers.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests
from filelock import FileLock

from connectors.errors import LeadqError
from connectors.settings.operation import RuntimeSettings
from flows import prefect_seed

STATE_FILE = "leadq-server.json"
LOG_FILE = "leadq-server.log"
# the server needs none of leadq's secrets: they stay out of its environment
_SECRET_MARKS = ("TOKEN", "KEY", "SECRET", "PASSWORD", "WEBHOOK")
# but the server's own database settings are its to have
_SERVER_DATABASE = ("PREFECT_SERVER_DATABASE_", "PREFECT_API_DATABASE_")


class ServerError(LeadqError):
    """The local Prefect server did not start, or stopped answering."""


class ServerStopped(ServerError):
    """The server's process ended before it answered."""


@dataclass(frozen=True)
class LocalServer:
    url: str  # the API, e.g. http://127.0.0.1:41234/api
    pid: int
    started_at: float  # the process's creation time: a pid reused after a reboot is not this server
    home: Path

    @property
    def ui(self) -> str:
        return self.url.removesuffix("/api")

    @property
    def log(self) -> Path:
        return self.home / LOG_FILE

    def healthy(self) -> bool:
        """The API answers a real route (the version Prefect's client asks for first), not only /health."""
        try:
            return requests.get(f"{self.url}/admin/version", timeout=5).ok
        except requests.RequestException:
            return False

    def alive(self) -> bool:
        """Whether the process that was started is still there (not another one that got its pid)."""
        try:
            process = psutil.Process(self.pid)
            # a killed server nobody has reaped yet (a container's init may never reap it) is gone too
            return bool(abs(process.create_time() - self.started_at) < 1.0 and process.status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            return False

    def wait_until_ready(self, timeout_s: float, waiting: Callable[[], None] | None = None) -> LocalServer:
        """Block until the server answers; `waiting` is called once if it does not answer at first."""
        deadline = time.monotonic() + timeout_s
        told = False
        while not self.healthy():
            if not self.alive():
                raise ServerStopped(f"the local Prefect server (pid {self.pid}) stopped while starting; see {self.log}")
            if time.monotonic() > deadline:
                raise ServerError(
                    f"the local Prefect server did not answer at {self.url} within {timeout_s:.0f} s "
                    f"([runtime] prefect_start_timeout_s); see {self.log}"
                )
            if not told and waiting is not None:
                waiting()
                told = True
            time.sleep(0.2)
        return self


def prefect_home() -> Path:
    return Path(os.environ["PREFECT_HOME"]).expanduser()


def recorded(home: Path | None = None) -> LocalServer | None:
    """The server this PREFECT_HOME last started, if its process is still there."""
    home = home or prefect_home()
    try:
        state = json.loads((home / STATE_FILE).read_text())
        server = LocalServer(state["url"], int(state["pid"]), float(state["started_at"]), home)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return server if server.alive() else None


def start_or_reuse(home: Path | None = None, port: int | None = None) -> tuple[LocalServer, bool]:
    """The running local server, or a newly started one (not yet necessarily answering).
    Returns (server, started_now)."""
    home = home or prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    with FileLock(str(home / "leadq-server.lock")):
        server = recorded(home)
        if server is not None:
            return server, False
        return _spawn(home, port or _free_port()), True


def stop(home: Path | None = None, timeout_s: float = 20) -> LocalServer | None:
    """Stop the recorded server; returns it, or None when none was running."""
    home = home or prefect_home()
    server = recorded(home)
    if server is not None:
        os.killpg(server.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while server.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        if server.alive():
            os.killpg(server.pid, signal.SIGKILL)
    (home / STATE_FILE).unlink(missing_ok=True)
    return server


def begin(runtime: RuntimeSettings) -> LocalServer | None:
    """Start the local server if it is not running (without waiting for it): a command does this
    first, so that the server starts while the command reads its config. None when PREFECT_API_URL
    names a server already, or `prefect_api = "in-process"`."""
    if os.environ.get("PREFECT_API_URL") or runtime.prefect_api != "local-server":
        return None
    return start_or_reuse()[0]


def connect(server: LocalServer | None, runtime: RuntimeSettings, say: Callable[[str], None]) -> None:
    """Wait until the server answers, then point this process's Prefect at it (loaded or not)."""
    if server is None:
        return
    try:
        server = _ready(server, runtime, say)
    except ServerStopped:
        # the server this command found was on its way out (`leadq server --stop`, a kill, a shutdown
        # under way): one new server is started and waited for; a second stop is an error
        server = _ready(start_or_reuse(server.home)[0], runtime, say)
    os.environ["PREFECT_API_URL"] = server.url
    if "prefect.context" in sys.modules:
        # Prefect was loaded while the server started: it reads its settings from the environment again
        import prefect.context

        prefect.context.refresh_global_settings_context()
    # The server is this very Prefect install, started by leadq: its version is ours by construction.
    # Prefect's client would check it anyway on every flow start, with a 5 s HTTP timeout of its own
    # that a busy machine misses ("Failed to reach API"), failing a run whose server is fine.
    os.environ["PREFECT_CLIENT_SERVER_VERSION_CHECK_ENABLED"] = "false"


def _ready(server: LocalServer, runtime: RuntimeSettings, say: Callable[[str], None]) -> LocalServer:
    return server.wait_until_ready(
        runtime.prefect_start_timeout_s,
        lambda: say(f"starting leadq's local Prefect server at {server.ui} (later runs reuse it; log: {server.log})"),
    )


def use_local_server(runtime: RuntimeSettings, say: Callable[[str], None]) -> None:
    """`begin` and `connect` in one, for commands with nothing to do in between."""
    connect(begin(runtime), runtime, say)


def server_environment(environ: Mapping[str, str], home: Path) -> dict[str, str]:
    """The environment the server starts with: this command's, without leadq's settings and secrets
    and without what points a client at a server (PREFECT_API_URL, PREFECT_API_KEY); the server's own
    database settings (a PostgreSQL URL, its password) are kept, under their new or legacy names."""

    def kept(name: str) -> bool:
        if name.startswith(_SERVER_DATABASE):
            return True
        return not name.startswith(("LEADQ__", "PREFECT_API_")) and not any(m in name.upper() for m in _SECRET_MARKS)

    env = {name: value for name, value in environ.items() if kept(name)}
    return env | {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_UI_ENABLED": "true",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }


def _spawn(home: Path, port: int) -> LocalServer:
    env = server_environment(os.environ, home)
    seeded = prefect_seed.seed(home, env)  # a new home's database at once, not by Prefect's 114 migrations
    if seeded:
        env |= prefect_seed.first_start_settings()  # the block types are in it too
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with (home / LOG_FILE).open("ab") as log:
        if seeded:
            log.write(f"leadq: {prefect_seed.DATABASE} written from {prefect_seed.SCHEMA.name}\n".encode())
            log.flush()
        process = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives this command, and Ctrl-C in this terminal does not reach it
        )
    # it runs on after this command; while this process lives, a thread waits for it, so that a server
    # stopped meanwhile is reaped at once (not left a zombie) and its Popen is never collected running
    threading.Thread(target=process.wait, name="leadq-server-reaper", daemon=True).start()
    server = LocalServer(f"http://127.0.0.1:{port}/api", process.pid, psutil.Process(process.pid).create_time(), home)
    state = {"url": server.url, "pid": server.pid, "started_at": server.started_at}
    (home / STATE_FILE).write_text(json.dumps(state))
    return server


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
