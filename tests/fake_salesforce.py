"""A fake Salesforce that behaves as Salesforce documents.

Salesforce (REST): OAuth client-credentials token (expiring on demand: 401
INVALID_SESSION_ID), sObject Collections upsert of at most 200 records (400
EXCEEDED_ID_LIMIT) by an External ID field, per-record results in input order,
Sforce-Limit-Info on every answer, 403 REQUEST_LIMIT_EXCEEDED when the org's quota is spent.
SOQL answers page (`query_page_size`, then `nextRecordsUrl`); a request URI past 16,384
characters is a 414; `allOrNone: true` rolls a whole collection back when one record fails;
an external id twice in one collection fails both records; the token endpoint can be told
to answer 5xx (`token_storm`).

Leads as a source: SOQL `SELECT … FROM Lead WHERE <datetime field> >= <literal> [AND … < …]
[AND IsConverted = false] ORDER BY <field>, Id [LIMIT n]`; every write stamps SystemModstamp (and a
create CreatedDate); sObject Collections update by Id (`PATCH /composite/sobjects`) never creates.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from tests.fake_crm import FakeCrm, Window
from tests.fake_crm import reply as respond
from tests.fakes import FakeHttp, Reply, Seen


class FakeSalesforce(FakeCrm):
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
        self.fields = {
            n: {"name": n, "externalId": False}
            for n in (
                "Id",
                "Email",
                "FirstName",
                "LastName",
                "Title",
                "Phone",
                "Country",
                "Company",
                "Website",
                "Industry",
                "NumberOfEmployees",
                "OwnerId",
                "Leadq_Score__c",
                "Leadq_Tier__c",
                "Leadq_Reasons__c",
                "Leadq_Queue__c",
                "Leadq_Routing_Reason__c",
                "Leadq_ICP_Version__c",
                "Leadq_Method__c",
                "Leadq_Needs_Review__c",
            )
        }
        self.fields["Leadq_Email__c"] = {"name": "Leadq_Email__c", "externalId": True, "unique": True}
        self.leads: dict[str, dict[str, Any]] = {}  # id -> fields
        self.accounts: list[dict[str, Any]] = []  # Accounts people own: {Id, Website, OwnerId}
        self._index: dict[str, str] = {}  # Leadq_Email__c -> id
        self._indexed = 0  # Leads when the index was last built
        self.creates = 0
        self.updates = 0  # Leads changed in place (update by Id)
        self.refuse_emails: set[str] = set()
        self.auto_assign_headers: list[tuple[bool, str | None]] = []  # (sets OwnerId, Sforce-Auto-Assign)
        self._next_id = 1000
        self.query_page_size = 2000  # Salesforce's default batch of query results
        self._cursors: dict[str, list[dict[str, Any]]] = {}  # nextRecordsUrl locator -> the records still to send
        self.token_storm: list[int] = []  # statuses for the next token requests
        self.uri_too_long = 0  # 414s answered

    def by_email(self) -> dict[str, dict[str, Any]]:
        return {r["Leadq_Email__c"]: r for r in self.leads.values() if r.get("Leadq_Email__c")}

    def seed_lead(self, **fields: Any) -> dict[str, Any]:
        """A Lead that web-to-lead (not leadq) created: no external id."""
        self._next_id += 1
        now = self._now()
        lead = {"Id": f"00Q{self._next_id:015d}", "OwnerId": self.integration_user, "IsConverted": False}
        lead |= {"CreatedDate": now, "SystemModstamp": now, **fields}
        self.leads[lead["Id"]] = lead
        return lead

    def _now(self) -> str:
        return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"

    def _lead(self, key: str) -> dict[str, Any] | None:
        if self._indexed != len(self.leads):  # a test put Leads in directly
            self._index = {r["Leadq_Email__c"]: i for i, r in self.leads.items() if r.get("Leadq_Email__c")}
            self._indexed = len(self.leads)
        return self.leads.get(self._index.get(key, ""))

    def expire_token(self) -> None:
        self.valid_token = None

    def handle(self, seen: Seen) -> Reply:
        if len(seen.target) > 16_384:
            self.uri_too_long += 1
            return respond([{"message": "URI Too Long", "errorCode": "URI_TOO_LONG"}], 414)
        if seen.path == "/services/oauth2/token":
            if self.token_storm:
                return respond({"error": "server_error", "error_description": "try again"}, self.token_storm.pop(0))
            return self._token(seen.body or {})
        token = (seen.headers.get("authorization") or "").removeprefix("Bearer ")
        if not token or token != self.valid_token:
            return respond([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}], 401)
        if self.window is not None and not self.window.admit(seen.at):
            return respond([{"message": "Too many requests", "errorCode": "REQUEST_LIMIT_EXCEEDED"}], 429)
        if self.daily_limit is not None and self.daily_used >= self.daily_limit:
            return respond([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}], 403)
        self.daily_used += 1
        self.requests.append(seen)
        limit_info = {"Sforce-Limit-Info": f"api-usage={self.daily_used}/{self.daily_limit or 15000}"}
        if self.storm:
            status = self.storm.pop(0)
            return respond([{"message": "Server unavailable", "errorCode": "SERVER_UNAVAILABLE"}], status, **limit_info)
        path = seen.path
        if path == f"{self.API}/sobjects/Lead/describe":
            return respond({"name": "Lead", "fields": list(self.fields.values())}, **limit_info)
        if path == f"{self.API}/query":
            return respond(self._page(self._query(seen.query["q"][0])), **limit_info)
        if m := re.fullmatch(rf"{self.API}/query/(01g[\w-]+)", path):
            if m[1] not in self._cursors:
                return respond([{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}], 400)
            return respond(self._page(self._cursors.pop(m[1])), **limit_info)
        if path == f"{self.API}/composite/sobjects" and seen.method == "PATCH":
            return self._update_by_id(seen, limit_info)
        if m := re.fullmatch(rf"{self.API}/composite/sobjects/Lead/(\w+)", path):
            if seen.method != "PATCH":
                return respond([{"message": "Method not allowed", "errorCode": "METHOD_NOT_ALLOWED"}], 405)
            return self._upsert(m[1], seen, limit_info)
        return respond([{"message": f"no route {path}", "errorCode": "NOT_FOUND"}], 404)

    def _token(self, form: dict[str, str]) -> Reply:
        if form.get("grant_type") != "client_credentials":
            return respond({"error": "unsupported_grant_type", "error_description": "grant type not supported"}, 400)
        if (form.get("client_id"), form.get("client_secret")) != (self.client_id, self.client_secret):
            return respond({"error": "invalid_client", "error_description": "invalid client credentials"}, 400)
        self.valid_token = f"00Dtoken{len(self.tokens)}"
        self.tokens.append(self.valid_token)
        return respond(
            {
                "access_token": self.valid_token,
                "instance_url": self.fake.url,
                "token_type": "Bearer",
                "id": f"{self.fake.url}/id/00DORG/{self.integration_user}",
                "issued_at": "1",
            }
        )

    def _query(self, soql: str) -> list[dict[str, Any]]:
        if soql == "SELECT Website, OwnerId FROM Account WHERE Website != null ORDER BY CreatedDate":
            rows = [a for a in self.accounts if a.get("Website")]
            return [
                {"attributes": {"type": "Account"}, "Website": a["Website"], "OwnerId": a.get("OwnerId")} for a in rows
            ]
        if " ORDER BY " in soql and " IN (" not in soql:
            return self._range_query(soql)
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
            rows = {"User": self.users, "Account": self.accounts}.get(m[2], list(self.leads.values()))
            found = [r for r in rows if str(r.get(column[1], "")).lower() in wanted]
        if "IsActive = true" in m[3]:
            found = [r for r in found if r.get("IsActive", True)]
        return [{"attributes": {"type": m[2]}, **{f: r.get(f) for f in fields}} for r in found]

    def _range_query(self, soql: str) -> list[dict[str, Any]]:
        """Leads by a datetime range, ordered: what a CRM source asks."""
        m = re.fullmatch(r"SELECT (.+) FROM Lead(?: WHERE (.+?))? ORDER BY (\w+), Id(?: LIMIT (\d+))?", soql)
        assert m, soql
        fields = [f.strip() for f in m[1].split(",")]
        found = list(self.leads.values())
        for condition in (m[2] or "").split(" AND ") if m[2] else []:
            c = re.fullmatch(r"(\w+) (>=|<|=) (\S+)", condition)
            assert c, condition
            if c[1] == "IsConverted":
                found = [r for r in found if str(r.get("IsConverted", False)).lower() == c[3]]
                continue
            bound = _moment(c[3])
            keep = (lambda v, b=bound: v >= b) if c[2] == ">=" else (lambda v, b=bound: v < b)
            found = [r for r in found if r.get(c[1]) and keep(_moment(r[c[1]]))]
        found.sort(key=lambda r: (_moment(r[m[3]]), r["Id"]))
        if m[4]:
            found = found[: int(m[4])]
        return [{"attributes": {"type": "Lead"}, **{f: r.get(f) for f in fields}} for r in found]

    def _update_by_id(self, seen: Seen, headers: dict[str, str]) -> Reply:
        """sObject Collections update: each record by its Id; an unknown Id fails that record."""
        records = seen.body["records"]
        if len(records) > 200:
            return respond([{"message": "more than 200 records", "errorCode": "EXCEEDED_ID_LIMIT"}], 400)
        self.auto_assign_headers.append((any("OwnerId" in r for r in records), seen.headers.get("sforce-auto-assign")))
        answers = []
        for record in records:
            lead = self.leads.get(record.get("Id", ""))
            unknown = [f for f in record if f not in ("attributes", "Id") and f not in self.fields]
            if lead is None:
                answers.append(
                    {"success": False, "errors": [{"statusCode": "ENTITY_IS_DELETED", "message": "no Lead"}]}
                )
                continue
            if unknown:
                problem = {
                    "statusCode": "INVALID_FIELD",
                    "fields": unknown,
                    "message": f"No such column '{unknown[0]}'",
                }
                answers.append({"success": False, "errors": [problem]})
                continue
            lead.update({k: v for k, v in record.items() if k not in ("attributes", "Id")})
            if lead.get("Leadq_Email__c"):
                self._index[str(lead["Leadq_Email__c"]).lower()] = lead["Id"]
            lead["SystemModstamp"] = self._now()
            self.updates += 1
            answers.append({"id": lead["Id"], "success": True, "errors": []})
        return respond(answers, **headers)

    def _page(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """One batch of query results; the rest wait behind a nextRecordsUrl, as Salesforce pages them."""
        page, rest = records[: self.query_page_size], records[self.query_page_size :]
        body: dict[str, Any] = {"totalSize": len(records), "done": not rest, "records": page}
        if rest:
            locator = f"01gQL{len(self._cursors) + len(self.requests):06d}-{self.query_page_size}"
            self._cursors[locator] = rest
            body["nextRecordsUrl"] = f"{self.API}/query/{locator}"
        return body

    def _upsert(self, ext: str, seen: Seen, headers: dict[str, str]) -> Reply:
        records = seen.body["records"]
        self.max_inputs = max(self.max_inputs, len(records))
        if len(records) > 200:
            return respond(
                [
                    {
                        "message": "record limit reached. cannot submit more than 200 records into this call",
                        "errorCode": "EXCEEDED_ID_LIMIT",
                    }
                ],
                400,
            )
        if not self.fields.get(ext, {}).get("externalId"):
            return respond([{"message": f"Field {ext} is not an External ID", "errorCode": "INVALID_FIELD"}], 400)
        sets_owner = any("OwnerId" in r for r in records)
        self.auto_assign_headers.append((sets_owner, seen.headers.get("sforce-auto-assign")))
        keys = [str(r.get(ext)).lower() for r in records]
        problems = [self._problem(record, key, keys.count(key) > 1) for record, key in zip(records, keys, strict=True)]
        if seen.body.get("allOrNone") and any(problems):
            rolled_back = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message": "Record rolled back"}
            return respond([{"success": False, "errors": [p or rolled_back]} for p in problems], **headers)
        answers = []
        for record, key, problem in zip(records, keys, problems, strict=True):
            if problem:
                answers.append({"success": False, "errors": [problem]})
                continue
            existing = self._lead(key)
            created = existing is None
            if existing is None:
                self._next_id += 1
                existing = {"Id": f"00Q{self._next_id}", "OwnerId": self.integration_user}
                self.leads[existing["Id"]] = existing
                self._index[key] = existing["Id"]
                if self._indexed == len(self.leads) - 1:  # the index was in step, and still is
                    self._indexed += 1
                self.creates += 1
            existing.update({k: v for k, v in record.items() if k != "attributes"})
            existing[ext] = key
            existing["SystemModstamp"] = self._now()
            existing.setdefault("CreatedDate", existing["SystemModstamp"])
            answers.append({"id": existing["Id"], "success": True, "errors": [], "created": created})
        return respond(answers, **headers)

    def _problem(self, record: dict[str, Any], key: str, duplicate: bool) -> dict[str, Any] | None:
        """What Salesforce would refuse about one record of a collection, or None."""
        unknown = [f for f in record if f != "attributes" and f not in self.fields]
        if unknown:
            return {"statusCode": "INVALID_FIELD", "fields": unknown, "message": f"No such column '{unknown[0]}'"}
        if duplicate:
            return {"statusCode": "DUPLICATE_VALUE", "fields": [], "message": f"Duplicate external id specified: {key}"}
        if key in self.refuse_emails:
            return {
                "statusCode": "INVALID_EMAIL_ADDRESS",
                "message": f"Email: invalid email address: {key}",
                "fields": ["Email"],
            }
        if not record.get("LastName") or not record.get("Company"):
            return {
                "statusCode": "REQUIRED_FIELD_MISSING",
                "message": "Required fields are missing",
                "fields": ["LastName", "Company"],
            }
        return None


def _moment(value: str) -> datetime:
    """A SOQL datetime literal or a stored Salesforce datetime, comparable."""
    text = value.replace("Z", "+00:00")
    if text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    return datetime.fromisoformat(text)
