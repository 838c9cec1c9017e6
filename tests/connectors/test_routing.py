from __future__ import annotations

from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from connectors.errors import ConfigError
from connectors.routing import load_routing, rotation, route_leads
from connectors.routing.config import Account, RoutingConfig

CONFIG = RoutingConfig.model_validate(
    {
        "segments": [{"name": "enterprise", "min_employees": 1000}, {"name": "smb", "min_employees": 0}],
        "territories": {"na": ["US", "CA"]},
        "rules": [
            {"tiers": ["A"], "segments": ["enterprise"], "queue": "ent"},
            {"tiers": ["A", "B"], "territories": ["na"], "queue": "na"},
        ],
        "fallback_queue": "nurture",
        "queues": {
            "ent": {"sdrs": [{"email": "ann@x", "weight": 2}, {"email": "bo@x", "weight": 1}]},
            "na": {"sdrs": [{"email": "cy@x"}]},
            "nurture": {"sdrs": []},
        },
    }
)
NO_ASSIGNMENTS = pl.DataFrame(schema={"email": pl.String, "queue": pl.String, "owner": pl.String})


def _leads(n: int, tier: str = "A", employees: int = 5000, country: str = "US", start: int = 0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "email": [f"l{i}@x.io" for i in range(start, start + n)],
            "tier": [tier] * n,
            "employees": [employees] * n,
            "company_country": [country] * n,
        }
    )


def test_rotation_is_smooth_and_weighted() -> None:
    assert rotation({"a": 2, "b": 1}) == ["a", "b", "a"]
    assert Counter(rotation({"a": 3, "b": 1, "c": 2})) == {"a": 3, "b": 1, "c": 2}


def test_queues_follow_rules_in_order_with_fallback_and_no_owner_for_disqualified() -> None:
    leads = pl.concat(
        [
            _leads(1),
            _leads(1, employees=50, start=1),
            _leads(1, "C", start=2),
            _leads(1, "disqualified", start=3),
            _leads(1, "B", employees=50, country="FR", start=4),
        ]
    )
    out, _ = route_leads(leads, CONFIG, {}, NO_ASSIGNMENTS)
    assert out["queue"].to_list() == ["ent", "na", "nurture", None, "nurture"]
    assert out["owner"].to_list() == ["ann@x", "cy@x", None, None, None]
    assert out["segment"].to_list()[:2] == ["enterprise", "smb"]


def test_rotation_carries_over_between_batches_without_skips() -> None:
    first, positions = route_leads(_leads(2), CONFIG, {}, NO_ASSIGNMENTS)
    second, positions = route_leads(_leads(4, start=2), CONFIG, positions, NO_ASSIGNMENTS)
    owners = first["owner"].to_list() + second["owner"].to_list()
    assert owners == ["ann@x", "bo@x", "ann@x", "ann@x", "bo@x", "ann@x"]
    assert positions["ent"] == 0


def test_already_assigned_leads_keep_their_owner_and_take_no_turn() -> None:
    existing = pl.DataFrame({"email": ["l0@x.io"], "queue": ["ent"], "owner": ["bo@x"]})
    out, positions = route_leads(_leads(2), CONFIG, {}, existing)
    assert out["owner"].to_list() == ["bo@x", "ann@x"]
    assert positions["ent"] == 1


