"""HubSpot as the CRM: contacts, companies and their associations through the CRM v3/v4 API.

Per batch of leads (at most 100 inputs per call):

    companies   POST /crm/v3/objects/companies/batch/upsert   idProperty = leadq_company_key (= the domain)
    contacts    POST /crm/v3/objects/contacts/batch/upsert    idProperty = email
    links       POST /crm/v4/associations/contacts/companies/batch/associate/default

Companies are idempotent through a custom property with `hasUniqueValue`: leadq creates
`leadq_company_key` once and upserts by it, so a redone batch updates the company it
created instead of creating a second one. (HubSpot's own `domain` is not unique.)

Once per run: the property lists (missing `leadq_*` properties are created in the group
`leadq`) and the owners (SDR email → owner `id`, never `userId`). Before routing, the
route step reads the contacts' current owners (`batch/read`), so an owner set in HubSpot
is kept unless the queue says `reassign: true`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import polars as pl
import requests

from connectors.crm.api import CrmApi, json_body
from connectors.crm.base import (
    ACCOUNT_SCHEMA,
    ACTIVITY_SCHEMA,
    PEOPLE_SCHEMA,
    CrmPlan,
    CrmResult,
    chunked,
    failure,
    mapped_records,
    owner_to_write,
    send_isolating,
    with_crm_fields,
)
from connectors.crm.sink import ApiSink
from connectors.domain import CRM_ID
from connectors.errors import FatalError
from connectors.http import ServiceWindow, Verdict
from connectors.settings import HubSpotSettings

log = logging.getLogger("leadq.crm")

OWNER_PROPERTY = "hubspot_owner_id"
ACTIVITY = ("hs_last_sales_activity_timestamp", "notes_last_contacted")  # what counts as the owner's touch
LEAD_STATUS_PROPERTY = "hs_lead_status"  # set by people: NEW, OPEN, IN_PROGRESS, UNQUALIFIED, …
_BOOL_OPTIONS = [
    {"label": "Yes", "value": "true", "hidden": False, "displayOrder": 0},
    {"label": "No", "value": "false", "hidden": False, "displayOrder": 1},
]


class HubSpotCrm(ApiSink):
    name = "hubspot"
    writes_companies = True
    limit_header = "X-HubSpot-RateLimit-Daily-Remaining"
    limit_key = "crm_daily_remaining"

    def __init__(self, settings: HubSpotSettings, token: str, api: CrmApi | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.base = settings.base_url.rstrip("/")
        self._token = token
        self.api = api or CrmApi("hubspot", settings, self.classify, self._auth, read_window=hubspot_window)
        self._owner_ids: dict[str, str] | None = None  # SDR email -> owner id, read once per run
        self._missing: dict[str, list[str]] | None = None  # object type -> leadq properties still to create
        self._accounts: dict[str, str | None] = {}  # company domain -> its owner, asked once per run

    def verdict(self, response: requests.Response) -> Verdict:
        return classify_hubspot(response)

    def _auth(self, _refresh: bool) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}  # a private-app token does not expire

    # --- once per run -----------------------------------------------------------

    def owner_ids(self) -> dict[str, str]:
        """Every active owner's email → owner `id` (the value `hubspot_owner_id` takes)."""
        if self._owner_ids is None:
            owners: dict[str, str] = {}
            params: dict[str, Any] = {"limit": 500, "archived": "false"}
            while True:
                page = self._get("/crm/v3/owners", params)
                owners.update({o["email"].lower(): str(o["id"]) for o in page.get("results", []) if o.get("email")})
                after = (page.get("paging") or {}).get("next", {}).get("after")
                if not after:
                    break
                params["after"] = after
            self._owner_ids = owners
        return self._owner_ids

    def ensure_properties(self, create: bool = True) -> dict[str, list[str]]:
        """Check every mapped property exists; create leadq's own (in the property group) if missing, once.

        Returns the properties still missing (all of leadq's when `create` is False, for a dry run)."""
        if self._missing is not None and (not create or not any(self._missing.values())):
            return self._missing
        key = self.settings.company_key_property
        wanted = {
            "contacts": self._definitions(self.settings.contact_properties, "crm.hubspot.contact_properties"),
            "companies": self._definitions(self.settings.company_properties, "crm.hubspot.company_properties"),
        }
        wanted["companies"][key] = {
            "name": key,
            "label": "leadq company key",
            "type": "string",
            "fieldType": "text",
            "hasUniqueValue": True,
        }
        missing: dict[str, list[str]] = {}
        for object_type, definitions in wanted.items():
            existing = {p["name"]: p for p in self._get(f"/crm/v3/properties/{object_type}").get("results", [])}
            absent = [name for name in definitions if name not in existing]
            theirs = [name for name in absent if "type" not in definitions[name]]
            if theirs:
                raise FatalError(
                    f"hubspot: {object_type} have no propert{'y' if len(theirs) == 1 else 'ies'} "
                    f"{', '.join(map(repr, theirs))} (named in settings.toml [crm.hubspot]); create "
                    "it in HubSpot or map the field to another property"
                )
            if key in existing and object_type == "companies" and not existing[key].get("hasUniqueValue"):
                raise FatalError(
                    f"hubspot: the companies property {key!r} exists but is not unique; leadq upserts companies "
                    "by it, so it must have hasUniqueValue (delete it and leadq recreates it, or set "
                    "[crm.hubspot] company_key_property to a unique property)"
                )
            ours = [definitions[name] for name in absent]
            if ours and create:
                self._create_properties(object_type, ours)
                log.info("hubspot: created %s properties %s", object_type, ", ".join(p["name"] for p in ours))
            missing[object_type] = [] if create else [p["name"] for p in ours]
        self._missing = missing
        return missing

    def _definitions(self, mapping: dict[str, str], key: str) -> dict[str, dict[str, Any]]:
        """Property name → definition for leadq's own properties (`leadq_*`), or {} for HubSpot's."""
        found: dict[str, dict[str, Any]] = {}
        for leadq_field, name in mapping.items():
            if not name.startswith("leadq_"):
                found[name] = {}
                continue
            label = "leadq " + leadq_field.replace("_", " ")
            if leadq_field in ("score", "employees", "confidence"):
                found[name] = {"name": name, "label": label, "type": "number", "fieldType": "number"}
            elif leadq_field == "needs_review":
                found[name] = {
                    "name": name,
                    "label": label,
                    "type": "bool",
                    "fieldType": "booleancheckbox",
                    "options": _BOOL_OPTIONS,
                }
            else:
                text = "textarea" if leadq_field in ("reasons", "description", "routing_reason") else "text"
                found[name] = {"name": name, "label": label, "type": "string", "fieldType": text}
        return found

    def _create_properties(self, object_type: str, definitions: list[dict[str, Any]]) -> None:
        group = self.settings.property_group
        self.api.call(
            "POST",
            f"{self.base}/crm/v3/properties/{object_type}/groups",
            json={"name": group, "label": "leadq", "displayOrder": -1},
            accept=(409,),  # the group exists already
        )
        url = f"{self.base}/crm/v3/properties/{object_type}/batch/create"
        inputs = [{**d, "groupName": group} for d in definitions]
        for _ in range(2):
            response = self.api.call("POST", url, json={"inputs": inputs}, accept=(409,))
            if response.status_code != 409:
                errors = json_body(response).get("errors") or []
                if errors:
                    raise FatalError(f"hubspot: could not create {object_type} properties: {errors[0].get('message')}")
                return
            # "already exists": a retried create whose first answer was lost, or another run's; create the rest
            existing = {p["name"] for p in self._get(f"/crm/v3/properties/{object_type}").get("results", [])}
            inputs = [i for i in inputs if i["name"] not in existing]
            if not inputs:
                return
        raise FatalError(f"hubspot: could not create {object_type} properties: {json_body(response).get('message')}")

    # --- per batch ----------------------------------------------------------------

    def people_decisions(self, emails: Sequence[str]) -> pl.DataFrame:
        """What people set on these contacts: (email, crm_owner, crm_status = hs_lead_status).

        Contacts HubSpot does not have are left out."""
        by_id = {owner_id: email for email, owner_id in self.owner_ids().items()}
        rows: list[tuple[str, str | None, str | None]] = []
        for chunk in chunked(list(emails), self.settings.batch_size):
            body = {
                "idProperty": "email",
                "inputs": [{"id": e} for e in chunk],
                "properties": ["email", OWNER_PROPERTY, LEAD_STATUS_PROPERTY],
            }
            response = self.api.call("POST", f"{self.base}/crm/v3/objects/contacts/batch/read", json=body)
            for result in json_body(response).get("results", []):
                props = result.get("properties") or {}
                if not props.get("email"):
                    continue
                owner = props.get(OWNER_PROPERTY)
                crm_owner = by_id.get(str(owner), f"hubspot-owner:{owner}") if owner else None
                rows.append((props["email"].lower(), crm_owner, props.get(LEAD_STATUS_PROPERTY) or None))
        return pl.DataFrame(rows, schema=PEOPLE_SCHEMA, orient="row")

    def account_owners(self, domains: Sequence[str]) -> pl.DataFrame:
        """(company_domain, account_owner): the owner of the HubSpot company of each domain, the one leadq
        writes to (by `company_key_property`), read 100 a call, each domain once per run; a company without
        an owner is left out."""
        by_id = {owner_id: email for email, owner_id in self.owner_ids().items()}
        key = self.settings.company_key_property
        url = f"{self.base}/crm/v3/objects/companies/batch/read"
        new = sorted(set(domains) - set(self._accounts))
        self._accounts.update(dict.fromkeys(new))
        for chunk in chunked(new, self.settings.batch_size):
            body = {"idProperty": key, "inputs": [{"id": d} for d in chunk], "properties": [key, OWNER_PROPERTY]}
            for result in json_body(self.api.call("POST", url, json=body)).get("results", []):
                props = result.get("properties") or {}
                owner, domain = props.get(OWNER_PROPERTY), str(props.get(key) or "").lower()
                if owner and domain:
                    self._accounts[domain] = by_id.get(str(owner), f"hubspot-owner:{owner}")
        rows = [(d, self._accounts[d]) for d in sorted(set(domains)) if self._accounts.get(d)]
        return pl.DataFrame(rows, schema=ACCOUNT_SCHEMA, orient="row")

    def activity(self, emails: Sequence[str]) -> pl.DataFrame:
        """(email, activity_at): the later of the contact's last sales activity and last contacted dates."""
        rows: list[tuple[str, datetime]] = []
        for chunk in chunked(list(emails), self.settings.batch_size):
            body = {"idProperty": "email", "inputs": [{"id": e} for e in chunk], "properties": ["email", *ACTIVITY]}
            response = self.api.call("POST", f"{self.base}/crm/v3/objects/contacts/batch/read", json=body)
            for result in json_body(response).get("results", []):
                props = result.get("properties") or {}
                times = [_hubspot_time(props.get(p)) for p in ACTIVITY]
                known = [t for t in times if t is not None]
                if props.get("email") and known:
                    rows.append((props["email"].lower(), max(known)))
        return pl.DataFrame(rows, schema=ACTIVITY_SCHEMA, orient="row")

    def publish(self, leads: pl.DataFrame) -> CrmResult:
        """Upsert companies and contacts, then link them; every refused input becomes a failure."""
        self.ensure_properties(create=True)
        frame = with_crm_fields(leads).unique("email", keep="last", maintain_order=True)  # HubSpot 400s duplicates
        result = CrmResult()
        company_ids = self._upsert_companies(frame, result)
        for domain in company_ids:  # its owner was asked before this batch was routed, or it has none yet
            self._accounts.setdefault(domain, None)
        in_place = pl.col(CRM_ID).is_not_null() if CRM_ID in frame.columns else pl.lit(False)
        contact_ids = self._update_in_place(frame.filter(in_place), result)
        contacts = self._contact_inputs(frame.filter(~in_place))
        contact_ids |= self._upsert("contacts", "email", contacts, frame, result)
        pairs = [
            {"from": {"id": contact_ids[email]}, "to": {"id": company_ids[domain]}}
            for email, domain in frame.select("email", "company_domain").iter_rows()
            if email in contact_ids and domain in company_ids
        ]
        self._associate(pairs, {v: k for k, v in contact_ids.items()}, frame, result)
        result.written = len(contact_ids)
        return result

    def plan(self, leads: pl.DataFrame) -> CrmPlan:
        missing = self.ensure_properties(create=False)
        frame = with_crm_fields(leads)
        contacts = self._contact_inputs(frame)
        domains = frame["company_domain"].drop_nulls()
        return CrmPlan(
            counts={
                "contacts": len(contacts),
                "companies": domains.n_unique(),
                "associations": domains.len(),
                "owners_set": sum(1 for c in contacts if OWNER_PROPERTY in c["properties"]),
                "properties_to_create": sum(len(v) for v in missing.values()),
            },
            sample=contacts[:3],
        )

    def _contact_inputs(self, frame: pl.DataFrame) -> list[dict[str, Any]]:
        records = mapped_records(frame, self.settings.contact_properties, as_text=True)
        owners = self.owner_ids()
        writes = frame.select("email", pl.when(owner_to_write(frame)).then(pl.col("owner")).alias("w")).rows()
        inputs = []
        for (email, owner), properties in zip(writes, records, strict=True):
            if owner is not None:
                if owner in owners:
                    properties[OWNER_PROPERTY] = owners[owner]
                else:
                    self.unknown_owner(owner, "is not a HubSpot owner; their leads get no owner")
            inputs.append({"idProperty": "email", "id": email, "properties": properties})
        return inputs

    def _update_in_place(self, frame: pl.DataFrame, result: CrmResult) -> dict[str, str]:
        """Leads read from HubSpot (the CRM as the source) are written back to their own record with
        batch/update, which never creates one, and only leadq's own properties (leadq_*) and the owner:
        what the record said as input is never overwritten, so leadq's write brings nothing new back.

        Returns email → record id of the records HubSpot updated."""
        if frame.is_empty():
            return {}
        url = f"{self.base}/crm/v3/objects/contacts/batch/update"
        inputs = [
            {"id": record_id, "properties": {k: v for k, v in c["properties"].items() if _leadq_owned(k)}}
            for record_id, c in zip(frame[CRM_ID].to_list(), self._contact_inputs(frame), strict=True)
        ]
        emails = dict(zip(frame[CRM_ID].to_list(), frame["email"].to_list(), strict=True))
        updated: dict[str, str] = {}

        def refused(item: dict[str, Any], message: str) -> None:
            email = emails[item["id"]]
            result.failures += self._failures("contacts", [{**item, "id": email}], message, frame)

        for chunk in chunked(inputs, self.settings.batch_size):
            for part, response in send_isolating(
                chunk, lambda p: self.api.call("POST", url, json={"inputs": p}), refused
            ):
                body = json_body(response)
                done = {str(r["id"]) for r in body.get("results", [])}
                for item in part:
                    if item["id"] in done:
                        updated[emails[item["id"]]] = item["id"]
                    else:
                        refused(item, _error_for(item["id"], body))
        return updated

    def _upsert_companies(self, frame: pl.DataFrame, result: CrmResult) -> dict[str, str]:
        key = self.settings.company_key_property
        companies = frame.filter(pl.col("company_domain").is_not_null()).unique("company_domain", keep="last")
        records = mapped_records(companies, self.settings.company_properties, as_text=True)
        inputs = [
            {"idProperty": key, "id": domain, "properties": {**props, key: domain}}
            for domain, props in zip(companies["company_domain"].to_list(), records, strict=True)
        ]
        return self._upsert("companies", key, inputs, frame, result)

    def _upsert(
        self, object_type: str, id_property: str, inputs: list[dict[str, Any]], frame: pl.DataFrame, result: CrmResult
    ) -> dict[str, str]:
        """Batch upserts of at most `batch_size` inputs; returns input id → HubSpot record id."""
        ids: dict[str, str] = {}
        url = f"{self.base}/crm/v3/objects/{object_type}/batch/upsert"

        def refused(item: dict[str, Any], message: str) -> None:
            result.failures += self._failures(object_type, [item], message, frame)

        for chunk in chunked(inputs, self.settings.batch_size):
            for part, response in send_isolating(
                chunk, lambda p: self.api.call("POST", url, json={"inputs": p}), refused
            ):
                body = json_body(response)
                for record in body.get("results", []):
                    value = (record.get("properties") or {}).get(id_property)
                    if value is not None:
                        ids[str(value).lower()] = str(record["id"])
                lost = [item for item in part if str(item["id"]).lower() not in ids]
                for item in lost:
                    result.failures += self._failures(object_type, [item], _error_for(item["id"], body), frame)
        return ids

    def _associate(
        self, pairs: list[dict[str, Any]], emails: dict[str, str], frame: pl.DataFrame, result: CrmResult
    ) -> None:
        """Link contacts to companies; a link HubSpot refuses is a failure of that contact's lead."""
        url = f"{self.base}/crm/v4/associations/contacts/companies/batch/associate/default"
        signup_ids = dict(frame.select("email", "signup_id").iter_rows())
        for chunk in chunked(pairs, self.settings.association_batch_size):
            body = json_body(self.api.call("POST", url, json={"inputs": list(chunk)}))
            linked = {_pair(r) for r in body.get("results", [])}
            for pair in chunk:
                if (str(pair["from"]["id"]), str(pair["to"]["id"])) not in linked and body.get("errors"):
                    email = emails.get(str(pair["from"]["id"]))
                    reason = f"hubspot contact {email}: association to its company failed: " + _error_for(
                        pair["from"]["id"], body
                    )
                    result.failures.append(failure(email, signup_ids.get(email), reason, pair))

    def _failures(
        self, object_type: str, items: list[dict[str, Any]], message: str, frame: pl.DataFrame
    ) -> list[dict[str, Any]]:
        """Dead-letter rows: a refused contact is its lead; a refused company names its domain."""
        if object_type != "contacts":
            return [failure(None, None, f"hubspot company {item['id']}: {message}", item) for item in items]
        signup_ids = dict(
            frame.filter(pl.col("email").is_in([i["id"] for i in items])).select("email", "signup_id").iter_rows()
        )
        return [
            failure(item["id"], signup_ids.get(item["id"]), f"hubspot contact {item['id']}: {message}", item)
            for item in items
        ]

    def _get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return json_body(self.api.call("GET", f"{self.base}{path}", params=params))


