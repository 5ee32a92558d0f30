"""Drift: how the live service's answers differ from a cassette, in the ways a client sees.

Verify mode (``--rws-record-mode=verify``) sends a test's requests live and hands the recorded
turns and the live ones here. Each turn is reduced to its :class:`TurnShape`, what a client acts
on: the event types in order (a run of deltas counts once, since chunking and phrasing change
their number), the output items' types, tool calls with their arguments (compared as JSON
values), error codes, the outcome, the usage, the text, and the turn's timing. Ids, timestamps,
sequence numbers and obfuscation are never compared: they change with every answer.

A text phrased differently is drift of kind ``text``: reported, but not :attr:`Difference.structural`.
Timing is reported as figures per turn, never as a difference: it depends on the machine and
the hour. Pure: no clock, no I/O.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..cassette.model import Turn
from .lifecycle import VerifyFailOn

#: Usage counts are in range while within this factor of the recorded ones (plus a small slack).
DEFAULT_USAGE_FACTOR = 2.0
_USAGE_SLACK = 8
_USAGE_KEYS = ("input_tokens", "output_tokens")
_PREVIEW = 80


@dataclass(frozen=True)
class ItemShape:
    """An output item as a client sees it: its type, and for a tool call its name and arguments."""

    type: str
    name: str | None = None
    arguments: Any = None

    def label(self) -> str:
        return self.type if self.name is None else f"{self.type} {self.name}"


@dataclass(frozen=True)
class TurnShape:
    """What a client acts on in one turn's answer."""

    transport: str
    events: tuple[str, ...]
    items: tuple[ItemShape, ...]
    outcome: str
    status: int
    error: str | None
    usage: tuple[tuple[str, int], ...]
    text: str
    first_event_ms: float | None
    total_ms: float | None


def _collapsed_types(types: Sequence[str]) -> tuple[str, ...]:
    """Event types with each run of one ``*.delta`` type counted once."""
    out: list[str] = []
    for kind in types:
        if out and kind == out[-1] and kind.endswith(".delta"):
            continue
        out.append(kind)
    return tuple(out)


def _final_response(turn: Turn) -> Mapping[str, Any] | None:
    if turn.body is not None:
        return turn.body if "output" in turn.body else None
    for event in reversed(turn.events):
        response = event.data.get("response")
        if isinstance(response, Mapping) and "output" in response:
            return response
    return None


def _error_code(turn: Turn) -> str | None:
    """The code of the first error the turn answered with (either transport's shape)."""
    candidates: list[Any] = []
    if turn.body is not None:
        candidates.append(turn.body.get("error"))
    for event in turn.events:
        if event.type == "error":
            candidates.append(event.data.get("error", event.data))
        elif event.type == "response.failed":
            response = event.data.get("response")
            candidates.append(response.get("error") if isinstance(response, Mapping) else None)
    for found in candidates:
        if isinstance(found, Mapping):
            code = found.get("code") or found.get("type")
            if isinstance(code, str):
                return code
    return None


def _arguments(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _items_and_text(response: Mapping[str, Any] | None) -> tuple[tuple[ItemShape, ...], str]:
    if response is None or not isinstance(response.get("output"), list):
        return (), ""
    items: list[ItemShape] = []
    texts: list[str] = []
    for item in response["output"]:
        if not isinstance(item, Mapping):
            continue
        kind = str(item.get("type", ""))
        if kind in ("function_call", "custom_tool_call"):
            raw = item.get("arguments", item.get("input"))
            items.append(ItemShape(kind, str(item.get("name")), _arguments(raw)))
            continue
        name = item.get("name")
        items.append(ItemShape(kind, str(name) if isinstance(name, str) else None))
        for part in item.get("content") or ():
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                texts.append(part["text"])
    return tuple(items), "".join(texts)


def _usage(response: Mapping[str, Any] | None) -> tuple[tuple[str, int], ...]:
    usage = response.get("usage") if response is not None else None
    if not isinstance(usage, Mapping):
        return ()
    return tuple((key, usage[key]) for key in _USAGE_KEYS if isinstance(usage.get(key), int))


def shape_of(turn: Turn) -> TurnShape:
    """Reduce a turn (recorded or live) to what a client acts on."""
    response = _final_response(turn)
    items, text = _items_and_text(response)
    events = turn.events
    return TurnShape(
        transport=turn.transport,
        events=_collapsed_types([event.type for event in events]),
        items=items,
        outcome=turn.outcome,
        status=turn.status,
        error=_error_code(turn),
        usage=_usage(response),
        text=text,
        first_event_ms=events[0].offset_ms if events else None,
        total_ms=events[-1].offset_ms if events else None,
    )


@dataclass(frozen=True)
class Difference:
    """One way a live answer differs from its recording."""

    #: The recorded turn's position in the cassette (the live turn's index when it has none).
    turn: int
    #: ``turns``, ``events``, ``output``, ``tool_call``, ``error``, ``outcome``, ``usage`` or ``text``.
    kind: str
    detail: str

    @property
    def structural(self) -> bool:
        """Everything but text: a client may act differently on it."""
        return self.kind != "text"

    def to_dict(self) -> dict[str, Any]:
        return {"turn": self.turn, "kind": self.kind, "detail": self.detail}


@dataclass(frozen=True)
class TurnTiming:
    """A turn's time to first event and total time, recorded and live (ms after the request)."""

    turn: int
    transport: str
    recorded_first_ms: float | None
    live_first_ms: float | None
    recorded_total_ms: float | None
    live_total_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 3)

        return {
            "turn": self.turn,
            "transport": self.transport,
            "recorded_first_ms": rounded(self.recorded_first_ms),
            "live_first_ms": rounded(self.live_first_ms),
            "recorded_total_ms": rounded(self.recorded_total_ms),
            "live_total_ms": rounded(self.live_total_ms),
        }


