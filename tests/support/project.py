"""A pytester project that records from the simulator and replays offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_responses_ws.sim import SimulatorServer

SUPPORT = Path(__file__).parent
#: A recognizable fake key: no byte of it may ever reach a cassette.
FAKE_API_KEY = "fake-key-RWSSECRET-0123456789abcdef"


class Project:
    """A throwaway pytest project using the plugin, with helpers to record and replay."""

    def __init__(self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pytester = pytester
        self.monkeypatch = monkeypatch
        self.events_file = pytester.path / "events.jsonl"
        pytester.makepyfile(agent_loops=(SUPPORT / "agent_loops.py").read_text(encoding="utf-8"))
        pytester.syspathinsert()
        pytester.makeini(
            "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
            "filterwarnings = ignore::DeprecationWarning\n"
        )
        monkeypatch.setenv("RWS_EVENTS_OUT", str(self.events_file))
        # The agents SDK exports traces to the real API by itself; tests reach loopback only.
        monkeypatch.setenv("OPENAI_AGENTS_DISABLE_TRACING", "1")
        # Inner runs print the same wherever the suite runs: on CI pytest shows failures in full
        # in the short summary too, which doubles every message a test counts.
        monkeypatch.delenv("CI", raising=False)
        monkeypatch.delenv("BUILD_NUMBER", raising=False)
        monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
        monkeypatch.delenv("OPENAI_WEBSOCKET_BASE_URL", raising=False)

    @property
    def path(self) -> Path:
        return self.pytester.path

    def write(self, name: str, source: str) -> Path:
        return self.pytester.makepyfile(**{name: source})

    def run(self, *args: str) -> pytest.RunResult:
        self.events_file.unlink(missing_ok=True)
        return self.pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly", *args)

    def record(self, sim: SimulatorServer, *args: str, mode: str = "once") -> pytest.RunResult:
        """Run with recording from ``sim``, using the fake key as a real user would use theirs."""
        with self.monkeypatch.context() as patch:
            patch.setenv("OPENAI_API_KEY", FAKE_API_KEY)
            return self.run(f"--rws-record-mode={mode}", f"--rws-upstream={sim.url}", *args)

    def replay(self, *args: str) -> pytest.RunResult:
        """Run offline: no upstream, no key."""
        with self.monkeypatch.context() as patch:
            patch.delenv("OPENAI_API_KEY", raising=False)
            return self.run(*args)

    def events(self) -> dict[str, list[dict[str, Any]]]:
        """Events saved by the last run's loops, by name."""
        if not self.events_file.exists():
            return {}
        lines = self.events_file.read_text(encoding="utf-8").splitlines()
        return {entry["name"]: entry["events"] for entry in map(json.loads, lines)}

    def cassettes(self) -> list[Path]:
        return sorted(self.path.rglob("cassettes/**/*.json"))
