"""Secrets leave no trace in messages, logs or stored text."""

from __future__ import annotations

import logging

import polars as pl
import pytest

from connectors.errors import FatalError
from connectors.redact import install_log_scrubber, scrub, scrubbed, secret, secret_url


def test_url_passwords_are_hidden_whether_registered_or_not() -> None:
    text = "store postgresql+psycopg://bob:s3cr%40t@db:5432/leads and https://user:pw@hooks.example/x"
    assert scrub(text) == "store postgresql+psycopg://bob:***@db:5432/leads and https://user:***@hooks.example/x"
    assert scrub("mailto:ana@acme.io and https://acme.io/a:b@c") == "mailto:ana@acme.io and https://acme.io/a:b@c"


def test_registered_secrets_are_hidden_in_messages_errors_and_columns() -> None:
    token = secret("pat-na1-0f0f0f0f-test")
    secret_url("postgresql://svc:pg-pass-77@db/leads")
    assert scrub(f"401 for Bearer {token}; pg-pass-77") == "401 for Bearer ***; ***"
    assert str(FatalError(f"hubspot: HTTP 401: token {token} expired")) == "hubspot: HTTP 401: token *** expired"
    frame = pl.DataFrame({"reason": [f"echo {token}", "fine", None]}).select(scrubbed("reason"))
    assert frame["reason"].to_list() == ["echo ***", "fine", None]


def test_log_records_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    token = secret("sk-test-ABCDEFGHIJ")
    install_log_scrubber()
    with caplog.at_level(logging.INFO, logger="leadq.test"):
        logging.getLogger("leadq.test").info("calling with %s at %s", token, "https://u:pw@h/x")
    assert caplog.messages == ["calling with *** at https://u:***@h/x"]
