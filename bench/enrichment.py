"""Enrichment cost: provider lookups per lead when many leads share companies, and a rerun's calls.

    uv run python bench/enrichment.py 20000

Serves every synthetic company's homepage (schema.org JSON-LD) from a local server,
runs `leadq run` on N signups, then on N new signups from the same companies, and
prints lookups per lead next to unique company domains per lead. The second run
must make 0 calls: every company is in the cache.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate
from servers import leadq_json, servers_stopped


class _Site(BaseHTTPRequestHandler):
    """Any /sites/<domain>/ answers with that company's JSON-LD."""

    def do_GET(self) -> None:
        domain = self.path.strip("/").split("/")[-1]
        org = {"@type": "Organization", "name": domain, "industry": "Computer Software", "numberOfEmployees": 250}
        body = f'<html><head><script type="application/ld+json">{json.dumps(org)}</script></head></html>'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


def _run(path: Path, env: dict[str, str]) -> dict[str, Any]:
    return leadq_json(env, "run", "--source", str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", type=int, help="number of signups")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    signups, _ = generate(args.n)
    later = signups.with_columns(
        pl.col("email").str.replace("@", "+again@"),
        pl.col("signup_id") + "-again",
        pl.col("signed_up_at").str.replace("^2026", "2027"),
    )
    with tempfile.TemporaryDirectory(prefix="leadq-bench-") as tmp, servers_stopped(tmp):
        first, second = Path(tmp) / "first.csv", Path(tmp) / "second.csv"
        signups.write_csv(first)
        later.write_csv(second)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEADQ__")}
        env |= {
            "LEADQ_HOME": str(Path(tmp) / "home"),
            "LEADQ__ENRICHMENT__PROVIDERS": '["website"]',
            "LEADQ__ENRICHMENT__WEBSITE__URL_TEMPLATE": f"http://127.0.0.1:{server.server_address[1]}/sites/{{domain}}/",
            "LEADQ__ENRICHMENT__WEBSITE__ALLOW_PRIVATE_NETWORKS": "true",
            "LEADQ__ENRICHMENT__WEBSITE__PROBE_HOST": "",
            "LEADQ__ENRICHMENT__WEBSITE__RATE_PER_S": "0",
            "LEADQ__ENRICHMENT__WEBSITE__MAX_CONCURRENCY": "8",
        }
        started = time.perf_counter()
        one = _run(first, env)
        seconds = time.perf_counter() - started
        two = _run(second, env)
    server.shutdown()
    leads = one["leads"]
    calls, rerun_calls = one["enrichment_calls"]["website"], two["enrichment_calls"]["website"]
    print(f"signups {args.n:,}: {leads:,} leads, {calls:,} website lookups, run took {seconds:.1f} s")
    print(f"lookups per lead        {calls / leads:.4f}")
    print(f"unique domains per lead {one['company_domains'] / leads:.4f}")
    print(f"rerun with {two['leads']:,} new leads of the same companies: {rerun_calls} provider calls")


if __name__ == "__main__":
    main()
