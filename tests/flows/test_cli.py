"""The `leadq` command line, as a user types it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import requests
from typer.testing import CliRunner

from connectors.settings import load_settings
from connectors.store import Store
from flows import local_server, prefect_seed
from flows.cli import app
from flows.nothing_new import NOT_STARTED
from tests.conftest import SAMPLE

runner = CliRunner()


def test_help_lists_commands_and_options() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "export", "server"):
        assert command in result.stdout
    run_help = runner.invoke(app, ["run", "--help"]).stdout
    assert "--source" in run_help and "--dry-run" in run_help and "--json" in run_help


def test_bad_config_is_one_line_exit_2_and_nothing_processed(config_dir: Path) -> None:
    icp = config_dir / "icp.yaml"
    icp.write_text(icp.read_text().replace("weight: 25", "weight: heavy"))
    result = runner.invoke(app, ["run", "--json"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(icp) in lines[0] and "criteria.industry.weight" in lines[0] and "heavy" in lines[0]
    assert result.stdout == ""
    assert not Store(load_settings().store_url).exists()


def test_source_without_email_column_is_exit_2(config_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("name,mail\nAna,ana@acme.io\n")
    result = runner.invoke(app, ["run", "--source", str(path)])
    assert result.exit_code == 2
    assert "required column 'email'" in result.stderr and str(path) in result.stderr


def test_export_before_any_run_explains(config_dir: Path) -> None:
    result = runner.invoke(app, ["export"])
    assert result.exit_code == 1
    assert "run `leadq run` first" in result.stderr


@pytest.mark.usefixtures("prefect_api")
def test_run_json_then_export_csv_and_parquet(config_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--json"])
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    for key in ("run_id", "processed", "rejected", "qualified", "by_tier", "by_queue", "duration_s"):
        assert key in summary
    assert summary["processed"] == 30

    refreshed = runner.invoke(app, ["run", "--refresh-enrichment", "--json"])
    assert refreshed.exit_code == 0, refreshed.stderr
    assert json.loads(refreshed.stdout)["processed"] == 0

    csv = runner.invoke(app, ["export"])
    assert csv.exit_code == 0
    header = csv.stdout.splitlines()[0].split(",")
    for column in (
        "email",
        "company_domain",
        "score",
        "tier",
        "confidence",
        "queue",
        "owner",
        "reasons",
        "icp_version",
    ):
        assert column in header
    assert len(csv.stdout.strip().splitlines()) == 1 + 27

    out = tmp_path / "leads.parquet"
    assert runner.invoke(app, ["export", "--out", str(out)]).exit_code == 0
    frame = pl.read_parquet(out)
    assert frame.height == 27 and frame["email"].n_unique() == 27
    assert runner.invoke(app, ["export", "--out", str(tmp_path / "leads.xlsx")]).exit_code == 2


def test_csv_exports_never_hand_a_spreadsheet_a_formula(config_dir: Path, tmp_path: Path) -> None:
    hostile = tmp_path / "hostile.csv"
    hostile.write_text(
        "email,job_title,company_name,signed_up_at\n"
        'ana@hostile-example.io,@SUM(1+1),"=HYPERLINK(""http://evil.example"",""x"")",2026-11-01T10:00:00Z\n'
        "bo@other-example.io,+cmd|' /C calc'!A0,-2+3,2026-11-01T10:01:00Z\n"
    )
    assert runner.invoke(app, ["run", "--source", str(hostile)]).exit_code == 0
    shown = pl.read_csv(runner.invoke(app, ["export"]).stdout.encode(), infer_schema=False)
    cells = shown.select("job_title", "company_name").rows()
    assert ("'@SUM(1+1)", '\'=HYPERLINK("http://evil.example","x")') in cells
    assert ("'+cmd|' /C calc'!A0", "'-2+3") in cells
    assert not any(c.startswith(("=", "+", "-", "@")) for row in cells for c in row if c)
    raw = pl.read_csv(runner.invoke(app, ["export", "--raw"]).stdout.encode(), infer_schema=False)
    assert ("@SUM(1+1)", '=HYPERLINK("http://evil.example","x")') in raw.select("job_title", "company_name").rows()
    out = tmp_path / "leads.parquet"
    assert runner.invoke(app, ["export", "--out", str(out)]).exit_code == 0
    assert "@SUM(1+1)" in pl.read_parquet(out)["job_title"].to_list()  # Parquet is for machines: values exactly


@pytest.fixture
def fresh_machine(config_dir: Path, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a user's first `leadq`: no Prefect server, no settings in the environment.
    The local server the test's runs start is stopped afterwards."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LEADQ__"))}
    env |= {"LEADQ_CONFIG_DIR": str(config_dir), "LEADQ_HOME": str(tmp_path / "home")}
    yield env
    local_server.stop(tmp_path / "home" / "prefect")


def test_a_run_with_nothing_new_starts_no_flow_and_a_new_signup_starts_one(config_dir: Path) -> None:
    first = json.loads(runner.invoke(app, ["run", "--json"]).stdout)
    assert first["processed"] == 30 and "prefect" not in first

    quiet = json.loads(runner.invoke(app, ["run", "--json"]).stdout)
    assert (quiet["processed"], quiet["leads"], quiet["prefect"]) == (0, 0, NOT_STARTED)
    runs = Store(load_settings().store_url).read("select run_id, status, processed from runs order by started_at")
    assert runs.height == 2 and runs["status"].to_list() == ["completed", "completed"]
    dry = json.loads(runner.invoke(app, ["run", "--dry-run", "--json"]).stdout)
    assert dry["prefect"] == NOT_STARTED and dry["dry_run"] is True
    assert Store(load_settings().store_url).read("select run_id from runs").height == 2  # a dry run records nothing

    sample = config_dir / "data" / "sample_signups.csv"
    row = sample.read_text().splitlines()[1]
    late = row.replace("s-1001", "s-9001").replace("maria.lopez@", "late.signup@").replace("2026-11-02", "2026-11-30")
    sample.write_text(sample.read_text().rstrip("\n") + "\n" + late + "\n")
    news = json.loads(runner.invoke(app, ["run", "--json"]).stdout)
    assert news["leads"] == 1 and "prefect" not in news  # a flow run did it


def test_installed_command_twice_is_clean(fresh_machine: dict[str, str], tmp_path: Path) -> None:
    """The quickstart path: the real `leadq` script starts leadq's local Prefect server; the second
    run finds nothing new, and says so without starting a flow."""
    leadq = Path(sys.executable).with_name("leadq")
    env = fresh_machine
    first = subprocess.run([leadq, "run"], env=env, capture_output=True, text=True, timeout=400, check=False)
    output = first.stdout + first.stderr
    assert first.returncode == 0, output
    assert "Traceback" not in output and "ERROR" not in output
    assert "processed" in first.stdout and "30" in first.stdout
    assert "starting leadq's local Prefect server" in first.stderr

    second = subprocess.run([leadq, "run", "--json"], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert second.returncode == 0, second.stderr
    assert "Traceback" not in second.stderr and "ERROR" not in second.stderr
    quiet = json.loads(second.stdout)
    assert (quiet["processed"], quiet["leads"], quiet["prefect"]) == (0, 0, NOT_STARTED)
    assert local_server.recorded(tmp_path / "home" / "prefect") is not None  # the history lives under LEADQ_HOME


def test_runs_share_one_local_prefect_server(fresh_machine: dict[str, str], tmp_path: Path) -> None:
    """Two runs started at once on a fresh machine start one server; a later run, `leadq server` and
    the UI's API all see the same one, with both flow runs in its history; --stop stops it."""
    leadq = Path(sys.executable).with_name("leadq")
    other = tmp_path / "other.csv"
    header, row = SAMPLE.read_text().splitlines()[:2]
    other.write_text(f"{header}\n{row.replace('s-1001', 's-9001').replace('maria.lopez@', 'zoe@')}\n")
    env = fresh_machine
    both = [
        subprocess.Popen([leadq, "run", "--json", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for args in ([], ["--source", str(other)])
    ]
    outputs = [run.communicate(timeout=400) for run in both]
    assert [run.returncode for run in both] == [0, 0], [err[-2000:] for _, err in outputs]
    server = local_server.recorded(tmp_path / "home" / "prefect")
    assert server is not None and server.healthy()
    shown = subprocess.run([leadq, "server"], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert f"{server.ui}" in shown.stdout and f"pid {server.pid}" in shown.stdout
    runs = requests.post(f"{server.url}/flow_runs/filter", json={}, timeout=10).json()
    assert sorted(r["state"]["type"] for r in runs) == ["COMPLETED", "COMPLETED"]

    stopped = subprocess.run([leadq, "server", "--stop"], env=env, capture_output=True, text=True, timeout=60)
    assert stopped.returncode == 0 and f"pid {server.pid}" in stopped.stderr
    assert not server.alive() and local_server.recorded(server.home) is None


def test_a_recorded_server_whose_pid_now_belongs_to_another_process_is_not_used(tmp_path: Path) -> None:
    """After a reboot the recorded pid may be another program's: it is neither waited for nor stopped."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        home = tmp_path / "prefect"
        home.mkdir()
        state = {"url": "http://127.0.0.1:9/api", "pid": other.pid, "started_at": 1_000_000.0}
        (home / local_server.STATE_FILE).write_text(json.dumps(state))
        assert local_server.recorded(home) is None
        assert local_server.stop(home) is None and other.poll() is None  # still running: not ours to stop
    finally:
        other.kill()
        other.wait()


def test_the_server_gets_its_own_database_settings_but_none_of_leadqs_secrets(tmp_path: Path) -> None:
    user = {
        "PATH": "/usr/bin",
        "PREFECT_API_DATABASE_CONNECTION_URL": "postgresql+asyncpg://prefect@db/prefect",  # the legacy name
        "PREFECT_SERVER_DATABASE_PASSWORD": "db-secret",
        "PREFECT_API_URL": "http://elsewhere/api",
        "PREFECT_API_KEY": "pnu_cloud",
        "HUBSPOT_TOKEN": "pat-na1-x",
        "SLACK_WEBHOOK_SALES": "https://hooks.slack.com/services/x",
        "LEADQ__STORE__URL": "postgresql://leadq:pw@db/leadq",
    }
    env = local_server.server_environment(user, tmp_path)
    assert env["PREFECT_API_DATABASE_CONNECTION_URL"] == user["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert env["PREFECT_SERVER_DATABASE_PASSWORD"] == "db-secret"
    assert env["PATH"] == "/usr/bin" and env["PREFECT_HOME"] == str(tmp_path)
    for gone in ("PREFECT_API_URL", "PREFECT_API_KEY", "HUBSPOT_TOKEN", "SLACK_WEBHOOK_SALES", "LEADQ__STORE__URL"):
        assert gone not in env
    # a server on PostgreSQL gets no SQLite database written into its home
    assert not prefect_seed.seed(tmp_path, env) and not (tmp_path / "prefect.db").exists()


def test_a_first_run_succeeds_while_the_machine_is_saturated(fresh_machine: dict[str, str]) -> None:
    """A fresh LEADQ_HOME (leadq's local Prefect server starts on a new database) while every
    core is busy: Prefect's in-process API missed its 20 s start-up timeout here and nothing was processed."""
    env = fresh_machine
    burn = "import time\nend = time.monotonic() + 240\nwhile time.monotonic() < end: pass"
    hogs = [subprocess.Popen([sys.executable, "-c", burn]) for _ in range(3 * (os.cpu_count() or 2))]
    try:
        leadq = Path(sys.executable).with_name("leadq")
        done = subprocess.run(
            [leadq, "run", "--json"], env=env, capture_output=True, text=True, timeout=400, check=False
        )
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "ERROR" not in done.stderr
    assert json.loads(done.stdout)["processed"] == 30


def test_edit_company_marks_fields_as_set_by_a_person(config_dir: Path) -> None:
    result = runner.invoke(app, ["edit-company", "acme.io", "industry=healthcare", "employees=40", "--by", "rita"])
    assert result.exit_code == 0, result.stderr
    row = Store(load_settings().store_url).companies(["acme.io"])["acme.io"]
    assert (row["industry"], row["employees"]) == ("healthcare", 40)
    assert json.loads(row["edited_fields"]) == ["employees", "industry"]
    assert json.loads(row["provenance"])["industry"]["source"] == "person:rita"
    bad = runner.invoke(app, ["edit-company", "acme.io", "colour=blue"])
    assert bad.exit_code == 2 and "expected FIELD=VALUE" in bad.stderr


def test_dead_letters_list_shows_each_rejected_row_with_its_reason(config_dir: Path) -> None:
    empty = runner.invoke(app, ["dead-letters", "list"])
    assert empty.exit_code == 0 and "nothing has been processed" in empty.stderr
    assert runner.invoke(app, ["run", "--json"]).exit_code == 0
    listed = runner.invoke(app, ["dead-letters", "list", "--json"])
    assert listed.exit_code == 0
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(r["reason"] for r in rows) == [
        "email 'not-an-email' is not valid: expected name@domain.tld",
        "email is empty",
    ]
    assert runner.invoke(app, ["dead-letters", "list", "--crm", "--json"]).stdout == ""
    table = runner.invoke(app, ["dead-letters", "list"]).stdout
    assert "email is empty" in table and "source" in table


def test_control_characters_and_markup_from_the_data_never_reach_the_terminal(
    config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows import console

    monkeypatch.setattr(console.out, "width", 400)  # one line per row, so the test can read a cell whole
    hostile = tmp_path / "hostile.csv"
    hostile.write_text(
        "email,signed_up_at\n"
        '"x\x1b]0;owned\x07\x1b[2J[bold red]fake[/]\u202egnp.exe@",2026-11-01T10:00:00Z\n'
        "ok@fine-example.io,2026-11-01T10:01:00Z\n",
        encoding="utf-8",
    )
    assert runner.invoke(app, ["run", "--source", str(hostile)]).exit_code == 0
    table = runner.invoke(app, ["dead-letters", "list"]).stdout
    assert "\\x1b]0;owned\\x07\\x1b[2j" in table and "\\u202e" in table  # shown as escapes...
    assert "[bold red]fake[/]" in table  # ...and the markup as text
    assert not any(ch in table for ch in "\x1b\x07\u202e")
    missing = runner.invoke(app, ["explain", "who\x1b[2J\r@nowhere.io"])
    assert missing.exit_code != 0 and "who\\x1b[2J\\r@nowhere.io" in missing.stderr
    assert not any(ch in missing.stderr for ch in "\x1b\r")


def test_store_errors_name_the_store_but_never_its_password(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADQ__STORE__URL", "postgresql+psycopg://bob:hunter2secret@127.0.0.1:1/leads")
    for args in (["export"], ["dead-letters", "list"], ["run"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, args
        assert "store postgresql+psycopg://bob:***@127.0.0.1:1/leads: cannot connect" in result.stderr, args
        assert "hunter2secret" not in result.stdout + result.stderr and "Traceback" not in result.stderr, args
    monkeypatch.setenv("LEADQ__STORE__URL", "nosuchdb://bob:hunter2secret@db.internal/leads")
    result = runner.invoke(app, ["export"])
    assert result.exit_code == 2 and "'nosuchdb://bob:***@db.internal/leads'" in result.stderr
    assert "hunter2secret" not in result.stdout + result.stderr


def test_the_end_summary_shows_the_books_and_the_time_per_step(config_dir: Path) -> None:
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())  # the terminal wraps lines
    assert "books: 30 read = 27 leads + 1 duplicates + 2 rejected + 0 already known" in text
    assert "time: prepare" in text and " · sync " in text


def test_help_loads_nothing_heavy() -> None:
    """`leadq --help` must stay instant: polars, SQLAlchemy, Prefect and CrewAI load only in the commands."""
    heavy = "('polars', 'sqlalchemy', 'prefect', 'crewai')"
    code = f"import sys, flows.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


@pytest.fixture
def prefect_pointed_back() -> Iterator[None]:
    """For a test whose `connect` points this process's Prefect at another server: the address is unset
    during the test, and the suite's server is this process's Prefect's again after it."""
    names = ("PREFECT_API_URL", "PREFECT_CLIENT_SERVER_VERSION_CHECK_ENABLED")
    saved = {name: os.environ.pop(name, None) for name in names}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    import prefect.context

    prefect.context.refresh_global_settings_context()  # connect made Prefect read the other address


@pytest.mark.usefixtures("prefect_pointed_back")
def test_a_server_that_answers_health_but_not_yet_its_api_is_waited_for(config_dir: Path) -> None:
    """On a busy machine the API can lag /health; Prefect's own 5 s version check then failed whole runs."""
    import psutil

    from tests.fakes import FakeHttp, Reply, json_reply

    with FakeHttp().running() as fake:
        fake.routes["/api/health"] = json_reply(True)
        fake.routes["/api/admin/version"] = [Reply(503), Reply(503), json_reply("3.8.0")]
        me = psutil.Process()
        server = local_server.LocalServer(f"{fake.url}/api", me.pid, me.create_time(), Path("."))
        local_server.connect(server, load_settings().runtime, lambda _: None)
        assert fake.hits("/api/admin/version") == 3  # ready only once the API itself answered
        assert os.environ["PREFECT_API_URL"] == f"{fake.url}/api"
        assert os.environ["PREFECT_CLIENT_SERVER_VERSION_CHECK_ENABLED"] == "false"  # the server is ours


@pytest.mark.usefixtures("prefect_pointed_back")
def test_a_recorded_server_that_died_before_answering_is_replaced_once(tmp_path: Path) -> None:
    """A run that finds the server while it is being stopped (`leadq server --stop`, a kill; here a killed
    process nobody reaped yet) starts a new one instead of failing with "stopped while starting"."""
    import psutil

    home = tmp_path / "prefect"
    home.mkdir()
    dying = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        born = psutil.Process(dying.pid).create_time()
        gone = local_server.LocalServer("http://127.0.0.1:9/api", dying.pid, born, home)
        state = {"url": gone.url, "pid": gone.pid, "started_at": gone.started_at}
        (home / local_server.STATE_FILE).write_text(json.dumps(state))
        assert local_server.recorded(home) == gone  # found while still running
        dying.kill()  # and killed before it answered: a zombie until reaped, which counts as gone
        local_server.connect(gone, load_settings().runtime, lambda _: None)
        fresh = local_server.recorded(home)
        assert fresh is not None and fresh.pid != dying.pid and fresh.healthy()
        assert os.environ["PREFECT_API_URL"] == fresh.url
    finally:
        dying.wait()
        local_server.stop(home)
