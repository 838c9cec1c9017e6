"""Salesforce as the CRM: Leads upserted by an external-id field through sObject Collections.

    token     POST {login_url}/services/oauth2/token        client-credentials flow; again on a 401
    check     GET  /sobjects/Lead/describe                  once per run: every mapped field exists
    owners    GET  /query?q=SELECT Id, Email FROM User ...  SDR emails → user ids, once per SDR
    current   GET  /query?q=SELECT ext, OwnerId FROM Lead   before routing: owners already set are kept
    write     PATCH /composite/sobjects/Lead/{ext}          at most 200 records, allOrNone false

Upserting by an External ID + Unique field (default `Leadq_Email__c`, holding the lead's
email) makes a redone batch update the Leads it created. Calls that set `OwnerId` carry
`Sforce-Auto-Assign: FALSE` so the org's assignment rules do not overwrite leadq's
routing; the others leave the org's default assignment rule in charge. A Lead owned by
the integration user itself counts as unowned. `Sforce-Limit-Info` is read on every
answer and logged; a spent org limit (REQUEST_LIMIT_EXCEEDED) stops the run cleanly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime, time
from typing import Any
from urllib.parse import quote_plus, urlsplit

import polars as pl
import requests

from connectors.crm import base
from connectors.crm.api import CrmApi, json_body
from connectors.crm.base import CrmPlan, CrmResult
from connectors.crm.sink import ApiSink
from connectors.domain import CRM_ID
from connectors.errors import FatalError
from connectors.http import Verdict
from connectors.prepare.emails import registrable_domain
from connectors.settings import SalesforceSettings

log = logging.getLogger("leadq.crm")

MAX_SOQL_IN_URL_CHARS = 12_000  # the IN list as sent (URL-encoded): well under Salesforce's 16,384-character URI


class SalesforceCrm(ApiSink):
    name = "salesforce"
    writes_companies = False
    limit_header = "Sforce-Limit-Info"
    limit_key = "crm_limit_info"

    def __init__(self, settings: SalesforceSettings, client_id: str, client_secret: str) -> None:
        super().__init__()
        self.settings = settings
        self._client_id = client_id
        self._client_secret = client_secret
        self._token: str | None = None
        self.instance_url = ""
        self.integration_user = ""
        self.api = CrmApi("salesforce", settings, self.classify, self._auth)
        self._users: dict[str, str | None] = {}  # SDR email -> user id (None: no active user)
        self._accounts: dict[str, str] | None = None  # Website domain -> Account owner id, read once per run
        self._checked = False

    # --- auth -------------------------------------------------------------------------

    def _auth(self, refresh: bool) -> dict[str, str]:
        if self._token is None or refresh:
            self._fetch_token()
        return {"Authorization": f"Bearer {self._token}"}

    def _fetch_token(self) -> None:
        """OAuth 2.0 client credentials; the answer also names the instance and the integration user."""
        url = f"{self.settings.login_url.rstrip('/')}/services/oauth2/token"
        data = {"grant_type": "client_credentials", "client_id": self._client_id, "client_secret": self._client_secret}
        response = self.api.call("POST", url, data=data, authenticate=False, accept=(400, 401, 403))
        body = json_body(response)
        if response.status_code != 200 or "access_token" not in body:
            why = body.get("error_description") or body.get("error") or response.text[:200]
            raise FatalError(
                f"salesforce: the token request to {url} was refused (HTTP {response.status_code}: {why}); "
                f"check {self.settings.client_id_env} and {self.settings.client_secret_env}"
            )
        self._token = str(body["access_token"])
        self.instance_url = str(body.get("instance_url") or self.settings.login_url).rstrip("/")
        self.integration_user = str(body.get("id") or "").rstrip("/").rsplit("/", 1)[-1]

    @property
    def _data(self) -> str:
        if not self.instance_url:
            self._auth(False)
        return f"{self.instance_url}/services/data/{self.settings.api_version}"

    # --- once per run -------------------------------------------------------------------

    def check_fields(self) -> None:
        """Every mapped field exists on the object and the external-id field is an External ID."""
        if self._checked:
            return
        sobject, ext = self.settings.sobject, self.settings.external_id_field
        fields = {f["name"]: f for f in self._get(f"/sobjects/{sobject}/describe").get("fields", [])}
        missing = sorted({*self.settings.fields.values(), ext} - set(fields))
        if missing:
            raise FatalError(
                f"salesforce: {sobject} has no field {', '.join(missing)} (named in settings.toml "
                f"[crm.salesforce]); create it in Setup → Object Manager → {sobject} → Fields, or change the mapping"
            )
        if not fields[ext].get("externalId"):
            raise FatalError(
                f"salesforce: {sobject}.{ext} is not an External ID field; leadq upserts by it, "
                "so mark it External ID and Unique"
            )
        self._checked = True

    def user_ids(self, emails: Iterable[str]) -> dict[str, str | None]:
        """SDR email → active user id, asking Salesforce only about emails not seen this run."""
        new = sorted({e for e in emails if e and e not in self._users})
        for chunk in _soql_chunks(new):
            soql = f"SELECT Id, Email FROM User WHERE IsActive = true AND Email IN ({_soql_list(chunk)})"
            found = {r["Email"].lower(): r["Id"] for r in self._query(soql) if r.get("Email")}
            self._users.update({e: found.get(e) for e in chunk})
        return self._users

    # --- per batch --------------------------------------------------------------------------

    def people_decisions(self, emails: Sequence[str]) -> pl.DataFrame:
        """What people set on these Leads: (email, crm_owner, crm_status = Status); the integration user
        is no one's decision (owner null). Leads Salesforce does not have are left out."""
        self.check_fields()
        ext, sobject = self.settings.external_id_field, self.settings.sobject
        found: list[tuple[str, str | None, str | None]] = []
        for chunk in _soql_chunks(list(emails)):
            soql = f"SELECT {ext}, OwnerId, Status FROM {sobject} WHERE {ext} IN ({_soql_list(chunk)})"
            for record in self._query(soql):
                owner = record.get("OwnerId")
                owner = str(owner) if owner and owner != self.integration_user else None
                if record.get(ext):
                    found.append((str(record[ext]).lower(), owner, record.get("Status") or None))
        by_id = self._owner_emails({owner for _, owner, _ in found if owner})
        rows = [
            (email, by_id.get(owner, f"salesforce-owner:{owner}") if owner else None, status)
            for email, owner, status in found
        ]
        return pl.DataFrame(rows, schema=base.PEOPLE_SCHEMA, orient="row")

    def account_owners(self, domains: Sequence[str]) -> pl.DataFrame:
        """(company_domain, account_owner): the owner of the Account whose Website is each domain, in any
        spelling (acme.io, https://www.acme.io/about). The org's Accounts with a Website are read once per
        run, on first need (2,000 a call), whatever the number of leads; the oldest Account of a domain wins."""
        if self._accounts is None:
            self.check_fields()
            self._accounts = {}
            soql = "SELECT Website, OwnerId FROM Account WHERE Website != null ORDER BY CreatedDate"
            for page in self.query_pages(soql):
                for record in page:
                    domain = _website_domain(record.get("Website"))
                    if domain and record.get("OwnerId"):
                        self._accounts.setdefault(domain, str(record["OwnerId"]))
        found = {d: self._accounts[d] for d in set(domains) if d in self._accounts}
        by_id = self._owner_emails(set(found.values()))
        rows = [(d, by_id.get(owner, f"salesforce-owner:{owner}")) for d, owner in sorted(found.items())]
        return pl.DataFrame(rows, schema=base.ACCOUNT_SCHEMA, orient="row")

    def activity(self, emails: Sequence[str]) -> pl.DataFrame:
        """(email, activity_at) from each Lead's LastActivityDate. Salesforce keeps only the date, so the
        touch counts at the end of that day (UTC): never early, at most a day late."""
        self.check_fields()
        ext, sobject = self.settings.external_id_field, self.settings.sobject
        rows: list[tuple[str, datetime]] = []
        for chunk in _soql_chunks(list(emails)):
            soql = f"SELECT {ext}, LastActivityDate FROM {sobject} WHERE {ext} IN ({_soql_list(chunk)})"
            for record in self._query(soql):
                day = record.get("LastActivityDate")
                if record.get(ext) and day:
                    end = datetime.combine(date.fromisoformat(str(day)[:10]), time.max)
                    rows.append((str(record[ext]).lower(), end))
        return pl.DataFrame(rows, schema=base.ACTIVITY_SCHEMA, orient="row")

    def _owner_emails(self, owner_ids: set[str]) -> dict[str, str]:
        """User id → email for these owners (queues have no email and keep their id)."""
        by_id = {user: email for email, user in self._users.items() if user}
        unknown = sorted(owner_ids - set(by_id))
        for chunk in _soql_chunks(unknown):
            for record in self._query(f"SELECT Id, Email FROM User WHERE Id IN ({_soql_list(chunk)})"):
                if record.get("Email"):
                    by_id[record["Id"]] = record["Email"].lower()
        return by_id

    def publish(self, leads: pl.DataFrame) -> CrmResult:
        self.check_fields()
        # Salesforce refuses every record of a collection whose external id appears twice: send each lead once
        frame = base.with_crm_fields(leads).unique("email", keep="last", maintain_order=True)
        result = CrmResult()
        in_place = pl.col(CRM_ID).is_not_null() if CRM_ID in frame.columns else pl.lit(False)
        self._update_in_place(frame.filter(in_place), result)
        frame = frame.filter(~in_place)
        records = self._records(frame)
        signup_ids = dict(frame.select("email", "signup_id").iter_rows())
        ext = self.settings.external_id_field
        owned = [r for r in records if "OwnerId" in r]
        unowned = [r for r in records if "OwnerId" not in r]

        def refused(record: dict[str, Any], message: str) -> None:
            email = record[ext]
            result.failures.append(base.failure(email, signup_ids.get(email), f"salesforce {email}: {message}", record))

        for group, headers in ((owned, {"Sforce-Auto-Assign": "FALSE"}), (unowned, {})):

            def send(part: Sequence[dict[str, Any]], headers: dict[str, str] = headers) -> list[dict[str, Any]]:
                return self._upsert(part, headers)

            self._send_collections(group, send, refused, result)
        return result

    def _update_in_place(self, frame: pl.DataFrame, result: CrmResult) -> None:
        """Leads read from Salesforce (the CRM as the source) are written back to their own record by Id
        (sObject Collections update: it never creates one), and only leadq's own fields (Leadq_*) and the
        owner: what the record said as input is never overwritten, so leadq's write brings nothing new back."""
        if frame.is_empty():
            return
        ext = self.settings.external_id_field
        records = [
            {"attributes": r["attributes"], "Id": record_id, **{k: v for k, v in r.items() if _leadq_owned(k, ext)}}
            for record_id, r in zip(frame[CRM_ID].to_list(), self._records(frame), strict=True)
        ]
        emails = dict(zip(frame[CRM_ID].to_list(), frame["email"].to_list(), strict=True))
        signup_ids = dict(frame.select("email", "signup_id").iter_rows())

        def refused(record: dict[str, Any], message: str) -> None:
            email = emails[record["Id"]]
            result.failures.append(base.failure(email, signup_ids.get(email), f"salesforce {email}: {message}", record))

        def send(part: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
            url = f"{self._data}/composite/sobjects"
            # an update must not run the org's assignment rules again: leadq routed the lead, or left its owner
            headers = {"Sforce-Auto-Assign": "FALSE"}
            response = self.api.call("PATCH", url, json={"allOrNone": False, "records": list(part)}, headers=headers)
            answers = response.json()
            return answers if isinstance(answers, list) else []

        self._send_collections(records, send, refused, result)

    def _send_collections(
        self,
        records: list[dict[str, Any]],
        send: Callable[[Sequence[dict[str, Any]]], list[dict[str, Any]]],
        refused: Callable[[dict[str, Any], str], None],
        result: CrmResult,
    ) -> None:
        """Collections of `batch_size` records (a refused collection halved until the bad records are
        alone); each record's answer counts it written or refused with Salesforce's message."""
        for chunk in base.chunked(records, self.settings.batch_size):
            for part, answers in base.send_isolating(chunk, send, refused):
                for i, record in enumerate(part):
                    answer = answers[i] if i < len(answers) else {"errors": [{"message": "no answer for it"}]}
                    if answer.get("success"):
                        result.written += 1
                    else:
                        refused(record, _record_errors(answer))

    def plan(self, leads: pl.DataFrame) -> CrmPlan:
        self.check_fields()
        records = self._records(base.with_crm_fields(leads))
        counts = {"leads": len(records), "owners_set": sum(1 for r in records if "OwnerId" in r)}
        return CrmPlan(counts=counts, sample=records[:3])

    def _records(self, frame: pl.DataFrame) -> list[dict[str, Any]]:
        """sObject records: the mapped fields, the external id, and OwnerId where leadq routes the lead."""
        ext, sobject = self.settings.external_id_field, self.settings.sobject
        frame = frame.with_columns(pl.col("last_name").fill_null(base.NOT_PROVIDED))
        writes = frame.select("email", pl.when(base.owner_to_write(frame)).then(pl.col("owner")).alias("w")).rows()
        users = self.user_ids(owner for _, owner in writes if owner)
        records = []
        for (email, owner), fields in zip(
            writes, base.mapped_records(frame, self.settings.fields, as_text=False), strict=True
        ):
            record = {"attributes": {"type": sobject}, **fields, ext: email}
            if owner is not None:
                if users.get(owner):
                    record["OwnerId"] = users[owner]
                else:
                    self.unknown_owner(owner, "is not an active user; their leads keep the org's default owner")
            records.append(record)
        return records

    def _upsert(self, records: Sequence[dict[str, Any]], headers: dict[str, str]) -> list[dict[str, Any]]:
        url = f"{self._data}/composite/sobjects/{self.settings.sobject}/{self.settings.external_id_field}"
        response = self.api.call("PATCH", url, json={"allOrNone": False, "records": list(records)}, headers=headers)
        answers = response.json()
        return answers if isinstance(answers, list) else []

    def _query(self, soql: str) -> list[dict[str, Any]]:
        return [record for page in self.query_pages(soql) for record in page]

    def query_pages(self, soql: str) -> Iterator[list[dict[str, Any]]]:
        """A SOQL query's records, a batch at a time as Salesforce pages them (nextRecordsUrl)."""
        body = self._get("/query", {"q": soql})
        yield body.get("records", [])
        while not body.get("done", True) and body.get("nextRecordsUrl"):
            body = json_body(self.api.call("GET", f"{self.instance_url}{body['nextRecordsUrl']}"))
            yield body.get("records", [])

    def _get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return json_body(self.api.call("GET", f"{self._data}{path}", params=params))

    def verdict(self, response: requests.Response) -> Verdict:
        return classify_salesforce(response)


def _website_domain(website: Any) -> str | None:
    """An Account's Website as a registrable domain: 'https://www.Acme.io/about' → 'acme.io'."""
    text = str(website or "").strip().lower()
    host = urlsplit(text if "//" in text else f"//{text}").hostname
    return registrable_domain(host) if host else None


def _leadq_owned(field: str, external_id: str) -> bool:
    """A Lead field leadq writes in place: its own (Leadq_*), its external id, and the owner."""
    return field.startswith("Leadq_") or field in (external_id, "OwnerId")


def classify_salesforce(response: requests.Response) -> Verdict:
    """What a Salesforce REST answer means, after its documented status codes and error codes."""
    status = response.status_code
    if status in (200, 201, 204):
        return Verdict("ok")
    errors = _errors(response)
    code = errors[0].get("errorCode", "") if errors else ""
    message = f"{code}: {errors[0].get('message')}" if errors else response.text[:300]
    if status == 401:
        return Verdict("refresh", message)
    if status == 403 and code == "REQUEST_LIMIT_EXCEEDED":
        return Verdict("stop", f"the org's API request limit is spent ({message}); the next run resumes")
    if status == 429 or status >= 500:
        retry_after = response.headers.get("Retry-After")
        return Verdict("wait", message, float(retry_after) if retry_after else None)
    if status == 400:
        return Verdict("refused", message)
    return Verdict("fatal", message)


def _record_errors(answer: dict[str, Any]) -> str:
    errors = answer.get("errors") or []
    return (
        "; ".join(
            f"{e.get('statusCode')}: {e.get('message')}" + (f" ({', '.join(e['fields'])})" if e.get("fields") else "")
            for e in errors
        )
        or "Salesforce reported no success and no error"
    )


def _errors(response: requests.Response) -> list[dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return []
    if isinstance(body, dict):
        body = [body]
    return [e for e in body if isinstance(e, dict)] if isinstance(body, list) else []


def _soql_list(values: Sequence[str]) -> str:
    """A SOQL IN list; quotes and backslashes escaped (an email may hold an apostrophe)."""
    return ", ".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values)


def _soql_chunks(values: Sequence[str], size: int = 200) -> Iterable[Sequence[str]]:
    """Chunks of at most `size` values whose IN list stays short enough for a GET URL, measured as sent:
    URL-encoded, where one non-ASCII character of an email takes up to twelve."""
    chunk: list[str] = []
    length = 0
    for value in values:
        sent = len(quote_plus(_soql_list([value]) + ", "))
        if chunk and (len(chunk) >= size or length + sent > MAX_SOQL_IN_URL_CHARS):
            yield chunk
            chunk, length = [], 0
        chunk.append(value)
        length += sent
    if chunk:
        yield chunk