def hubspot_window(response: requests.Response) -> ServiceWindow | None:
    """HubSpot's short window from the X-HubSpot-RateLimit-* headers it sends with each answer
    (not the search API's): the account's limit, its interval, and what is left of it for every app
    of the account together."""
    headers = response.headers
    try:
        limit = int(headers["X-HubSpot-RateLimit-Max"])
        seconds = int(headers["X-HubSpot-RateLimit-Interval-Milliseconds"]) / 1000
    except (KeyError, ValueError):
        return None
    remaining = headers.get("X-HubSpot-RateLimit-Remaining", "")
    return ServiceWindow(limit, seconds, int(remaining) if remaining.isdigit() else None)


def classify_hubspot(response: requests.Response) -> Verdict:
    """What a HubSpot answer means, after HubSpot's documented status codes and 429 policies."""
    status = response.status_code
    if status in (200, 201, 204, 207):
        return Verdict("ok")
    body = json_body(response)
    message = str(body.get("message") or response.text[:300])
    if status == 429:
        policy = str(body.get("policyName") or "")
        if policy == "DAILY":
            limit = response.headers.get("X-HubSpot-RateLimit-Daily", "?")
            return Verdict("stop", f"HubSpot's daily API limit ({limit} requests) is spent; the next run resumes")
        interval = response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
        retry_after = response.headers.get("Retry-After")
        wait = float(retry_after) if retry_after else float(interval) / 1000 if interval else None
        return Verdict("wait", f"{policy or 'rate limit'}: {message}", wait)
    if status >= 500:
        return Verdict("wait", message)
    if status == 400:
        return Verdict("refused", message)
    if status == 401:
        return Verdict("fatal", f"the token in the [crm.hubspot] token_env variable was refused: {message}")
    if status == 403:
        return Verdict("fatal", f"the private app lacks a scope: {message}")
    return Verdict("fatal", message)


