"""Where leads are written: the embedded CRM, HubSpot or Salesforce, and the limits of their APIs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from connectors.settings.section import Section


class CrmApiSettings(Section):
    """Limits shared by the CRM APIs; every number is a setting."""

    timeout_s: float = Field(gt=0)
    window_requests: int = Field(ge=0)  # at most this many requests in any window_s (0: no limit)
    window_s: float = Field(gt=0)
    window_margin_s: float = Field(ge=0)  # added to each window: client and server clocks differ
    attempts: int = Field(ge=1, le=20)  # per request, on 429 (short-window limits), 5xx and network errors
    max_backoff_s: float = Field(ge=0)  # the longest single wait, whatever a header asks for


class HubSpotSettings(CrmApiSettings):
    base_url: str
    token_env: str  # a private-app token; the variable's name, never the token
    batch_size: int = Field(ge=1, le=100)  # HubSpot's limit for batch/read and batch/upsert
    association_batch_size: int = Field(ge=1, le=2000)  # v4 batch endpoints take more; 100 is always safe
    property_group: str
    company_key_property: str  # a unique custom property: companies upsert by it
    contact_properties: dict[str, str]
    company_properties: dict[str, str]


class SalesforceSettings(CrmApiSettings):
    login_url: str  # your My Domain URL for the client-credentials flow
    api_version: str = Field(pattern=r"^v\d+\.\d$")
    client_id_env: str
    client_secret_env: str
    sobject: str
    external_id_field: str  # an External ID, Unique field on the object
    batch_size: int = Field(ge=1, le=200)  # sObject Collections take at most 200 records
    fields: dict[str, str]


class CrmSettings(Section):
    kind: Literal["local", "hubspot", "salesforce"]
    sync_retries: int = Field(ge=0, le=10)  # whole-batch retries of the sync step after a 5xx storm
    sync_retry_delay_s: list[float]
    hubspot: HubSpotSettings
    salesforce: SalesforceSettings
