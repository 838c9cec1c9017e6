"""CRM sinks: where decided leads are published (`[crm] kind`).

`local` is the embedded store; `hubspot` and `salesforce` publish through their APIs
while the store still keeps leadq's own records (watermarks, audit trail, assessments).
"""

from __future__ import annotations

import os

from connectors.crm.base import CrmPlan, CrmResult, CrmSink, CrmStopped, check_mapping
from connectors.crm.local import LocalCrm
from connectors.errors import ConfigError
from connectors.redact import secret
from connectors.settings import Settings

__all__ = ["CrmPlan", "CrmResult", "CrmSink", "CrmStopped", "LocalCrm", "build_crm", "env_secret"]


def build_crm(settings: Settings) -> CrmSink:
    """The configured sink, with its secrets read from the environment; ConfigError names what is missing."""
    crm = settings.crm
    if crm.kind == "hubspot":
        from connectors.crm.hubspot import HubSpotCrm

        check_mapping(crm.hubspot.contact_properties, "crm.hubspot.contact_properties")
        check_mapping(crm.hubspot.company_properties, "crm.hubspot.company_properties")
        return HubSpotCrm(crm.hubspot, env_secret(crm.hubspot.token_env, "crm.hubspot.token_env"))
    if crm.kind == "salesforce":
        from connectors.crm.salesforce import SalesforceCrm

        sf = crm.salesforce
        check_mapping(sf.fields, "crm.salesforce.fields")
        return SalesforceCrm(
            sf,
            env_secret(sf.client_id_env, "crm.salesforce.client_id_env"),
            env_secret(sf.client_secret_env, "crm.salesforce.client_secret_env"),
        )
    return LocalCrm()


def env_secret(variable: str, key: str) -> str:
    value = os.environ.get(variable, "").strip()
    if not value:
        raise ConfigError(
            f"settings.toml: key 'crm.kind': the CRM needs the environment variable {variable} "
            f"(named by '{key}'), and it is not set"
        )
    return secret(value)
