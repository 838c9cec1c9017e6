"""The suite's own guard: nothing a test runs, in this process or in one it starts, reaches past loopback."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests import loopback_only
from tests.conftest import ESCAPE_LOG


def test_a_name_lookup_or_connect_past_loopback_is_refused_here() -> None:
    with pytest.raises(OSError, match="reaches only loopback"):
        socket.getaddrinfo("example.com", 443)
    with socket.socket() as sock, pytest.raises(OSError, match="reaches only loopback"):
        sock.connect(("93.184.216.34", 443))
    assert loopback_only.escapes == ["name lookup of 'example.com'", "connect to ('93.184.216.34', 443)"]
    loopback_only.escapes.clear()  # seen and refused, as it must be: this test is not a failure


def test_a_subprocess_is_guarded_too_and_its_escapes_are_reported() -> None:
    code = (
        "import socket\n"
        "try:\n    socket.getaddrinfo('pypi.org', 443)\nexcept OSError as exc:\n    print('refused:', exc)\n"
        "socket.getaddrinfo('localhost', 80)\nprint('loopback ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert "refused: the test suite reaches only loopback" in done.stdout and "loopback ok" in done.stdout
    assert "name lookup of 'pypi.org'" in ESCAPE_LOG.read_text()
    ESCAPE_LOG.write_text("")  # seen and refused: this test is not a failure
