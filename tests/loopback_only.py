"""The test suite reaches nothing but this machine: a connect, a datagram or a name lookup for anything
other than loopback is refused (as an OSError, as if offline) and recorded, and the test that made
it fails, even when the code under test swallowed the error.

Installed by tests/conftest.py before any test module is imported, and in every Python process a test
starts (`leadq run`, `prefect server start`, `leadq serve`) by tests/hermetic/sitecustomize.py: there an
escape is also written to the file named by HERMETIC_ESCAPE_LOG, which the suite reads after each test.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from typing import Any

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
ESCAPE_LOG = "HERMETIC_ESCAPE_LOG"  # where the processes a test starts record what they tried
in_subprocess = False  # set by tests/hermetic/sitecustomize.py: record escapes in the log, not in `escapes`
escapes: list[str] = []  # what the current test tried; conftest fails the test when it is not empty

_getaddrinfo = socket.getaddrinfo
_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_sendto = socket.socket.sendto


class NetworkEscape(OSError):
    """A test tried to reach past loopback."""


def _is_loopback(host: Any) -> bool:
    if host is None:
        return True
    name = host.decode() if isinstance(host, bytes) else str(host)
    name = name.strip("[]").split("%")[0].lower()
    if name in LOOPBACK_NAMES or name == "":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _refuse(what: str) -> NetworkEscape:
    escapes.append(what)
    log = os.environ.get(ESCAPE_LOG) if in_subprocess else None
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"{what} (pid {os.getpid()}: {' '.join(sys.argv)[:200]})\n")
    return NetworkEscape(f"the test suite reaches only loopback: {what} refused")


def _is_address(host: Any) -> bool:
    """An IP literal, also in the decimal, hex or octal forms inet_aton reads: looking it up asks no one
    (a connect to it is judged on its own)."""
    name = (host.decode() if isinstance(host, bytes) else str(host)).strip("[]").split("%")[0]
    try:
        ipaddress.ip_address(name)
    except ValueError:
        try:
            socket.inet_aton(name)
        except OSError:
            return False
    return True


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _is_loopback(host) and not _is_address(host):
        raise _refuse(f"name lookup of {host!r}")
    return _getaddrinfo(host, *args, **kwargs)


def _address_host(address: Any) -> Any:
    return address[0] if isinstance(address, tuple) else None  # AF_UNIX paths are local


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if not _is_loopback(_address_host(address)):
        raise _refuse(f"connect to {address!r}")
    return _connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if not _is_loopback(_address_host(address)):
        raise _refuse(f"connect to {address!r}")
    return _connect_ex(self, address)


def _guarded_sendto(self: socket.socket, data: Any, *args: Any) -> int:
    address = args[-1]
    if not _is_loopback(_address_host(address)):
        raise _refuse(f"datagram to {address!r}")
    return _sendto(self, data, *args)


def install() -> None:
    socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.socket.sendto = _guarded_sendto  # type: ignore[method-assign,assignment]
