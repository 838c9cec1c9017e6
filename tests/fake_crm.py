"""Fake HubSpot and Salesforce servers that behave as the vendors document.

Both run on `FakeHttp` (a real local HTTP server) and keep their records in memory, so a
test can count contacts, companies, Leads and associations exactly, and see every call.

HubSpot (CRM v3/v4): private-app bearer token; batch endpoints refuse more than 100
inputs (associations: 2,000) with 400 VALIDATION_ERROR; a rolling window of N requests
per W seconds answers 429 with policyName TEN_SECONDLY_ROLLING and the X-HubSpot-RateLimit
headers; a daily quota answers 429 with policyName DAILY; writing a property that does
not exist is a 400 for the whole batch; per-input problems are 207 MULTI_STATUS with
`errors[].context.ids`; companies upsert only by a property with hasUniqueValue.

Salesforce (REST): OAuth client-credentials token (expiring on demand: 401
INVALID_SESSION_ID), sObject Collections upsert of at most 200 records (400
EXCEEDED_ID_LIMIT) by an External ID field, per-record results in input order,
Sforce-Limit-Info on every answer, 403 REQUEST_LIMIT_EXCEEDED when the org's quota is spent.

Either one can be told to answer the next N requests with a 5xx (a storm).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tests.fakes import FakeHttp, Reply, Seen

JSON = {"Content-Type": "application/json;charset=UTF-8"}


def _reply(data: Any, status: int = 200, **headers: str) -> Reply:
    return Reply(status, json.dumps(data), {**JSON, **headers})


@dataclass
class Window:
    """A server-side rolling window: at most `limit` requests in any `seconds`."""

    limit: int = 100
    seconds: float = 10.0
    arrivals: deque[float] = field(default_factory=deque)
    rejected: int = 0

    def admit(self, at: float) -> bool:
        while self.arrivals and self.arrivals[0] <= at - self.seconds:
            self.arrivals.popleft()
        if len(self.arrivals) >= self.limit:
            self.rejected += 1
            return False
        self.arrivals.append(at)
        return True


def sustained_share(times: list[float], limit: int, seconds: float) -> float:
    """Requests per complete window, averaged, as a share of the limit (1.0 = every slot used)."""
    if not times:
        return 0.0
    start, end = times[0], times[-1]
    windows = int((end - start) // seconds)
    if windows < 1:
        return 0.0
    used = sum(1 for t in times if t < start + windows * seconds)
    return used / (windows * limit)


class _FakeCrm:
    def __init__(self, fake: FakeHttp, window: Window | None) -> None:
        self.fake = fake
        self.window = window
        self.lock = threading.Lock()
        self.storm: list[int] = []  # statuses to answer the next requests with
        self.storm_on = ""  # only requests whose path contains this get the storm ("": every request)
        self.requests: list[Seen] = []  # every request that reached the API (after auth)
        self.max_inputs = 0
        fake.fallback = self._serve

    def _serve(self, seen: Seen) -> Reply:
        with self.lock:
            return self.handle(seen)

    def handle(self, seen: Seen) -> Reply:
        raise NotImplementedError

    def api_times(self) -> list[float]:
        return [s.at for s in self.requests]


class FakeHubSpot(_FakeCrm):
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
        self.token = token
        self.daily_limit = daily_limit
        self.daily_used = 0
        self.owners = owners or []
        self.owners_page_size = owners_page_size
        self.properties: dict[str, dict[str, dict[str, Any]]] = {
            "contacts": {n: {"name": n} for n in ("email", "firstname", "lastname", "jobtitle", "phone", "country",
                                                   "hubspot_owner_id")},
            "companies": {n: {"name": n} for n in ("domain", "name", "numberofemployees", "country",
                                                    "linkedin_company_page", "description", "hubspot_owner_id")},
        }  # fmt: skip
        self.groups: dict[str, set[str]] = {"contacts": set(), "companies": set()}
        self.records: dict[str, dict[str, dict[str, Any]]] = {"contacts": {}, "companies": {}}
        self.creates: dict[str, int] = {"contacts": 0, "companies": 0}
        self.associations: set[tuple[str, str]] = set()
        self.index: dict[tuple[str, str], dict[str, str]] = {}  # (object type, unique property) -> value -> id
        self.refuse_emails: set[str] = set()  # 207 per-input errors for these contacts
        self.poison_emails: set[str] = set()  # a 400 for any batch that holds one of these
        self.echo_token = False  # quote the caller's Authorization header in error messages (some vendors do)
        self._next_id = 1000

    # --- what tests read ---------------------------------------------------------------

    def seed_contact(self, email: str, **properties: Any) -> None:
        """A contact that exists in HubSpot before leadq runs (e.g. one a person owns)."""
        self._next_id += 1
        record = {"hs_object_id": str(self._next_id), "email": email, **properties}
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
            return _reply({"status": "error", "message": "Authentication credentials not found." + quoted,
                           "category": "INVALID_AUTHENTICATION", "correlationId": "c-1"}, 401)  # fmt: skip
        if self.window is not None and not self.window.admit(seen.at):
            return self._rate_limited("TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit.")
        if self.daily_limit is not None:
            if self.daily_used >= self.daily_limit:
                return self._rate_limited("DAILY", "You have reached your daily limit.")
            self.daily_used += 1
        self.requests.append(seen)
        if self.storm and self.storm_on in seen.path:
            status = self.storm.pop(0)
            return _reply({"status": "error", "message": "internal error", "category": "INTERNAL_ERROR"}, status)
        reply = self._route(seen)
        if self.daily_limit is not None:
            reply.headers["X-HubSpot-RateLimit-Daily"] = str(self.daily_limit)
            reply.headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(self.daily_limit - self.daily_used)
        return reply

    def _route(self, seen: Seen) -> Reply:
        inputs = (seen.body or {}).get("inputs") if isinstance(seen.body, dict) else None
        if inputs is not None:
            self.max_inputs = max(self.max_inputs, len(inputs))
            limit = 2000 if "/associations/" in seen.path else 100
            if len(inputs) > limit:
                return _reply({"status": "error", "category": "VALIDATION_ERROR", "correlationId": "c-2",
                               "message": f"Batch input limit exceeded: {len(inputs)} inputs, at most {limit}"},
                              400)  # fmt: skip
        path, method = seen.path, seen.method
        if path == "/crm/v3/owners" and method == "GET":
            return self._owners(seen)
        if m := re.fullmatch(r"/crm/v3/properties/(contacts|companies)", path):
            return _reply({"results": list(self.properties[m[1]].values())})
        if m := re.fullmatch(r"/crm/v3/properties/(contacts|companies)/groups", path):
            return self._create_group(m[1], seen.body)
        if m := re.fullmatch(r"/crm/v3/properties/(contacts|companies)/batch/create", path):
            for definition in inputs or []:
                self.properties[m[1]][definition["name"]] = dict(definition)
            return _reply({"status": "COMPLETE", "results": inputs}, 201)
        if path == "/crm/v3/objects/contacts/batch/read":
            return self._read(seen.body)
        if m := re.fullmatch(r"/crm/v3/objects/(contacts|companies)/batch/upsert", path):
            return self._upsert(m[1], inputs or [])
        if path == "/crm/v4/associations/contacts/companies/batch/associate/default":
            return self._associate(inputs or [])
        return _reply({"status": "error", "message": f"no route {method} {path}", "category": "NOT_FOUND"}, 404)

    def _rate_limited(self, policy: str, message: str) -> Reply:
        headers = {"X-HubSpot-RateLimit-Max": str(self.window.limit if self.window else 100),
                   "X-HubSpot-RateLimit-Remaining": "0",
                   "X-HubSpot-RateLimit-Interval-Milliseconds": str(int((self.window.seconds if self.window else 10)
                                                                        * 1000))}  # fmt: skip
        if self.daily_limit is not None:
            headers["X-HubSpot-RateLimit-Daily"] = str(self.daily_limit)
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(max(0, self.daily_limit - self.daily_used))
        body = {"status": "error", "message": message, "errorType": "RATE_LIMIT", "correlationId": "c-3",
                "policyName": policy, "groupName": "api-calls"}  # fmt: skip
        return _reply(body, 429, **headers)

    def _owners(self, seen: Seen) -> Reply:
        start = int(seen.query.get("after", ["0"])[0])
        size = min(int(seen.query.get("limit", ["100"])[0]), self.owners_page_size)
        page = self.owners[start : start + size]
        body: dict[str, Any] = {"results": page}
        if start + size < len(self.owners):
            body["paging"] = {"next": {"after": str(start + size), "link": "..."}}
        return _reply(body)

    def _create_group(self, object_type: str, body: Any) -> Reply:
        name = body["name"]
        if name in self.groups[object_type]:
            return _reply({"status": "error", "message": f"group {name} already exists", "category": "CONFLICT"}, 409)
        self.groups[object_type].add(name)
        return _reply(body, 201)

    def _read(self, body: dict[str, Any]) -> Reply:
        index = self.index.get(("contacts", "email"), {})
        results, missing = [], []
        for item in body["inputs"]:
            record = self.records["contacts"].get(index.get(item["id"].lower(), ""))
            if record is None:
                missing.append(item["id"])
                continue
            props = {p: record.get(p) for p in body.get("properties", [])} | {"hs_object_id": record["hs_object_id"]}
            results.append({"id": record["hs_object_id"], "properties": props})
        answer: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if missing:
            answer |= {"numErrors": 1, "errors": [{"status": "error", "category": "OBJECT_NOT_FOUND",
                                                   "message": "Could not get some CONTACT objects, they may be "
                                                              "deleted or not exist.",
                                                   "context": {"ids": missing}}]}  # fmt: skip
        return _reply(answer, 207 if missing else 200)

    def _upsert(self, object_type: str, inputs: list[dict[str, Any]]) -> Reply:
        known = self.properties[object_type]
        for item in inputs:
            unknown = [p for p in item["properties"] if p not in known]
            if unknown or item["idProperty"] not in known:
                name = (unknown or [item["idProperty"]])[0]
                return _reply({"status": "error", "category": "VALIDATION_ERROR", "correlationId": "c-4",
                               "message": f"Property values were not valid: [{{\"isValid\":false,\"message\":"
                                          f"\"Property \\\"{name}\\\" does not exist\",\"error\":"
                                          f"\"PROPERTY_DOESNT_EXIST\",\"name\":\"{name}\"}}]"}, 400)  # fmt: skip
            if object_type == "contacts" and item["id"] in self.poison_emails:
                return _reply({"status": "error", "category": "VALIDATION_ERROR", "correlationId": "c-5",
                               "message": f"Property values were not valid: email {item['id']} is invalid"},
                              400)  # fmt: skip
        id_property = inputs[0]["idProperty"] if inputs else "email"
        if id_property != "email" and not known[id_property].get("hasUniqueValue"):
            return _reply({"status": "error", "category": "VALIDATION_ERROR",
                           "message": f"{id_property} is not a unique property"}, 400)  # fmt: skip
        results, errors = [], []
        for item in inputs:
            key = str(item["id"]).lower()
            if object_type == "contacts" and key in self.refuse_emails:
                quoted = f" (request by {self.token})" if self.echo_token else ""
                message = f"Email address {key} is invalid{quoted}"
                errors.append({"status": "error", "category": "VALIDATION_ERROR", "message": message,
                               "context": {"ids": [key]}})  # fmt: skip
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
            record.update(item["properties"])
            results.append({"id": record["hs_object_id"], "properties": dict(record), "new": new})
        answer: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if errors:
            answer |= {"numErrors": len(errors), "errors": errors}
        return _reply(answer, 207 if errors else 200)

    def _associate(self, inputs: list[dict[str, Any]]) -> Reply:
        results = []
        for item in inputs:
            contact, company = str(item["from"]["id"]), str(item["to"]["id"])
            if contact in self.records["contacts"] and company in self.records["companies"]:
                self.associations.add((contact, company))
                results.append({"from": {"id": contact}, "to": {"id": company},
                                "associationSpec": {"associationCategory": "HUBSPOT_DEFINED",
                                                    "associationTypeId": 279}})  # fmt: skip
        return _reply({"status": "COMPLETE", "results": results})


class FakeSalesforce(_FakeCrm):
    API = "/services/data/v61.0"

    def __init__(
        self,
        fake: FakeHttp,
        client_id: str = "cid",
        client_secret: str = "secret",
        window: Window | None = None,
        daily_limit: int | None = None,
        users: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(fake, window)
        self.client_id, self.client_secret = client_id, client_secret
        self.daily_limit = daily_limit
        self.daily_used = 0
        self.integration_user = "005INTEGRATION0"
        self.users = users or []
        self.tokens: list[str] = []
        self.valid_token: str | None = None
        self.fields = {n: {"name": n, "externalId": False} for n in (
            "Id", "Email", "FirstName", "LastName", "Title", "Phone", "Country", "Company", "Website", "Industry",
            "NumberOfEmployees", "OwnerId", "Leadq_Score__c", "Leadq_Tier__c", "Leadq_Reasons__c", "Leadq_Queue__c",
            "Leadq_ICP_Version__c", "Leadq_Method__c", "Leadq_Needs_Review__c")}  # fmt: skip
        self.fields["Leadq_Email__c"] = {"name": "Leadq_Email__c", "externalId": True, "unique": True}
        self.leads: dict[str, dict[str, Any]] = {}  # id -> fields
        self._index: dict[str, str] = {}  # Leadq_Email__c -> id
        self.creates = 0
        self.refuse_emails: set[str] = set()
        self.auto_assign_headers: list[tuple[bool, str | None]] = []  # (sets OwnerId, Sforce-Auto-Assign)
        self._next_id = 1000

    def by_email(self) -> dict[str, dict[str, Any]]:
        return {r["Leadq_Email__c"]: r for r in self.leads.values()}

    def _lead(self, key: str) -> dict[str, Any] | None:
        if len(self._index) != len(self.leads):  # a test put Leads in directly
            self._index = {r["Leadq_Email__c"]: i for i, r in self.leads.items()}
        return self.leads.get(self._index.get(key, ""))

    def expire_token(self) -> None:
        self.valid_token = None

    def handle(self, seen: Seen) -> Reply:
        if seen.path == "/services/oauth2/token":
            return self._token(seen.body or {})
        token = (seen.headers.get("authorization") or "").removeprefix("Bearer ")
        if not token or token != self.valid_token:
            return _reply([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}], 401)
        if self.window is not None and not self.window.admit(seen.at):
            return _reply([{"message": "Too many requests", "errorCode": "REQUEST_LIMIT_EXCEEDED"}], 429)
        if self.daily_limit is not None and self.daily_used >= self.daily_limit:
            return _reply([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}], 403)
        self.daily_used += 1
        self.requests.append(seen)
        limit_info = {"Sforce-Limit-Info": f"api-usage={self.daily_used}/{self.daily_limit or 15000}"}
        if self.storm:
            status = self.storm.pop(0)
            return _reply([{"message": "Server unavailable", "errorCode": "SERVER_UNAVAILABLE"}], status, **limit_info)
        path = seen.path
        if path == f"{self.API}/sobjects/Lead/describe":
            return _reply({"name": "Lead", "fields": list(self.fields.values())}, **limit_info)
        if path == f"{self.API}/query":
            return _reply(self._query(seen.query["q"][0]), **limit_info)
        if m := re.fullmatch(rf"{self.API}/composite/sobjects/Lead/(\w+)", path):
            if seen.method != "PATCH":
                return _reply([{"message": "Method not allowed", "errorCode": "METHOD_NOT_ALLOWED"}], 405)
            return self._upsert(m[1], seen, limit_info)
        return _reply([{"message": f"no route {path}", "errorCode": "NOT_FOUND"}], 404)

    def _token(self, form: dict[str, str]) -> Reply:
        if form.get("grant_type") != "client_credentials":
            return _reply({"error": "unsupported_grant_type", "error_description": "grant type not supported"}, 400)
        if (form.get("client_id"), form.get("client_secret")) != (self.client_id, self.client_secret):
            return _reply({"error": "invalid_client", "error_description": "invalid client credentials"}, 400)
        self.valid_token = f"00Dtoken{len(self.tokens)}"
        self.tokens.append(self.valid_token)
        return _reply({"access_token": self.valid_token, "instance_url": self.fake.url, "token_type": "Bearer",
                       "id": f"{self.fake.url}/id/00DORG/{self.integration_user}", "issued_at": "1"})  # fmt: skip

    def _query(self, soql: str) -> dict[str, Any]:
        m = re.fullmatch(r"SELECT (.+) FROM (\w+) WHERE (.+)", soql)
        assert m, soql
        fields = [f.strip() for f in m[1].split(",")]
        values = re.findall(r"'((?:[^'\\]|\\.)*)'", m[3].split(" IN ")[-1])
        values = [v.replace("\\'", "'").replace("\\\\", "\\") for v in values]
        column = re.search(r"(\w+) IN \(", m[3])
        assert column
        wanted = {v.lower() for v in values}
        if m[2] == "Lead" and column[1] == "Leadq_Email__c":
            found = [lead for v in sorted(wanted) if (lead := self._lead(v)) is not None]
        else:
            rows = self.users if m[2] == "User" else list(self.leads.values())
            found = [r for r in rows if str(r.get(column[1], "")).lower() in wanted]
        if "IsActive = true" in m[3]:
            found = [r for r in found if r.get("IsActive", True)]
        records = [{"attributes": {"type": m[2]}, **{f: r.get(f) for f in fields}} for r in found]
        return {"totalSize": len(records), "done": True, "records": records}

    def _upsert(self, ext: str, seen: Seen, headers: dict[str, str]) -> Reply:
        records = seen.body["records"]
        self.max_inputs = max(self.max_inputs, len(records))
        if len(records) > 200:
            return _reply([{"message": "record limit reached. cannot submit more than 200 records into this call",
                            "errorCode": "EXCEEDED_ID_LIMIT"}], 400)  # fmt: skip
        if not self.fields.get(ext, {}).get("externalId"):
            return _reply([{"message": f"Field {ext} is not an External ID", "errorCode": "INVALID_FIELD"}], 400)
        sets_owner = any("OwnerId" in r for r in records)
        self.auto_assign_headers.append((sets_owner, seen.headers.get("sforce-auto-assign")))
        answers = []
        for record in records:
            unknown = [f for f in record if f != "attributes" and f not in self.fields]
            key = str(record.get(ext)).lower()
            if unknown:
                answers.append(
                    {
                        "success": False,
                        "errors": [
                            {
                                "statusCode": "INVALID_FIELD",
                                "fields": unknown,
                                "message": f"No such column '{unknown[0]}'",
                            }
                        ],
                    }
                )
            elif key in self.refuse_emails:
                answers.append({"success": False, "errors": [{"statusCode": "INVALID_EMAIL_ADDRESS",
                                                             "message": f"Email: invalid email address: {key}",
                                                             "fields": ["Email"]}]})  # fmt: skip
            elif not record.get("LastName") or not record.get("Company"):
                answers.append({"success": False, "errors": [{"statusCode": "REQUIRED_FIELD_MISSING",
                                                             "message": "Required fields are missing",
                                                             "fields": ["LastName", "Company"]}]})  # fmt: skip
            else:
                existing = self._lead(key)
                if existing is None:
                    self._next_id += 1
                    existing = {"Id": f"00Q{self._next_id}", "OwnerId": self.integration_user}
                    self.leads[existing["Id"]] = existing
                    self._index[key] = existing["Id"]
                    self.creates += 1
                    created = True
                else:
                    created = False
                existing.update({k: v for k, v in record.items() if k != "attributes"})
                existing[ext] = key
                answers.append({"id": existing["Id"], "success": True, "errors": [], "created": created})
        return _reply(answers, **headers)


def hubspot_owners(emails: list[str]) -> list[dict[str, Any]]:
    """Owner objects as GET /crm/v3/owners returns them: `id` is the owner id, `userId` something else."""
    return [
        {"id": str(500 + i), "userId": 9000 + i, "email": e, "firstName": e.split("@")[0], "lastName": "SDR",
         "archived": False, "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"}
        for i, e in enumerate(emails)
    ]  # fmt: skip


def wait_until(check: Any, timeout_s: float = 5.0) -> None:
    end = time.monotonic() + timeout_s
    while not check() and time.monotonic() < end:
        time.sleep(0.01)