@dataclass(frozen=True)
class DriftReport:
    """Every difference found between a cassette and the live answers to the same test."""

    recorded_turns: int
    live_turns: int
    differences: tuple[Difference, ...] = ()
    timings: tuple[TurnTiming, ...] = ()

    def failing(self, fail_on: VerifyFailOn) -> tuple[Difference, ...]:
        """The differences that fail the test under ``fail_on``."""
        if fail_on is VerifyFailOn.NONE:
            return ()
        if fail_on is VerifyFailOn.ALL:
            return self.differences
        return tuple(d for d in self.differences if d.structural)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the per-test summary and the reports."""
        return {
            "recorded_turns": self.recorded_turns,
            "live_turns": self.live_turns,
            "differences": [d.to_dict() for d in self.differences],
            "timings": [t.to_dict() for t in self.timings],
        }


def drift_lines(drift: Mapping[str, Any]) -> list[str]:
    """One line per difference of a report's dict form (:meth:`DriftReport.to_dict`)."""
    lines = []
    for difference in drift.get("differences", ()):
        flag = "" if difference["kind"] != "text" else " (text: not failing unless asked)"
        lines.append(f"turn {difference['turn']}: {difference['kind']}: {difference['detail']}{flag}")
    return lines


def drift_message(cassette: str, drift: DriftReport, failing: Sequence[Difference]) -> str:
    """The failure of a verified test: the differences that fail it, then the way out."""
    lines = [
        f"pytest-responses-ws: the live API's answers drifted from {cassette} "
        f"({len(failing)} difference(s); the cassette was not changed):",
        *(f"  turn {d.turn}: {d.kind}: {d.detail}" for d in failing),
        "  If the new behaviour is right, re-record: --rws-record-mode=rewrite. To report drift without "
        "failing: --rws-verify-fail-on=none.",
    ]
    return "\n".join(lines)


# -- comparison -------------------------------------------------------------------------------------


def _preview(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 3] + "..."


