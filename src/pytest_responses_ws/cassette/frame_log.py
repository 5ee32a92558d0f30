"""Import WebSocket frame logs: one entry per text frame, ``direction: sent|received`` and its JSON ``data``.

pydantic-ai records its WebSocket-mode tests this way (YAML, ``interactions`` in wire order).
Each sent ``response.create`` becomes a turn, answered by the received events up to its
terminal event; turns on one lane answer in order, so events go to the oldest unanswered
create of their lane (``stream_id``). Frame logs hold no timing, handshake or close, so
events sit at offset 0 on one connection.
"""

from __future__ import annotations

import datetime as _dt
from collections import deque
from pathlib import Path
from typing import Any

from .._version import __version__
from ..core.record import terminal_outcome
from ..core.synthesize import ends_turn
from ..errors import CassetteFormatError
from .model import Cassette, ConnectionRecord, RecordedEvent, RecordedWith, Turn
from .redact import Redactor, redact_request

#: What tells a frame log from a vcrpy cassette: its entries have these keys.
FRAME_KEYS = frozenset({"direction", "data"})


def is_frame_log(data: Any) -> bool:
    """Whether loaded YAML is a frame log (its first interaction is a frame, not a request/response)."""
    interactions = data.get("interactions") if isinstance(data, dict) else None
    if not isinstance(interactions, list) or not interactions:
        return False
    first = interactions[0]
    return isinstance(first, dict) and first.keys() >= FRAME_KEYS and "request" not in first


class _Pending:
    def __init__(self, request: dict[str, Any], pointer: str) -> None:
        self.request = request
        self.pointer = pointer
        self.events: list[dict[str, Any]] = []


def frame_log_turns(path: Path, data: dict[str, Any]) -> tuple[list[Turn], list[str]]:
    """The turns of a loaded frame log, and a description of each frame left out."""
    redactor = Redactor()
    pending: dict[str | None, deque[_Pending]] = {}
    turns: list[Turn] = []
    skipped: list[str] = []
    for position, entry in enumerate(data["interactions"]):
        pointer = f"/interactions/{position}"
        if not isinstance(entry, dict) or entry.get("direction") not in ("sent", "received"):
            raise CassetteFormatError(path, pointer, "expected a frame: direction sent or received, and data")
        frame = entry.get("data")
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            raise CassetteFormatError(path, f"{pointer}/data", "expected a JSON object with a string type")
        lane = frame.get("stream_id") if isinstance(frame.get("stream_id"), str) else None
        if entry["direction"] == "sent":
            if frame["type"] == "response.create":
                redactor.learn_tool_credentials(frame)
                pending.setdefault(lane, deque()).append(_Pending(frame, pointer))
            else:
                skipped.append(f"sent {frame['type']} ({pointer})")
            continue
        waiting = pending.get(lane)
        if not waiting:
            skipped.append(f"received {frame['type']} with no request waiting ({pointer})")
            continue
        turn = waiting[0]
        turn.events.append(frame)
        if ends_turn(frame):
            waiting.popleft()
            turns.append(_turn(turn, lane, redactor))
    unanswered = [turn for waiting in pending.values() for turn in waiting]
    if unanswered:
        raise CassetteFormatError(
            path, unanswered[0].pointer, "this response.create has no terminal event in the log (cut short?)"
        )
    return turns, skipped


def _turn(pending: _Pending, lane: str | None, redactor: Redactor) -> Turn:
    terminal = pending.events[-1]["type"]
    return Turn(
        request=redactor.scrub(redact_request(pending.request)),
        events=tuple(RecordedEvent(0.0, redactor.scrub(event)) for event in pending.events),
        transport="ws",
        connection=0,
        lane=lane,
        outcome=terminal_outcome(terminal),
    )


def import_frame_log(path: Path, data: dict[str, Any]) -> tuple[Cassette, tuple[str, ...]]:
    """A cassette from a loaded frame log (see :func:`is_frame_log`), and what was left out."""
    turns, skipped = frame_log_turns(path, data)
    cassette = Cassette(
        turns=tuple(turns),
        recorded_with=RecordedWith(plugin_version=__version__, transport="ws"),
        recorded_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        connections=(ConnectionRecord(id=0, transport="ws", opened_at_ms=0.0),),
    )
    return cassette, tuple(skipped)
