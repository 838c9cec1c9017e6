"""The labelled golden set: synthetic B2B signups with outcomes from a known, hidden propensity.

    uv run python bench/golden.py                                   # writes config/data/golden.csv (3,000 rows)
    uv run python bench/golden.py 100000 --out bench/out/labelled-100k.csv

How it is made (deterministic for a seed):
- 600 companies with an industry, a log-normal head count and a country (ISO code), as
  an enrichment snapshot; 5 signups per company on average, with a job title, a seat
  count, a plan and an acquisition source; 8 % free mail, 2 % disposable, 2 % role
  accounts, 0.5 % malformed (prepare rejects those).
- Each signup's chance to convert is a logistic function of a hidden "truth" that is NOT
  leadq's ICP: industry, size, seniority and function, email type, log(seats), plan,
  source and region, each with its own effect (TRUTH below), plus noise N(0, 0.5).
  `label_qualified` is a draw from that chance (about 1 in 4 converts).
- `label_tier` is what a careful person would say: the same truth with less noise, cut
  at the 85th / 65th / 40th percentiles into A / B / C / D; disposable mail and competitors
  are `disqualified`. `label_queue` routes that tier with config/routing.yaml.

So leadq's shipped ICP is good but not perfect on it (it cannot see plan or source, and
weighs region more than the truth does), and `leadq calibrate` has something to learn.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from connectors.routing import assign_queues, load_routing  # noqa: E402

# The hidden truth: log-odds effects on converting.
INDUSTRY = {
    "computer software": 1.2,
    "internet": 0.9,
    "information technology and services": 0.6,
    "financial services": 0.5,
    "marketing and advertising": 0.2,
    "e-learning": 0.0,
    "retail": -0.6,
    "hospital & health care": -0.4,
    "mechanical or industrial engineering": -0.8,
}
TITLES = {
    "Chief Revenue Officer": 1.1,
    "VP of Revenue Operations": 1.2,
    "VP Sales": 0.9,
    "Head of Growth": 0.9,
    "Director of Sales Operations": 0.9,
    "Director of Marketing": 0.5,
    "RevOps Manager": 0.7,
    "Sales Manager": 0.4,
    "Marketing Manager": 0.2,
    "Account Executive": 0.1,
    "CEO": 0.4,
    "Software Engineer": -0.5,
    "Product Manager": -0.1,
    "Data Analyst": -0.3,
    "Marketing Intern": -1.5,
    "Student": -1.8,
}
PLANS = {"free": -0.6, "team": 0.0, "business": 0.4, "enterprise": 0.9}
SOURCES = {"partner": 0.6, "webinar": 0.4, "paid_search": 0.1, "organic": 0.0, "product_hunt": -0.3}
COUNTRIES = {
    "US": 0.2,
    "CA": 0.2,
    "GB": 0.1,
    "DE": 0.1,
    "NL": 0.1,
    "FR": 0.0,
    "SE": 0.0,
    "AU": 0.0,
    "IN": -0.2,
    "BR": -0.2,
    "JP": -0.1,
}
EMAIL = {"work": 0.0, "free": -1.0, "role": -0.5, "disposable": -3.0, "bad": 0.0}
COMPETITORS = ["hubspot.com", "salesforce.com"]


def _size_effect(employees: np.ndarray) -> np.ndarray:
    return np.select(
        [employees <= 10, employees <= 50, employees <= 200, employees <= 2000, employees <= 5000],
        [-1.2, -0.3, 0.4, 0.9, 0.7],
        0.2,
    )


def generate(n: int, seed: int = 11) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n_companies = max(n // 5, 2)
    industries = rng.choice(list(INDUSTRY), n_companies, p=[0.25, 0.15, 0.12, 0.1, 0.1, 0.06, 0.1, 0.06, 0.06])
    employees = rng.lognormal(4.6, 1.6, n_companies).astype(int) + 1
    countries = rng.choice(
        list(COUNTRIES), n_companies, p=[0.4, 0.05, 0.1, 0.08, 0.05, 0.05, 0.03, 0.05, 0.08, 0.06, 0.05]
    )
    domains = np.array([f"firm{c}.com" for c in range(n_companies)])
    domains[:2] = COMPETITORS

    company = rng.integers(0, n_companies, n)
    kind = rng.choice(list(EMAIL), n, p=[0.875, 0.08, 0.02, 0.02, 0.005])
    title = rng.choice(list(TITLES), n)
    seats = np.maximum(1, rng.lognormal(1.6, 1.0, n).astype(int))
    plan = rng.choice(list(PLANS), n, p=[0.4, 0.3, 0.2, 0.1])
    source = rng.choice(list(SOURCES), n, p=[0.1, 0.1, 0.2, 0.5, 0.1])

    truth = (
        -2.9
        + np.vectorize(INDUSTRY.get)(industries[company])
        + _size_effect(employees[company])
        + np.vectorize(TITLES.get)(title)
        + np.vectorize(EMAIL.get)(kind)
        + 0.45 * np.log1p(seats)
        + np.vectorize(PLANS.get)(plan)
        + np.vectorize(SOURCES.get)(source)
        + np.vectorize(COUNTRIES.get)(countries[company])
    )
    converted = rng.random(n) < 1 / (1 + np.exp(-(truth + rng.normal(0, 0.5, n))))
    judged = truth + rng.normal(0, 0.3, n)
    cuts = np.quantile(judged, [0.40, 0.65, 0.85])
    tier = np.select([judged >= cuts[2], judged >= cuts[1], judged >= cuts[0]], ["A", "B", "C"], "D")
    competitor = np.isin(domains[company], COMPETITORS)
    disqualified = (kind == "disposable") | competitor
    tier = np.where(disqualified, "disqualified", tier)
    converted &= ~disqualified

    i = np.arange(n)
    domain = domains[company]
    email = np.select(
        [kind == "free", kind == "disposable", kind == "role", kind == "bad"],
        [
            np.char.add(np.char.add("person", i.astype(str)), "@gmail.com"),
            np.char.add(np.char.add("person", i.astype(str)), "@mailinator.com"),
            np.char.add("info", np.char.add(np.char.add("+", i.astype(str)), np.char.add("@", domain))),
            np.char.add(np.char.add("person", i.astype(str)), np.char.add(" at ", domain)),
        ],
        np.char.add(np.char.add("person", i.astype(str)), np.char.add("@", domain)),
    )
    frame = pl.DataFrame(
        {
            "signup_id": [f"g-{k}" for k in i],
            "email": email,
            "first_name": [f"First{k}" for k in i],
            "last_name": [f"Last{k}" for k in i],
            "job_title": title,
            "company_name": [f"Firm {c}" for c in company],
            "website": domain,
            "country": countries[company],
            "industry": industries[company],
            "employees": employees[company],
            "company_country": countries[company],
            "seats_requested": seats,
            "plan": plan,
            "source": source,
            "signed_up_at": [f"2026-0{1 + k % 9}-{1 + k % 28:02d}T{k % 24:02d}:00:00Z" for k in i],
            "label_qualified": converted.astype(int),
            "label_tier": tier,
        }
    )
    routing = load_routing(REPO / "config" / "routing.yaml")
    queued = assign_queues(frame.with_columns(pl.col("label_tier").alias("tier")), routing)
    return frame.with_columns(queued["queue"].alias("label_queue"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", type=int, nargs="?", default=3000, help="rows (default 3,000)")
    parser.add_argument("--out", type=Path, default=REPO / "config" / "data" / "golden.csv")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    frame = generate(args.n, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.write_csv(args.out)
    rate = frame["label_qualified"].mean()
    print(f"wrote {frame.height:,} labelled signups to {args.out} ({rate:.1%} converted)")


if __name__ == "__main__":
    main()
