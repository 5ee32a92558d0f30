"""The real recordings in ``tests/data/real-recordings``, decoded for the tests that use them."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

from pytest_responses_ws.cassette.model import Cassette, RecordedEvent, RecordedWith, Turn
from pytest_responses_ws.cassette.vcr_import import import_vcr_cassette
from pytest_responses_ws.core.record import terminal_outcome
from pytest_responses_ws.core.synthesize import TERMINAL_EVENT_TYPES

REAL = Path(__file__).parents[1] / "data" / "real-recordings"


def frame_log_turns(path: Path) -> list[Turn]:
    """pydantic-ai's WebSocket frame log as turns: each sent create with the events answering it."""
    turns: list[Turn] = []
    pending: list[tuple[dict[str, object], list[RecordedEvent]]] = []
    for entry in yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]:
        data = entry["data"]
        if entry["direction"] == "sent":
            if data.get("type") == "response.create":
                pending.append((data, []))
            continue
        if not pending:
            continue
        request, events = pending[0]
        events.append(RecordedEvent(float(len(events)), data))
        if data.get("type") in TERMINAL_EVENT_TYPES:
            pending.pop(0)
            outcome = terminal_outcome(data["type"])
            turns.append(Turn(request=request, events=tuple(events), transport="ws", outcome=outcome))
    return turns


def is_frame_log(path: Path) -> bool:
    return path.parent.name == "ws" or path.name.startswith("test_ws_")


@cache
def real_cassettes() -> dict[str, Cassette]:
    """Every real recording (vcrpy cassettes imported, frame logs converted), by file name."""
    cassettes = {}
    for path in sorted(REAL.rglob("*.yaml")):
        if is_frame_log(path):
            cassettes[path.name] = Cassette(
                turns=tuple(frame_log_turns(path)),
                recorded_with=RecordedWith("0", "ws"),
                recorded_at="2026-01-01",
            )
        else:
            cassettes[path.name] = import_vcr_cassette(path).cassette
    return cassettes
