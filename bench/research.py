"""What research costs: `leadq run` on N signups of N companies no provider knows, each with a site.

    uv run python bench/research.py            # 50 companies
    uv run python bench/research.py 200

No LLM or website is reachable here, so the run goes to local stand-ins (the test suite's):
a site per company whose about page states its industry and size, and a scripted
OpenAI-compatible server whose researcher reads that page (one `company_pages` call), then
answers findings with the page's URL. Every company is uncertain (no firmographics), so
every one is researched; half the leads are VPs of sales, whom the new facts may settle.
Prints research tool calls and LLM calls per uncertain company, how many companies gained
which field, and how many leads the new facts settled without the analyst.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.conftest import offline_settings  # noqa: E402
from tests.fakes import FakeHttp, ScriptedLlm, html  # noqa: E402

INDUSTRIES = ["Software", "Fintech", "e-learning", "Retail", "Technolgy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", type=int, nargs="?", default=50, help="companies (one signup each)")
    args = parser.parse_args()
    with FakeHttp().running() as fake, tempfile.TemporaryDirectory(prefix="leadq-research-") as tmp:
        work = Path(tmp)
        llm = ScriptedLlm(fake)
        llm.tool_script = [("company_pages", {"domain": "{domain}", "page": "about"})]
        rows = ["email,job_title,country,signed_up_at"]
        for i in range(args.n):
            domain, industry, size = f"co{i}.io", INDUSTRIES[i % len(INDUSTRIES)], f"{10 * (i % 40) + 11}-200"
            about = f"{fake.url}/sites/{domain}/about"
            fake.routes[f"/sites/{domain}/about"] = html(f"<p>Co {i} is a {industry} company of {size} people.</p>")
            llm.profiles[domain] = {
                "findings": [
                    {"field": "industry", "value": industry, "url": about},
                    {"field": "employees", "value": size, "url": about},
                ]
            }
            title = "VP Sales" if i % 2 else "Operations Manager"
            rows.append(f"lead@{domain},{title},US,2026-11-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z")
        (work / "signups.csv").write_text("\n".join(rows) + "\n")
        shutil.copytree(ROOT / "config", work / "config")
        offline_settings(work / "config")
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEADQ__")}
        env |= {
            "LEADQ_CONFIG_DIR": str(work / "config"),
            "LEADQ_HOME": str(work / "home"),
            "PREFECT_HOME": str(work / "prefect"),
            "LEADQ__LLM__MODEL": "openai/gpt-4o-mini",
            "LEADQ__LLM__BASE_URL": f"{fake.url}/v1",
            "LEADQ__LLM__MAX_CALLS_PER_RUN": str(10 * args.n),
            "LEADQ__LLM__MAX_COST_USD_PER_RUN": "100",
            "LEADQ__ENRICHMENT__WEBSITE__URL_TEMPLATE": f"{fake.url}/sites/{{domain}}/",
            "LEADQ__ENRICHMENT__WEBSITE__ALLOW_PRIVATE_NETWORKS": "true",
        }
        leadq = Path(sys.executable).with_name("leadq")
        try:
            done = subprocess.run(
                [str(leadq), "run", "--source", str(work / "signups.csv"), "--json"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                sys.exit(f"leadq run failed ({done.returncode}):\n{done.stderr[-3000:]}")
        finally:
            subprocess.run([str(leadq), "server", "--stop"], env=env, capture_output=True, check=False)
    summary = json.loads(done.stdout)
    companies = summary["research_companies"] or 1
    settled = summary["leads"] - summary["by_method"].get("crew", 0) - summary["by_method"].get("review", 0)
    print(f"{args.n} uncertain companies, one signup each; researched {summary['research_companies']}")
    print(f"research tool calls per uncertain company: {summary['research_tool_calls'] / companies:.2f}")
    print(f"LLM calls per uncertain company: {summary['llm_calls'] / companies:.2f}")
    print(f"search credits: {summary['research_search_credits']}")
    print(f"companies that gained a field: {summary['research_fields_gained']}")
    print(f"findings dropped (no URL a tool returned): {summary['research_findings_dropped']}")
    print(f"leads the new facts settled without the analyst: {settled} of {summary['leads']}")


if __name__ == "__main__":
    main()
