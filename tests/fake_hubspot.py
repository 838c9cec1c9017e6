"""A fake HubSpot that behaves as HubSpot documents.

HubSpot (CRM v3/v4): private-app bearer token; batch endpoints refuse more than 100
inputs (associations: 2,000) with 400 VALIDATION_ERROR; a rolling window of N requests
per W seconds answers 429 with policyName TEN_SECONDLY_ROLLING and the X-HubSpot-RateLimit
headers; a daily quota answers 429 with policyName DAILY; writing a property that does
not exist is a 400 for the whole batch; per-input problems are 207 MULTI_STATUS with
`errors[].context.ids`; companies upsert only by a property with hasUniqueValue.

The CRM search API (`POST /crm/v3/objects/{type}/search`): filterGroups (OR) of filters (AND)
with EQ/NEQ/GT/GTE/LT/LTE (dates as epoch milliseconds), one sort, `limit` up to 200, paging by
`after`; a search pages no further than 10,000 results (400 past it); its own limit of 5 requests
a second per token (429, policyName SECONDLY) and no X-HubSpot-RateLimit headers in its answers.
Every write stamps `lastmodifieddate` (and a create `createdate`), as HubSpot does.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from tests.fake_crm import FakeCrm, Window
from tests.fake_crm import reply as respond
from tests.fakes import FakeHttp, Reply, Seen


class FakeHubSpot(FakeCrm):
    def __init__(
        self,
        fake: FakeHttp,
        token: str = "pat-na1-test",
        window: Window | None = None,
        daily_limit: int | None = None,
        owners: list[dict[str, Any]] | None = None,
        owners_page_size: int = 500,
    ) -> None:
        super().__init__(fake, window)
        self.rate_headers = True  # False: answers without the X-HubSpot-RateLimit-* headers (as the search API)
        self.token = token
        self.daily_limit = daily_limit
        self.daily_used = 0
        self.owners = owners or []
        self.owners_page_size = owners_page_size
        self.properties: dict[str, dict[str, dict[str, Any]]] = {
            "contacts": {
                n: {"name": n}
                for n in ("email", "firstname", "lastname", "jobtitle", "phone", "country", "hubspot_owner_id")
            },
            "companies": {
                n: {"name": n}
                for n in (
                    "domain",
                    "name",
                    "numberofemployees",
                    "country",
                    "linkedin_company_page",
                    "description",
                    "hubspot_owner_id",
                )
            },
        }
        self.properties["companies"]["numberofemployees"]["type"] = "number"
        self.groups: dict[str, set[str]] = {"contacts": set(), "companies": set()}
        self.records: dict[str, dict[str, dict[str, Any]]] = {"contacts": {}, "companies": {}}
        self.creates: dict[str, int] = {"contacts": 0, "companies": 0}
        self.updates = 0  # contacts changed by batch/update (in place)
        self.associations: set[tuple[str, str]] = set()
        self.index: dict[tuple[str, str], dict[str, str]] = {}  # (object type, unique property) -> value -> id
        self.refuse_emails: set[str] = set()  # 207 per-input errors for these contacts
        self.poison_emails: set[str] = set()  # a 400 for any batch that holds one of these
        self.echo_token = False  # quote the caller's Authorization header in error messages (some vendors do)
        self.refused_batches = 0  # 400s for a whole batch (duplicate ids, invalid values)
        self.lose_create_answers = 0  # property creations that commit and then answer 502 (the answer is lost)
        self.unlinkable: set[str] = set()  # company domains whose associations fail (207 with errors)
        self._next_id = 1000
        self.search_window = Window(5, 1.0)  # the search API's own limit, per token
        self.searches = 0
        self.clock: datetime | None = None  # when set, writes are stamped with this time instead of now

    # --- what tests read ---------------------------------------------------------------

    def seed_contact(self, email: str, **properties: Any) -> None:
        """A contact that exists in HubSpot before leadq runs (e.g. one a person owns)."""
        self._next_id += 1
        now = self._now()
        record = {"hs_object_id": str(self._next_id), "email": email, "createdate": now, "lastmodifieddate": now}
        record |= properties
        self.records["contacts"][record["hs_object_id"]] = record
        self.index.setdefault(("contacts", "email"), {})[email] = record["hs_object_id"]

    def contacts(self) -> dict[str, dict[str, Any]]:
        """email -> properties (with hs_object_id)."""
        return {r["email"]: r for r in self.records["contacts"].values()}

    def companies(self) -> dict[str, dict[str, Any]]:
        return {r.get("leadq_company_key") or r["hs_object_id"]: r for r in self.records["companies"].values()}

    def company_of(self, email: str) -> str | None:
        contact = self.contacts().get(email)
        linked = [co for c, co in self.associations if contact and c == contact["hs_object_id"]]
        return self.records["companies"][linked[0]].get("domain") if len(linked) == 1 else None

    # --- the API ---------------------------------------------------------------------------

    def handle(self, seen: Seen) -> Reply:
        if seen.headers.get("authorization") != f"Bearer {self.token}":
            quoted = f" Got: {seen.headers.get('authorization')}" if self.echo_token else ""
            return respond(
                {
                    "status": "error",
                    "message": "Authentication credentials not found." + quoted,
                    "category": "INVALID_AUTHENTICATION",
                    "correlationId": "c-1",
                },
                401,
            )
        if seen.path.endswith("/search") and not self.search_window.admit(seen.at):
            return self._rate_limited("SECONDLY", "You have reached your secondly limit.")
        searching = seen.path.endswith("/search")  # the search API has its own limit, not the burst window
        if not searching and self.window is not None and not self.window.admit(seen.at):
            return self._rate_limited("TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit.")
        if self.daily_limit is not None:
            if self.daily_used >= self.daily_limit:
                return self._rate_limited("DAILY", "You have reached your daily limit.")
            self.daily_used += 1
        self.requests.append(seen)
        if self.storm and self.storm_on in seen.path:
            status = self.storm.pop(0)
            return respond({"status": "error", "message": "internal error", "category": "INTERNAL_ERROR"}, status)
        reply = self._route(seen)
        if self.daily_limit is not None:
            reply.headers["X-HubSpot-RateLimit-Daily"] = str(self.daily_limit)
            reply.headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(self.daily_limit - self.daily_used)
        if not seen.path.endswith("/search"):  # search answers carry no rate headers
            reply.headers.update(self._window_headers())
        return reply

    def _now(self) -> str:
        moment = self.clock or datetime.now(UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _window_headers(self) -> dict[str, str]:
        """HubSpot's answers carry the account's short window, counting every app's requests."""
        if self.window is None or not self.rate_headers:
            return {}
        return {
            "X-HubSpot-RateLimit-Max": str(self.window.limit),
            "X-HubSpot-RateLimit-Remaining": str(max(0, self.window.limit - len(self.window.arrivals))),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self.window.seconds * 1000)),
        }

    def _route(self, seen: Seen) -> Reply:
        inputs = (seen.body or {}).get("inputs") if isinstance(seen.body, dict) else None
        if inputs is not None:
            self.max_inputs = max(self.max_inputs, len(inputs))
            limit = 2000 if "/associations/" in seen.path else 100
            if len(inputs) > limit:
                return respond(
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "correlationId": "c-2",
                        "message": f"Batch input limit exceeded: {len(inputs)} inputs, at most {limit}",
                    },
                    400,
                )
        path, method = seen.path, seen.method
        if path == "/crm/v3/owners" and method == "GET":
            return self._owners(seen)
        if m := re.fullmatch(r"/crm/v3/properties/(contacts|companies)", path):
            return respond({"results": list(self.properties[m[1]].values())})
        if m := re.fullmatch(r"/crm/v3/properties/(contacts|companies)/groups", path):
            return self._create_group(m[1], seen.body)
        if m := re.fullmatch(r"/crm/v3/properties/(contacts|companies)/batch/create", path):
            return self._create_properties(m[1], inputs or [])
        if m := re.fullmatch(r"/crm/v3/objects/(contacts|companies)/batch/read", path):
            return self._read(seen.body, m[1])
        if m := re.fullmatch(r"/crm/v3/objects/(contacts|companies)/search", path):
            return self._search(m[1], seen.body or {})
        if path == "/crm/v3/objects/contacts/batch/update":
            return self._update(inputs or [])
        if m := re.fullmatch(r"/crm/v3/objects/(contacts|companies)/batch/upsert", path):
            return self._upsert(m[1], inputs or [])
        if path == "/crm/v4/associations/contacts/companies/batch/associate/default":
            return self._associate(inputs or [])
        return respond({"status": "error", "message": f"no route {method} {path}", "category": "NOT_FOUND"}, 404)

    def _rate_limited(self, policy: str, message: str) -> Reply:
        headers = {
            "X-HubSpot-RateLimit-Max": str(self.window.limit if self.window else 100),
            "X-HubSpot-RateLimit-Remaining": "0",
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int((self.window.seconds if self.window else 10) * 1000)),
        }
        if self.daily_limit is not None:
            headers["X-HubSpot-RateLimit-Daily"] = str(self.daily_limit)
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(max(0, self.daily_limit - self.daily_used))
        body = {
            "status": "error",
            "message": message,
            "errorType": "RATE_LIMIT",
            "correlationId": "c-3",
            "policyName": policy,
            "groupName": "api-calls",
        }
        return respond(body, 429, **headers)

    def _owners(self, seen: Seen) -> Reply:
        start = int(seen.query.get("after", ["0"])[0])
        size = min(int(seen.query.get("limit", ["100"])[0]), self.owners_page_size)
        page = self.owners[start : start + size]
        body: dict[str, Any] = {"results": page}
        if start + size < len(self.owners):
            body["paging"] = {"next": {"after": str(start + size), "link": "..."}}
        return respond(body)

    def _create_group(self, object_type: str, body: Any) -> Reply:
        name = body["name"]
        if name in self.groups[object_type]:
            return respond({"status": "error", "message": f"group {name} already exists", "category": "CONFLICT"}, 409)
        self.groups[object_type].add(name)
        return respond(body, 201)

    def _read(self, body: dict[str, Any], object_type: str = "contacts") -> Reply:
        id_property = body.get("idProperty") or "hs_object_id"
        index = self.index.get((object_type, id_property), {})
        results, missing = [], []
        for item in body["inputs"]:
            record = self.records[object_type].get(index.get(item["id"].lower(), ""))
            if record is None:
                missing.append(item["id"])
                continue
            props = {p: record.get(p) for p in body.get("properties", [])} | {"hs_object_id": record["hs_object_id"]}
            results.append({"id": record["hs_object_id"], "properties": props})
        found: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if missing:
            found |= {
                "numErrors": 1,
                "errors": [
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "message": f"Could not get some {object_type[:-1].upper().replace('COMPANIE', 'COMPANY')} "
                        "objects, they may be deleted or not exist.",
                        "context": {"ids": missing},
                    }
                ],
            }
        return respond(found, 207 if missing else 200)

    def _create_properties(self, object_type: str, inputs: list[dict[str, Any]]) -> Reply:
        """Every definition is checked as HubSpot's property spec says; an existing name is a 409."""
        for d in inputs:
            missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if k not in d]
            options = d.get("options") or []
            bad = [o for o in options if not {"label", "value", "hidden", "displayOrder"} <= set(o)]
            if missing or bad or (d.get("type") in ("enumeration", "bool") and not options):
                self.refused_batches += 1
                why = f"missing {missing}" if missing else "each option needs label, value, hidden and displayOrder"
                return respond(
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "message": f"Invalid input JSON on line 1: property {d.get('name')}: {why}",
                    },
                    400,
                )
        taken = [d["name"] for d in inputs if d["name"] in self.properties[object_type]]
        if taken:
            return respond(
                {
                    "status": "error",
                    "category": "OBJECT_ALREADY_EXISTS",
                    "subCategory": "PropertyValidationError.PROPERTY_ALREADY_EXISTS",
                    "message": f"A property named '{taken[0]}' already exists.",
                },
                409,
            )
        for definition in inputs:
            self.properties[object_type][definition["name"]] = dict(definition)
        if self.lose_create_answers:
            self.lose_create_answers -= 1
            return respond({"status": "error", "message": "Bad gateway", "category": "INTERNAL_ERROR"}, 502)
        return respond({"status": "COMPLETE", "results": inputs}, 201)

    def _refuse(self, message: str) -> Reply:
        self.refused_batches += 1
        return respond(
            {"status": "error", "category": "VALIDATION_ERROR", "correlationId": "c-6", "message": message}, 400
        )

    def _invalid_value(self, definition: dict[str, Any], value: Any) -> str | None:
        """HubSpot's complaint about a value for a property of this type, if it has one."""
        if value in (None, ""):
            return None
        if definition.get("type") == "number":
            try:
                float(value)
            except (TypeError, ValueError):
                return f'"{value}" was not a valid number.'
        if definition.get("options"):
            allowed = {o["value"] for o in definition["options"]}
            if str(value) not in allowed:
                return f'"{value}" was not one of the allowed options: {sorted(allowed)}'
        return None

    def _upsert(self, object_type: str, inputs: list[dict[str, Any]]) -> Reply:
        known = self.properties[object_type]
        ids = [str(item["id"]).lower() for item in inputs]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            return self._refuse(f"Duplicate IDs found in batch input: {duplicates}. IDs must be unique")
        for item in inputs:
            for name, value in item["properties"].items():
                why = self._invalid_value(known.get(name, {}), value)
                if why:
                    return self._refuse(
                        f'Property values were not valid: [{{"isValid":false,"message":'
                        f'{json.dumps(why)},"error":"INVALID_OPTION","name":"{name}"}}]'
                    )
        for item in inputs:
            unknown = [p for p in item["properties"] if p not in known]
            if unknown or item["idProperty"] not in known:
                name = (unknown or [item["idProperty"]])[0]
                return respond(
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "correlationId": "c-4",
                        "message": f'Property values were not valid: [{{"isValid":false,"message":'
                        f'"Property \\"{name}\\" does not exist","error":'
                        f'"PROPERTY_DOESNT_EXIST","name":"{name}"}}]',
                    },
                    400,
                )
            if object_type == "contacts" and item["id"] in self.poison_emails:
                return respond(
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "correlationId": "c-5",
                        "message": f"Property values were not valid: email {item['id']} is invalid",
                    },
                    400,
                )
        id_property = inputs[0]["idProperty"] if inputs else "email"
        if id_property != "email" and not known[id_property].get("hasUniqueValue"):
            return respond(
                {
                    "status": "error",
                    "category": "VALIDATION_ERROR",
                    "message": f"{id_property} is not a unique property",
                },
                400,
            )
        results, errors = [], []
        for item in inputs:
            key = str(item["id"]).lower()
            if object_type == "contacts" and key in self.refuse_emails:
                quoted = f" (request by {self.token})" if self.echo_token else ""
                message = f"Email address {key} is invalid{quoted}"
                errors.append(
                    {"status": "error", "category": "VALIDATION_ERROR", "message": message, "context": {"ids": [key]}}
                )
                continue
            if item["properties"].get("hubspot_owner_id") and item["properties"]["hubspot_owner_id"] not in {
                str(o["id"]) for o in self.owners
            }:
                errors.append(
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "context": {"ids": [key]},
                        "message": f"{item['properties']['hubspot_owner_id']} is not a valid owner id",
                    }
                )
                continue
            index = self.index.setdefault((object_type, id_property), {})
            record = self.records[object_type].get(index.get(key, ""))
            new = record is None
            if record is None:
                self._next_id += 1
                record = {"hs_object_id": str(self._next_id), id_property: key}
                self.records[object_type][record["hs_object_id"]] = record
                index[key] = record["hs_object_id"]
                self.creates[object_type] += 1
                record["createdate"] = self._now()
            record.update(item["properties"])
            record["lastmodifieddate"] = self._now()
            results.append({"id": record["hs_object_id"], "properties": dict(record), "new": new})
        body: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if errors:
            body |= {"numErrors": len(errors), "errors": errors}
        return respond(body, 207 if errors else 200)

    def _update(self, inputs: list[dict[str, Any]]) -> Reply:
        """batch/update by record id: never creates; an unknown id is a per-input error."""
        results, errors = [], []
        for item in inputs:
            record = self.records["contacts"].get(str(item["id"]))
            if record is None:
                errors.append(
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "message": f"Object not found.  objectId are usually numeric. {item['id']}",
                        "context": {"ids": [str(item["id"])]},
                    }
                )
                continue
            record.update(item["properties"])
            record["lastmodifieddate"] = self._now()
            self.updates += 1
            results.append({"id": record["hs_object_id"], "properties": dict(record)})
        body: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if errors:
            body |= {"numErrors": len(errors), "errors": errors}
        return respond(body, 207 if errors else 200)

    def _search(self, object_type: str, body: dict[str, Any]) -> Reply:
        self.searches += 1
        limit, after = int(body.get("limit", 10)), int(body.get("after") or 0)
        if limit > 200:
            return respond(
                {
                    "status": "error",
                    "message": f"limit must be at most 200, got {limit}",
                    "category": "VALIDATION_ERROR",
                },
                400,
            )
        if after + limit > 10_000:
            return respond(
                {
                    "status": "error",
                    "message": "There was a problem with the request.",
                    "category": "VALIDATION_ERROR",
                    "context": {"after": [str(after)], "limit": [str(limit)]},
                },
                400,
            )
        groups = body.get("filterGroups") or []
        found = [
            r for r in self.records[object_type].values() if not groups or any(self._matches(r, g) for g in groups)
        ]
        for sort in reversed(body.get("sorts") or [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]):
            name = sort["propertyName"]
            found.sort(key=lambda r, n=name: _comparable(n, r.get(n)), reverse=sort.get("direction") == "DESCENDING")
        page = found[after : after + limit]
        wanted = body.get("properties") or ["email", "firstname", "lastname", "createdate", "lastmodifieddate"]
        results = [
            {
                "id": r["hs_object_id"],
                "properties": {p: r.get(p) for p in wanted} | {"hs_object_id": r["hs_object_id"]},
                "createdAt": r.get("createdate"),
                "updatedAt": r.get("lastmodifieddate"),
                "archived": False,
            }
            for r in page
        ]
        answer: dict[str, Any] = {"total": len(found), "results": results}
        if after + limit < len(found):
            answer["paging"] = {"next": {"after": str(after + limit), "link": "..."}}
        return respond(answer)

    def _matches(self, record: dict[str, Any], group: dict[str, Any]) -> bool:
        for f in group.get("filters", []):
            name, op = f["propertyName"], f["operator"]
            have, want = _comparable(name, record.get(name)), _comparable(name, f.get("value"))
            if have is None:
                return False
            ok = {
                "EQ": have == want,
                "NEQ": have != want,
                "GT": have > want,
                "GTE": have >= want,
                "LT": have < want,
                "LTE": have <= want,
            }[op]
            if not ok:
                return False
        return True

    def _associate(self, inputs: list[dict[str, Any]]) -> Reply:
        results, errors = [], []
        for item in inputs:
            contact, company = str(item["from"]["id"]), str(item["to"]["id"])
            domain = self.records["companies"].get(company, {}).get("domain")
            if company not in self.records["companies"] or domain in self.unlinkable:
                errors.append(
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "message": f"Company {company} could not be associated with contact {contact}",
                        "context": {"fromObjectId": [contact], "toObjectId": [company]},
                    }
                )
                continue
            if contact in self.records["contacts"]:
                self.associations.add((contact, company))
                results.append(
                    {
                        "from": {"id": contact},
                        "to": {"id": company},
                        "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279},
                    }
                )
        if errors:
            return respond({"status": "COMPLETE", "results": results, "numErrors": len(errors), "errors": errors}, 207)
        return respond({"status": "COMPLETE", "results": results})


def hubspot_owners(emails: list[str]) -> list[dict[str, Any]]:
    """Owner objects as GET /crm/v3/owners returns them: `id` is the owner id, `userId` something else."""
    return [
        {
            "id": str(500 + i),
            "userId": 9000 + i,
            "email": e,
            "firstName": e.split("@")[0],
            "lastName": "SDR",
            "archived": False,
            "createdAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-01-01T00:00:00Z",
        }
        for i, e in enumerate(emails)
    ]


DATE_PROPERTIES = ("createdate", "lastmodifieddate", "hs_last_sales_activity_timestamp", "notes_last_contacted")


def _comparable(name: str, value: Any) -> Any:
    """A property value as HubSpot compares it: dates as epoch milliseconds, ids as numbers."""
    if value in (None, ""):
        return None
    if name in DATE_PROPERTIES:
        if str(value).isdigit():
            return int(value)
        return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() * 1000)
    if name == "hs_object_id":
        return int(value)
    return str(value).lower()
