"""What the simulated model answers: a script of steps, one step per model turn.

A step is picked from the request's effective input (its own items plus everything reachable
through ``previous_response_id``), never from connection or call order, so a client that resends
the whole history over HTTP and one that chains ids over WebSocket get the same answers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FunctionCall", "Output", "Script", "Step", "Text"]


@dataclass(frozen=True)
class Text:
    """An assistant message with one ``output_text`` part."""

    text: str


@dataclass(frozen=True)
class FunctionCall:
    """A ``function_call`` item. A mapping of arguments is sent as compact JSON."""

    name: str
    arguments: str | Mapping[str, Any] = field(default="{}")

    @property
    def arguments_json(self) -> str:
        """The arguments as the wire carries them: a JSON string."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(dict(self.arguments), separators=(",", ":"))


#: One output item of a step.
Output = Text | FunctionCall


@dataclass(frozen=True)
class Step:
    """The output items of one model turn, in order."""

    outputs: tuple[Output, ...]

    @property
    def call_count(self) -> int:
        """How many tool results the client sends back before the next step."""
        return sum(isinstance(output, FunctionCall) for output in self.outputs)


def _as_step(entry: Step | Output | Sequence[Output]) -> Step:
    if isinstance(entry, Step):
        return entry
    if isinstance(entry, (Text, FunctionCall)):
        return Step((entry,))
    outputs = tuple(entry)
    for output in outputs:
        if not isinstance(output, (Text, FunctionCall)):
            raise TypeError(f"a script step holds Text and FunctionCall outputs, not {output!r}")
    return Step(outputs)


class Script:
    """An ordered list of steps.

    Each entry may be a ``Step``, a single ``Text``/``FunctionCall`` or a sequence of them.
    The request that has seen ``k`` tool results (``function_call_output`` items) is answered
    by the first step whose preceding steps made at least ``k`` calls; with one call per step
    that is simply step ``k``. Past the last step the last step repeats.
    """

    def __init__(self, steps: Sequence[Step | Output | Sequence[Output]]) -> None:
        self.steps: tuple[Step, ...] = tuple(_as_step(entry) for entry in steps)
        if not self.steps:
            raise ValueError("a Script needs at least one step")
        # calls_before[k] = tool calls made by steps 0..k-1, i.e. results expected before step k.
        calls_before = [0]
        for step in self.steps[:-1]:
            calls_before.append(calls_before[-1] + step.call_count)
        self._calls_before = tuple(calls_before)

    @classmethod
    def tool_loop(
        cls,
        n_calls: int,
        tool: str = "get_weather",
        final_text: str = "All tool calls are done.",
    ) -> Script:
        """``n_calls`` steps of one call each (arguments carry the step index), then ``final_text``."""
        if n_calls < 0:
            raise ValueError(f"n_calls must be 0 or more, got {n_calls}")
        steps: list[Step | Output | Sequence[Output]] = [
            FunctionCall(tool, {"city": f"City {index}", "step": index}) for index in range(n_calls)
        ]
        steps.append(Text(final_text))
        return cls(steps)

    def step_for(self, tool_results: int) -> Step:
        """The step that answers a request whose effective input holds ``tool_results`` results."""
        for index, needed in enumerate(self._calls_before):
            if needed >= tool_results:
                return self.steps[index]
        return self.steps[-1]

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        return f"Script({list(self.steps)!r})"
