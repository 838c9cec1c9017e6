"""CRM pieces without a server: settings checks and the isolation of refused inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.crm import build_crm
from connectors.crm.base import BatchRefused, send_isolating
from connectors.errors import ConfigError, FatalError
from connectors.settings import load_settings


def test_a_crm_without_its_secret_is_a_config_error_naming_the_variable(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADQ__CRM__KIND", "salesforce")
    monkeypatch.delenv("SALESFORCE_CLIENT_ID", raising=False)
    with pytest.raises(ConfigError, match=r"SALESFORCE_CLIENT_ID.*not set"):
        build_crm(load_settings())


def test_a_mapping_of_an_unknown_leadq_field_names_the_key(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADQ__CRM__KIND", "hubspot")
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-x")
    monkeypatch.setenv("LEADQ__CRM__HUBSPOT__CONTACT_PROPERTIES", '{scroe = "leadq_score"}')
    with pytest.raises(ConfigError, match=r"crm.hubspot.contact_properties.*no field 'scroe'"):
        build_crm(load_settings())


def test_one_bad_input_is_isolated_and_the_other_ninety_nine_are_sent() -> None:
    sent: list[list[int]] = []
    refused: list[tuple[int, str]] = []

    def send(part: list[int]) -> str:
        if 42 in part:
            raise BatchRefused("value 42 is invalid")
        sent.append(list(part))
        return "ok"

    accepted = send_isolating(list(range(100)), send, lambda item, why: refused.append((item, why)))
    assert refused == [(42, "value 42 is invalid")]
    assert sorted(i for part in sent for i in part) == [i for i in range(100) if i != 42]
    assert len(accepted) == len(sent) <= 8


def test_a_refusal_of_every_input_is_a_fatal_error_not_a_hundred_requests() -> None:
    calls = []

    def send(part: list[int]) -> str:
        calls.append(len(part))
        raise BatchRefused('Property "leadq_score" does not exist')

    with pytest.raises(FatalError, match="leadq_score"):
        send_isolating(list(range(100)), send, lambda item, why: None)
    assert len(calls) == 30