def _event_differences(recorded: Sequence[str], live: Sequence[str]) -> list[str]:
    details = []
    matcher = difflib.SequenceMatcher(a=recorded, b=live, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            continue
        was, now = ", ".join(recorded[a0:a1]), ", ".join(live[b0:b1])
        if op == "replace":
            details.append(f"event {a0}: recorded {was}, live {now}")
        elif op == "delete":
            details.append(f"event {a0}: recorded {was}, live sent nothing there")
        else:
            details.append(f"event {a0}: live sent {now}, not recorded")
    return details


def _in_range(recorded: int, live: int, factor: float) -> bool:
    low = math.floor(recorded / factor) - _USAGE_SLACK
    high = math.ceil(recorded * factor) + _USAGE_SLACK
    return low <= live <= high


def _item_differences(position: int, was: TurnShape, now: TurnShape) -> list[Difference]:
    if [item.type for item in was.items] != [item.type for item in now.items]:
        labels = (", ".join(i.label() for i in shape.items) or "none" for shape in (was, now))
        return [Difference(position, "output", "output items: recorded {}, live {}".format(*labels))]
    found = []
    for index, (a, b) in enumerate(zip(was.items, now.items, strict=True)):
        if a.name != b.name:
            found.append(
                Difference(position, "tool_call", f"item {index}: recorded {a.label()}, live {b.label()}")
            )
        elif a.arguments != b.arguments:
            found.append(
                Difference(
                    position,
                    "tool_call",
                    f"item {index} {a.label()} arguments: recorded {_preview(a.arguments)}, "
                    f"live {_preview(b.arguments)}",
                )
            )
    return found


def _plain(outcome: str) -> str:
    return "error" if outcome == "http_error" else outcome


def compare_shapes(
    position: int, was: TurnShape, now: TurnShape, *, usage_factor: float = DEFAULT_USAGE_FACTOR
) -> list[Difference]:
    """The differences between a recorded turn's shape and a live one's."""
    found: list[Difference] = []
    # An error before any stream is a status with a body over HTTP and an event over WebSocket:
    # across transports only the outcome and the error code can be compared.
    same_transport = was.transport == now.transport
    outcomes = (was.outcome, now.outcome) if same_transport else (_plain(was.outcome), _plain(now.outcome))
    if outcomes[0] != outcomes[1] or (same_transport and was.status != now.status):
        found.append(
            Difference(
                position,
                "outcome",
                f"recorded {was.outcome} (status {was.status}), live {now.outcome} (status {now.status})",
            )
        )
    if was.error != now.error:
        found.append(Difference(position, "error", f"error code: recorded {was.error}, live {now.error}"))
    if was.events and now.events:  # a non-streamed answer has none to compare
        found += [Difference(position, "events", d) for d in _event_differences(was.events, now.events)]
    found += _item_differences(position, was, now)
    recorded_usage, live_usage = dict(was.usage), dict(now.usage)
    for key in _USAGE_KEYS:
        compared = key in recorded_usage and key in live_usage
        if compared and not _in_range(recorded_usage[key], live_usage[key], usage_factor):
            found.append(
                Difference(
                    position,
                    "usage",
                    f"{key}: recorded {recorded_usage[key]}, live {live_usage[key]} (outside {usage_factor:g}x)",
                )
            )
    if was.text != now.text:
        found.append(
            Difference(position, "text", f"recorded {_preview(was.text)!r}, live {_preview(now.text)!r}")
        )
    return found


def _by_lane(turns: Sequence[Turn]) -> dict[str | None, list[int]]:
    lanes: dict[str | None, list[int]] = {}
    for index, turn in enumerate(turns):
        lanes.setdefault(turn.lane, []).append(index)
    return lanes


def pair_turns(recorded: Sequence[Turn], live: Sequence[Turn]) -> list[tuple[int | None, int | None]]:
    """Recorded and live turns paired by their order within each lane (request order).

    Live ids differ from recorded ones (a chain's ``previous_response_id``, call ids), so a
    request cannot be looked up by content; the n-th request on a lane answers the n-th step.
    Unpaired turns come back with None on the other side.
    """
    pairs: list[tuple[int | None, int | None]] = []
    recorded_lanes, live_lanes = _by_lane(recorded), _by_lane(live)
    for lane in dict.fromkeys([*recorded_lanes, *live_lanes]):
        was, now = recorded_lanes.get(lane, []), live_lanes.get(lane, [])
        for index in range(max(len(was), len(now))):
            pairs.append((was[index] if index < len(was) else None, now[index] if index < len(now) else None))
    return sorted(pairs, key=lambda pair: (pair[0] is None, pair[0] or 0, pair[1] or 0))


def compare_turns(
    recorded: Sequence[Turn], live: Sequence[Turn], *, usage_factor: float = DEFAULT_USAGE_FACTOR
) -> DriftReport:
    """Compare a cassette's turns with the live turns a test's requests got, in request order."""
    differences: list[Difference] = []
    timings: list[TurnTiming] = []
    for was_index, now_index in pair_turns(recorded, live):
        if was_index is None:
            assert now_index is not None
            turn = live[now_index]
            differences.append(
                Difference(
                    now_index, "turns", f"live turn {now_index} ({turn.transport}) has no recorded turn"
                )
            )
            continue
        if now_index is None:
            differences.append(Difference(was_index, "turns", "recorded turn was not requested live"))
            continue
        was, now = shape_of(recorded[was_index]), shape_of(live[now_index])
        differences += compare_shapes(was_index, was, now, usage_factor=usage_factor)
        timings.append(
            TurnTiming(
                was_index,
                live[now_index].transport,
                was.first_event_ms,
                now.first_event_ms,
                was.total_ms,
                now.total_ms,
            )
        )
    return DriftReport(len(recorded), len(live), tuple(differences), tuple(timings))
