"""CRM sync throughput: `leadq run` into a fake HubSpot and a fake Salesforce that enforce 100 requests per 10 s;
and HubSpot as the source: contacts read through the search API (5 searches a second) and written back in place.

    uv run python bench/crm.py --hubspot 10000 --salesforce 30000 --hubspot-source 20000

Each fake (the test suite's, tests/fake_crm.py) answers 429 to any request past the
window, exactly as the vendor would. Prints, per CRM: leads, API calls, calls per 100
leads, the largest count of requests in any 10 s window, the share of the window's
capacity the sync sustained over its complete windows, and the 429s it caused.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from generate import generate  # noqa: E402
from servers import leadq_json, servers_stopped  # noqa: E402

from tests.fake_crm import Window, sustained_share  # noqa: E402
from tests.fake_hubspot import FakeHubSpot, hubspot_owners  # noqa: E402
from tests.fake_salesforce import FakeSalesforce  # noqa: E402
from tests.fakes import FakeHttp  # noqa: E402

LIMIT, WINDOW_S = 100, 10.0
SDRS = [
    "avery@example.com",
    "blake@example.com",
    "casey@example.com",
    "devon@example.com",
    "emery@example.com",
    "finley@example.com",
    "gray@example.com",
    "harper@example.com",
]


def _run(source: Path, env: dict[str, str]) -> dict[str, Any]:
    return leadq_json(env, "run", "--source", str(source))


def _busiest_window(times: list[float]) -> int:
    busiest, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - WINDOW_S:
            start += 1
        busiest = max(busiest, end - start + 1)
    return busiest


def _bench(kind: str, n: int, folder: Path) -> None:
    signups, companies = generate(n)
    source, reference = folder / f"{kind}-signups.csv", folder / f"{kind}-companies.csv"
    signups.write_csv(source)
    companies.write_csv(reference)
    with FakeHttp().running() as server:
        env = {
            **os.environ,
            "LEADQ_HOME": str(folder / f"{kind}-home"),
            "LEADQ__CRM__KIND": kind,
            "LEADQ__ENRICHMENT__REFERENCE__PATH": str(reference),
        }
        fake: FakeHubSpot | FakeSalesforce
        if kind == "hubspot":
            fake = FakeHubSpot(server, window=Window(LIMIT, WINDOW_S), owners=hubspot_owners(SDRS))
            env |= {"HUBSPOT_ACCESS_TOKEN": fake.token, "LEADQ__CRM__HUBSPOT__BASE_URL": server.url}
        else:
            users = [{"Id": f"005SDR{i:04d}", "Email": e, "IsActive": True} for i, e in enumerate(SDRS)]
            fake = FakeSalesforce(server, window=Window(LIMIT, WINDOW_S), users=users)
            env |= {
                "SALESFORCE_CLIENT_ID": fake.client_id,
                "SALESFORCE_CLIENT_SECRET": fake.client_secret,
                "LEADQ__CRM__SALESFORCE__LOGIN_URL": server.url,
            }
        started = time.perf_counter()
        summary = _run(source, env)
        elapsed = time.perf_counter() - started
        times = fake.api_times()
        window = fake.window
        assert window is not None
        sync_s = times[-1] - times[0] if times else 0.0
        print(
            f"{kind:<10} {summary['leads']:>7,} leads  {summary['crm_api_calls']:>4} calls "
            f"({100 * summary['crm_api_calls'] / max(summary['leads'], 1):.2f} per 100 leads, "
            f"max {fake.max_inputs} records per call)  busiest {WINDOW_S:g} s window {_busiest_window(times)} "
            f"requests  sustained {100 * sustained_share(times, LIMIT, WINDOW_S):.1f}% of {LIMIT}/{WINDOW_S:g} s "
            f"over {sync_s:.1f} s of sync  429s {window.rejected}  written {summary['crm_written']:,}  "
            f"run {elapsed:.1f} s"
        )


def _bench_source(n: int, folder: Path) -> None:
    """n contacts a form created in HubSpot, read by `leadq run` with [source] kind = "hubspot"."""
    signups, companies = generate(n)
    reference = folder / "source-companies.csv"
    companies.write_csv(reference)
    with FakeHttp().running() as server:
        fake = FakeHubSpot(server, window=Window(LIMIT, WINDOW_S), owners=hubspot_owners(SDRS))
        names = {"first_name": "firstname", "last_name": "lastname", "job_title": "jobtitle", "country": "country"}
        for row in signups.iter_rows(named=True):
            fake.seed_contact(str(row["email"]).strip().lower(), **{p: row.get(c) for c, p in names.items()})
        env = {
            **os.environ,
            "LEADQ_HOME": str(folder / "source-home"),
            "LEADQ__CRM__KIND": "hubspot",
            "LEADQ__SOURCE__KIND": "hubspot",
            "LEADQ__ENRICHMENT__REFERENCE__PATH": str(reference),
            "HUBSPOT_ACCESS_TOKEN": fake.token,
            "LEADQ__CRM__HUBSPOT__BASE_URL": server.url,
        }
        started = time.perf_counter()
        summary = leadq_json(env, "run")
        elapsed = time.perf_counter() - started
        searches = [s.at for s in fake.requests if s.path.endswith("/search")]
        read_s = searches[-1] - searches[0] if len(searches) > 1 else 0.0
        busiest = max((sum(1 for u in searches if t <= u < t + 1.0) for t in searches), default=0)
        print(
            f"hubspot source {len(fake.records['contacts']):>7,} contacts  {summary['processed']:,} read  "
            f"{len(searches)} searches over {read_s:.1f} s ({len(searches) / max(read_s, 1e-9):.2f} a second; "
            f"limit 5, busiest 1 s {busiest})  {summary['processed'] / max(read_s, 1e-9):,.0f} contacts/s read  "
            f"429s {fake.search_window.rejected + (fake.window.rejected if fake.window else 0)}  "
            f"created {fake.creates['contacts']}  updated in place {fake.updates:,}  run {elapsed:.1f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hubspot", type=int, default=10_000, help="signups to sync to HubSpot (0: skip)")
    parser.add_argument("--salesforce", type=int, default=30_000, help="signups to sync to Salesforce (0: skip)")
    parser.add_argument("--hubspot-source", type=int, default=20_000, help="contacts to read from HubSpot (0: skip)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="leadq-bench-crm-") as tmp, servers_stopped(tmp):
        for kind, n in (("hubspot", args.hubspot), ("salesforce", args.salesforce)):
            if n:
                _bench(kind, n, Path(tmp))
        if args.hubspot_source:
            _bench_source(args.hubspot_source, Path(tmp))


if __name__ == "__main__":
    main()
