"""Shared fixtures: an isolated config folder and LEADQ_HOME per test, and one Prefect API per session."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import loopback_only
from tests.fakes import FakeHttp

loopback_only.install()  # before any test module runs: nothing here reaches past this machine
# ... and nothing that a test starts: every Python subprocess loads tests/hermetic/sitecustomize.py
HERMETIC = Path(__file__).resolve().parent / "hermetic"
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERMETIC), os.environ.get("PYTHONPATH")]))
ESCAPE_LOG = Path(tempfile.mkdtemp(prefix="leadq-hermetic-")) / "escapes.log"
os.environ[loopback_only.ESCAPE_LOG] = str(ESCAPE_LOG)

# Before anything imports Prefect: its state in a throwaway folder, nothing phones home.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="leadq-test-prefect-")
os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_UI_ENABLED", "false")
for _name in [n for n in os.environ if n.startswith("PREFECT_API_")]:
    del os.environ[_name]  # never a server of the developer's

# The suite's runs, in this process and in the `leadq` processes it starts, report to one leadq
# local Prefect server (the one a user gets), started here while the test modules load.
from flows import local_server  # noqa: E402  (after the environment above)

SESSION_SERVER, _ = local_server.start_or_reuse(Path(os.environ["PREFECT_HOME"]))
os.environ["PREFECT_API_URL"] = SESSION_SERVER.url
os.environ["PREFECT_CLIENT_SERVER_VERSION_CHECK_ENABLED"] = "false"  # ours, as leadq's local server (see connect)
atexit.register(local_server.stop, SESSION_SERVER.home)  # also when the session ends abruptly

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "config" / "data" / "sample_signups.csv"


@pytest.fixture(autouse=True)
def _stays_on_loopback() -> Iterator[None]:
    """Fail the test that tried to reach past loopback, even if the code under test swallowed the error."""
    loopback_only.escapes.clear()
    ESCAPE_LOG.write_text("")
    yield
    tried, loopback_only.escapes[:] = list(loopback_only.escapes), []
    tried += [f"in a subprocess: {line}" for line in ESCAPE_LOG.read_text().splitlines()]
    if tried:
        pytest.fail("the test reached past loopback: " + "; ".join(dict.fromkeys(tried)), pytrace=False)


def offline_settings(folder: Path) -> None:
    """The copied settings fetch no website and ask no DNS server: a test that wants them points
    them at a local fake."""
    path = folder / "settings.toml"
    text = path.read_text()
    text = text.replace("[enrichment.website]\nenabled = true\n", "[enrichment.website]\nenabled = false\n", 1)
    text = text.replace("[enrichment.dns]\nenabled = true\n", "[enrichment.dns]\nenabled = false\n", 1)
    text = text.replace('probe_host = "example.com"', 'probe_host = ""').replace(
        'probe_domain = "gmail.com"', 'probe_domain = ""'
    )
    path.write_text(text)


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of config/ and an empty LEADQ_HOME; tests may edit both freely."""
    folder = tmp_path / "config"
    shutil.copytree(REPO / "config", folder)
    offline_settings(folder)
    for name in list(os.environ):
        if name.startswith("LEADQ__"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LEADQ_CONFIG_DIR", str(folder))
    monkeypatch.setenv("LEADQ_HOME", str(tmp_path / "home"))
    return folder


@pytest.fixture(scope="session", autouse=True)
def prefect_api() -> Iterator[None]:
    """The session's Prefect server, answering (a busy machine starts it slowly); stopped at the end."""
    SESSION_SERVER.wait_until_ready(300)
    yield
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30)  # the runs' last log lines reach the server before it stops
    local_server.stop(SESSION_SERVER.home)


@pytest.fixture
def fake_http() -> Iterator[FakeHttp]:
    """A local HTTP server whose routes a test fills in."""
    with FakeHttp().running() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server for the session: LEADQ_TEST_POSTGRES_URL if set, else one started here
    from the installed server binaries (Debian's `postgresql` package; .ci/run installs it)."""
    if os.environ.get("LEADQ_TEST_POSTGRES_URL"):
        yield os.environ["LEADQ_TEST_POSTGRES_URL"]
        return
    from tests.postgres import PostgresServer, find_binaries

    binaries = find_binaries()
    if binaries is None:
        if os.environ.get("LEADQ_REQUIRE_POSTGRES"):
            pytest.fail(
                "LEADQ_REQUIRE_POSTGRES is set but no PostgreSQL server is installed (apt-get install postgresql)"
            )
        pytest.skip("no PostgreSQL server installed (apt-get install postgresql); .ci/run installs one")
    folder = Path(tempfile.mkdtemp(prefix="leadq-postgres-"))  # under /tmp: the postgres user must reach it
    try:
        with PostgresServer(binaries, folder) as server:
            yield server.url
    finally:
        shutil.rmtree(folder, ignore_errors=True)
