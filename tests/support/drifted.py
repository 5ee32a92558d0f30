"""A simulated upstream that has drifted from the one a cassette was recorded from.

Verify mode is tested by recording from the usual tool loop, then verifying against this one:
the same script with chosen changes (one tool call's arguments, the final text) and, when asked,
one event type renamed in one turn's answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pytest_responses_ws.sim import FunctionCall, Script, Simulator, Text
from pytest_responses_ws.sim.simulator import Answer, ConnectionState

FINAL_TEXT = "The weather is mild everywhere."


def tool_loop_script(
    n_calls: int = 4, *, changed_step: int | None = None, final_text: str = FINAL_TEXT
) -> Script:
    """``Script.tool_loop``'s steps; step ``changed_step`` asks for "Town k" instead of "City k"
    (same length, so token counts stay the same)."""
    steps: list[Any] = [
        FunctionCall("get_weather", {"city": f"{'Town' if k == changed_step else 'City'} {k}", "step": k})
        for k in range(n_calls)
    ]
    steps.append(Text(final_text))
    return Script(steps)


class DriftedSimulator(Simulator):
    """A simulator whose answer to the turn calling step ``renamed_step`` sends ``new_type``
    in place of its ``old_type`` event."""

    def __init__(
        self,
        script: Script,
        *,
        renamed_step: int | None = None,
        old_type: str = "response.in_progress",
        new_type: str = "response.queued",
    ) -> None:
        super().__init__(script)
        self.renamed_step = renamed_step
        self.old_type = old_type
        self.new_type = new_type

    def respond(self, request: Mapping[str, Any], *, connection: ConnectionState) -> list[dict[str, Any]]:
        return self._drift(super().respond(request, connection=connection))

    def answer(self, request: Mapping[str, Any], *, connection: ConnectionState) -> Answer:
        # The HTTP path asks for an answer (events and error headers), WebSocket for events.
        answer = super().answer(request, connection=connection)
        self._drift(answer.events)
        return answer

    def _drift(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.renamed_step is not None and self._step_of(events) == self.renamed_step:
            for event in events:
                if event.get("type") == self.old_type:
                    event["type"] = self.new_type
        return events

    @staticmethod
    def _step_of(events: list[dict[str, Any]]) -> int | None:
        response = events[-1].get("response") if events else None
        for item in (response or {}).get("output", ()):
            if item.get("type") == "function_call":
                step = json.loads(item.get("arguments") or "{}").get("step")
                return step if isinstance(step, int) else None
        return None
