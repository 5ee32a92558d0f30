"""Shared fixtures: a simulated upstream and pytester projects that record from it and replay."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator

import pytest

from pytest_responses_ws.clients import warm_openai_parsers
from pytest_responses_ws.sim import Script, SimulatorServer, serve_simulator

from support.project import Project

# pytester's in-process runs drop modules first imported inside them, and with
# PYTHONDONTWRITEBYTECODE set pytest re-rewrites plugin packages on every import.
# Importing them here (and warming the SDK) keeps each run from paying that again.
os.environ["OPENAI_AGENTS_DISABLE_TRACING"] = "1"  # it would export to the real API
warm_openai_parsers()
import agents  # noqa: E402, F401
import hypothesis  # noqa: E402, F401

_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}


def _is_loopback(host: object) -> bool:
    if not isinstance(host, str):
        return True  # Unix sockets and the like: not a network address
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class NonLoopbackAccess(OSError):
    """A test tried to reach an address outside 127.0.0.0/8 and ::1."""


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> Iterator[None]:
    """The suite reaches no network address but loopback: anything else fails at once."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if not _is_loopback(host.decode() if isinstance(host, bytes) else host):
            raise NonLoopbackAccess(f"tests may resolve loopback names only, not {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    def checked(address: object) -> None:
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            raise NonLoopbackAccess(f"tests may connect to loopback only, not {address!r}")

    def connect(self: socket.socket, address: object) -> None:
        checked(address)
        real_connect(self, address)  # type: ignore[arg-type]

    def connect_ex(self: socket.socket, address: object) -> int:
        checked(address)
        return real_connect_ex(self, address)  # type: ignore[arg-type]

    patch = pytest.MonkeyPatch()
    patch.setattr(socket, "getaddrinfo", getaddrinfo)
    patch.setattr(socket.socket, "connect", connect)
    patch.setattr(socket.socket, "connect_ex", connect_ex)
    yield
    patch.undo()


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    """A simulated Responses upstream on loopback: 4 tool calls, then a text answer (5 turns)."""
    with serve_simulator(Script.tool_loop(4, final_text="The weather is mild everywhere.")) as server:
        yield server


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Project:
    return Project(pytester, monkeypatch)