def _pair(result: dict[str, Any]) -> tuple[str, str]:
    """(contact id, company id) of one association result, in either of the v4 answer shapes."""
    if "from" in result:
        return str(result["from"].get("id")), str(result.get("to", {}).get("id"))
    return str(result.get("fromObjectId")), str(result.get("toObjectId"))


def _leadq_owned(prop: str) -> bool:
    """A contact property leadq writes in place: its own (leadq_*) and the owner."""
    return prop.startswith("leadq_") or prop == OWNER_PROPERTY


def _error_for(item_id: Any, body: dict[str, Any]) -> str:
    """HubSpot's message for one input of a 207 answer: the error whose context names it, else the first."""
    errors = body.get("errors") or []
    needle = json.dumps(str(item_id))
    for error in errors:
        if needle in json.dumps(error.get("context") or {}) or str(item_id) in str(error.get("message")):
            return str(error.get("message"))
    return str(errors[0].get("message")) if errors else "HubSpot returned no result for it"


def _hubspot_time(value: Any) -> datetime | None:
    """A HubSpot datetime property (ISO 8601, or epoch milliseconds) as naive UTC; blank or odd: None."""
    if value in (None, ""):
        return None
    try:
        if str(value).isdigit():
            return datetime.fromtimestamp(int(value) / 1000, UTC).replace(tzinfo=None)
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