def test_routing_file_refers_to_defined_queues(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text("fallback_queue: missing\nqueues: {a: {sdrs: []}}\n")
    with pytest.raises(ConfigError, match="missing"):
        load_routing(path)


def test_shipped_routing_is_valid(config_dir: Path) -> None:
    assert "nurture" in load_routing(config_dir / "routing.yaml").queues


def test_an_owner_set_in_the_crm_is_kept_takes_no_turn_unless_the_queue_reassigns() -> None:
    leads = _leads(3)  # all go to "ent" (ann, bo, ann)
    crm = pl.DataFrame({"email": ["l0@x.io"], "crm_owner": ["zoe@x"]})
    routed, positions = route_leads(leads, CONFIG, {}, NO_ASSIGNMENTS, crm)
    assert routed["owner"].to_list() == ["zoe@x", "ann@x", "bo@x"]
    assert positions == {"ent": 2}

    reassigning = CONFIG.model_copy(deep=True)
    reassigning.queues["ent"].reassign = True
    # leadq recorded zoe (the CRM's owner) locally on the last run; a reassigning queue replaces her too
    recorded = pl.DataFrame({"email": ["l0@x.io"], "queue": ["ent"], "owner": ["zoe@x"]})
    routed, positions = route_leads(leads, reassigning, {}, recorded, crm)
    assert routed["owner"].to_list() == ["ann@x", "bo@x", "ann@x"]
    assert positions == {"ent": 0}


def _at(*domains: str | None) -> pl.DataFrame:
    leads = _leads(len(domains))
    return leads.with_columns(pl.Series("company_domain", list(domains), dtype=pl.String))


def test_a_lead_of_an_owned_company_goes_to_its_owner_and_takes_no_turn() -> None:
    owners = pl.DataFrame({"company_domain": ["acme.io"], "account_owner": ["bo@x"]})
    out, positions = route_leads(_at("acme.io", "new.io", None), CONFIG, {}, NO_ASSIGNMENTS, account_owners=owners)
    assert out["owner"].to_list() == ["bo@x", "ann@x", "bo@x"]  # new.io and the free-mail lead take the turns
    assert out["routing_reason"].to_list() == ["account owner of acme.io", "rotation of ent", "rotation of ent"]
    assert positions == {"ent": 2}  # two turns taken, not three


def test_a_new_companys_leads_in_one_batch_follow_its_first_lead() -> None:
    out, positions = route_leads(_at("new.io", "other.io", "new.io", "new.io"), CONFIG, {}, NO_ASSIGNMENTS)
    assert out["owner"].to_list() == ["ann@x", "bo@x", "ann@x", "ann@x"]
    assert out["routing_reason"][2] == "account owner of new.io (its first lead in this batch)"
    assert positions == {"ent": 2}


def test_a_pinned_account_wins_and_account_routing_can_be_turned_off() -> None:
    pinned = RoutingConfig.model_validate({**_raw(), "accounts": {"Acme.io": {"owner": "cy@x"}}})
    owners = pl.DataFrame({"company_domain": ["acme.io"], "account_owner": ["bo@x"]})
    out, _ = route_leads(_at("acme.io"), pinned, {}, NO_ASSIGNMENTS, account_owners=owners)
    assert (out["owner"][0], out["routing_reason"][0]) == ("cy@x", "account acme.io pinned in routing.yaml")
    off = CONFIG.model_copy(update={"account_routing": False})
    out, positions = route_leads(_at("acme.io", "acme.io"), off, {}, NO_ASSIGNMENTS, account_owners=owners)
    assert out["owner"].to_list() == ["ann@x", "bo@x"] and positions == {"ent": 2}  # plain rotation


def _raw() -> dict[str, object]:
    return CONFIG.model_dump(exclude={"accounts"})


def test_a_typed_company_name_matches_one_known_company_despite_case_suffixes_and_typos() -> None:
    from connectors.routing.names import CompanyNames, name_key

    assert name_key("Northwind Analytics, Inc.") == "northwind analytics"
    known = pl.DataFrame(
        {
            "company_domain": ["northwind.io", "acme.io", "acme.com", "globex.com"],
            "name": ["Northwind Analytics", "Acme", "ACME Corp", "Globex GmbH"],
        }
    )
    names = CompanyNames(known, 90)
    assert names.match("northwind analytics inc") == "northwind.io"
    assert names.match("Northwnd Analytics") == "northwind.io"  # a typo
    assert names.match("Northwind Bank") is None  # another company
    assert names.match("Acme Inc.") is None  # two companies are called Acme: no guess
    assert names.match("the Globex") == "globex.com"
    leads = pl.DataFrame(
        {"company_domain": ["x.io", None, None], "company_name": ["Globex", "Globex", None]},
        schema={"company_domain": pl.String, "company_name": pl.String},
    )
    assert names.domains(leads).to_list() == ["x.io", "globex.com", None]


def test_a_free_mail_lead_that_typed_an_owned_companys_name_goes_to_its_owner() -> None:
    leads = pl.DataFrame(
        {
            "email": ["jane@gmail.com", "joe@gmail.com"],
            "tier": ["A", "A"],
            "employees": [None, None],
            "company_country": ["US", "US"],
            "company_domain": [None, None],
            "company_name": ["Northwind Analytics, Inc.", "Someone Else"],
            "account_domain": ["northwind.io", None],
        },
        schema_overrides={"employees": pl.Int64, "company_domain": pl.String},
    )
    owners = pl.DataFrame({"company_domain": ["northwind.io"], "account_owner": ["cy@x"]})
    out, positions = route_leads(leads, CONFIG, {}, NO_ASSIGNMENTS, account_owners=owners)
    assert out["owner"].to_list() == ["cy@x", "cy@x"]  # joe took na's only turn
    assert out["routing_reason"].to_list() == [
        "account owner of northwind.io (company name 'Northwind Analytics, Inc.')",
        "rotation of na",
    ]
    assert positions["na"] == 0


def test_a_named_account_can_be_pinned_to_a_queue() -> None:
    config = CONFIG.model_copy(update={"accounts": {"acme.io": Account(queue="ent")}})
    leads = _leads(3, tier="B", employees=50).with_columns(company_domain=pl.Series(["acme.io", "other.io", "acme.io"]))
    leads = pl.concat([leads, _leads(1, tier="disqualified", start=3).with_columns(company_domain=pl.lit("acme.io"))])
    out, _ = route_leads(leads, config, {}, NO_ASSIGNMENTS)
    assert out["queue"].to_list() == ["ent", "na", "ent", None]
    with pytest.raises(ValueError, match="queue\\(s\\) nowhere used but not defined"):
        RoutingConfig.model_validate({**CONFIG.model_dump(), "accounts": {"acme.io": {"queue": "nowhere"}}})
