"""Shared fixtures: a simulated upstream and pytester projects that record from it and replay."""

from __future__ import annotations

import os
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


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    """A simulated Responses upstream on loopback: 4 tool calls, then a text answer (5 turns)."""
    with serve_simulator(Script.tool_loop(4, final_text="The weather is mild everywhere.")) as server:
        yield server


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Project:
    return Project(pytester, monkeypatch)
