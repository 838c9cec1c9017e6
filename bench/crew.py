"""LLM calls per lead: leadq's hybrid (rules + crew for the uncertain band, one run per company)
against the one-crew-kickoff-per-lead pattern of the public CrewAI lead-scoring example.

    uv run python bench/crew.py 1000 --latency-ms 50 --per-lead-sample 40

A local OpenAI-compatible server answers every chat completion after a fixed latency.
The hybrid is a real `leadq run`; the per-lead pattern runs leadq's own crew once per
lead (researcher + analyst) on a sample and projects its wall time to all leads.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import servers_stopped

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from generate import generate

CALLS = {"n": 0}
LATENCY = {"s": 0.05}


class _Llm(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        CALLS["n"] += 1
        time.sleep(LATENCY["s"])
        prompt = "\n".join(str(m.get("content")) for m in body.get("messages", []))
        if body.get("tools"):
            content: dict[str, Any] = {"name": "Co", "industry": "software", "employees": 200, "sources": ["crm"]}
        else:
            refs = sorted(set(re.findall(r'"ref": "(L\d+)"', prompt)))
            content = {
                "leads": [{"ref": r, "score": 60, "tier": "B", "confidence": 0.7, "summary": "ok"} for r in refs]
            }
        reply = {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model"),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": json.dumps(content)}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 500, "completion_tokens": 80, "total_tokens": 580},
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: Any) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", type=int, nargs="?", default=1000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--per-lead-sample", type=int, default=40)
    args = parser.parse_args()
    LATENCY["s"] = args.latency_ms / 1000
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Llm)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    signups, companies = generate(args.n)
    with tempfile.TemporaryDirectory(prefix="leadq-bench-") as tmp, servers_stopped(tmp):
        folder = Path(tmp)
        signups.write_csv(folder / "signups.csv")
        companies.write_csv(folder / "companies.csv")
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEADQ__")}
        env |= {
            "LEADQ_HOME": str(folder / "home"),
            "LEADQ__ENRICHMENT__REFERENCE__PATH": str(folder / "companies.csv"),
            "LEADQ__LLM__MODEL": "openai/gpt-4o-mini",
            "LEADQ__LLM__BASE_URL": base_url,
            "LEADQ__LLM__MAX_CALLS_PER_RUN": "100000",
            "LEADQ__LLM__MAX_COST_USD_PER_RUN": "1000",
            "LEADQ__LLM__MAX_WORKERS": "4",
        }
        started = time.perf_counter()
        command = [
            str(Path(sys.executable).with_name("leadq")),
            "run",
            "--source",
            str(folder / "signups.csv"),
            "--json",
        ]
        proc = subprocess.run(command, env=env, capture_output=True, text=True)
        hybrid_s = time.perf_counter() - started
        if proc.returncode:
            raise SystemExit(proc.stderr[-3000:])
        hybrid = json.loads(proc.stdout)

    from connectors.settings import load_settings
    from crew.lead_crew import make_runner, use_config

    use_config(Path(__file__).resolve().parents[1] / "config" / "crew")
    llm = load_settings({}).llm.model_copy(update={"model": "openai/gpt-4o-mini", "base_url": base_url})
    run = make_runner(llm, "sk-bench", lambda d: {"domain": d})
    before = CALLS["n"]
    started = time.perf_counter()
    for row in signups.head(args.per_lead_sample).to_dicts():
        lead = {"ref": "L1", "job_title": row["job_title"], "country": row["country"]}
        run(
            {
                "domain": row["website"],
                "company": json.dumps({"domain": row["website"]}),
                "icp": "-",
                "leads": json.dumps([lead]),
            }
        )
    per_lead_s = (time.perf_counter() - started) / args.per_lead_sample
    per_lead_calls = (CALLS["n"] - before) / args.per_lead_sample
    server.shutdown()
    leads = hybrid["leads"]
    print(f"{args.n:,} signups, {leads:,} leads, LLM latency {args.latency_ms:g} ms per call")
    print(
        f"hybrid (leadq):   {hybrid['llm_calls'] / leads:.3f} LLM calls per lead, {hybrid['llm_calls']:,} calls,"
        f" {hybrid['crew_leads']:,} leads judged by the crew, wall {hybrid_s:.1f} s"
    )
    print(
        f"per-lead pattern: {per_lead_calls:.3f} LLM calls per lead, {per_lead_calls * leads:,.0f} calls,"
        f" wall {per_lead_s * leads:.1f} s projected from {args.per_lead_sample} kickoffs"
    )
    print(f"ratio: {per_lead_calls / max(hybrid['llm_calls'] / leads, 1e-9):.1f}x fewer calls per lead")


if __name__ == "__main__":
    main()
