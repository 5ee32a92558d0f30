"""What the simulated model answers: a script of steps, one step per model turn.

A step is picked from the request's effective input (its own items plus everything reachable
through ``previous_response_id``), never from connection or call order, so a client that resends
the whole history over HTTP and one that chains ids over WebSocket get the same answers.

A step is what the model answers in one turn: text (:class:`Text`), function calls
(:class:`FunctionCall`, several for parallel calls), an :class:`Error` the service answers
instead, or a callable that receives the request (:class:`ScriptRequest`) and returns any of
those::

    Script([
        FunctionCall("get_weather", {"city": "Paris"}),
        Error(429, retry_after=0.01),            # the next request is refused once
        lambda request: Text(f"{len(request.tool_outputs)} results"),
    ])
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.faults import status_error
from ..core.service_errors import ServiceError

#: What the simulator answers when it was given no script.
DEFAULT_TEXT = "Hello from the simulated Responses API."

__all__ = ["Error", "FunctionCall", "Output", "Reply", "Script", "ScriptRequest", "Step", "Text"]


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


@dataclass(frozen=True)
class Error:
    """The service refuses the request instead of answering it: over HTTP ``status`` with the
    service's JSON error body (and ``retry-after`` when given, in seconds), over WebSocket the
    ``error`` event with that status (the connection stays open).

    ``code`` and ``message`` default to the service's for the status (429
    ``rate_limit_exceeded``, 500 ``server_error``, 503 ``service_unavailable`` ...). A script
    gives each of its errors once: the request that follows (the client's retry) gets the next
    step.
    """

    status: int = 500
    code: str | None = None
    message: str | None = None
    retry_after: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.status, bool) or not isinstance(self.status, int) or not 400 <= self.status <= 599:
            raise ValueError(f"Error: status={self.status!r} must be an error status, 400 to 599")
        if self.retry_after is not None and (
            isinstance(self.retry_after, bool)
            or not isinstance(self.retry_after, (int, float))
            or not 0 <= self.retry_after <= 3600
        ):
            raise ValueError(f"Error: retry_after={self.retry_after!r} must be seconds, 0 to 3600")

    def service_error(self) -> ServiceError:
        """The error as the service gives it (both transports' shapes)."""
        return status_error(self.status, self.code, self.message)


#: One output item of a step.
Output = Text | FunctionCall


@dataclass(frozen=True)
class ScriptRequest:
    """What a callable step receives: one request to answer."""

    #: The request as the client sent it (an HTTP body or a ``response.create`` frame).
    body: Mapping[str, Any]
    #: Its effective input: the conversation it continues (through ``previous_response_id``)
    #: followed by its own items.
    input: tuple[Mapping[str, Any], ...]
    #: The ``function_call_output`` items of the effective input, in order.
    tool_outputs: tuple[Mapping[str, Any], ...]
    #: ``"http"`` or ``"ws"``.
    transport: str
    #: The model turn this request asks for: model turns the conversation already holds.
    turn: int


@dataclass(frozen=True)
class Step:
    """One model turn: output items in order, or the service's :class:`Error`, or a callable."""

    outputs: tuple[Output, ...] = ()
    error: Error | None = None
    reply: Reply | None = None

    @property
    def call_count(self) -> int:
        """How many tool results the client sends back before the next step."""
        return sum(isinstance(output, FunctionCall) for output in self.outputs)


#: A callable step: it gets the request and returns what the model answers.
Reply = Callable[[ScriptRequest], Step | Output | Error | Sequence[Output]]
#: What a script entry may be.
Entry = Step | Output | Error | Sequence[Output] | Reply


def as_step(entry: Any) -> Step:
    """A :class:`Step` from a script entry (a callable's answer too); TypeError for anything else."""
    if isinstance(entry, Step):
        return entry
    if isinstance(entry, (Text, FunctionCall)):
        return Step((entry,))
    if isinstance(entry, Error):
        return Step(error=entry)
    if callable(entry):
        return Step(reply=entry)
    if isinstance(entry, (str, bytes)) or not isinstance(entry, Sequence):
        raise TypeError(
            f"a script step is Text, FunctionCall, a list of them, Error or a callable, not {entry!r}"
        )
    outputs = tuple(entry)
    for output in outputs:
        if not isinstance(output, (Text, FunctionCall)):
            raise TypeError(f"a script step holds Text and FunctionCall outputs, not {output!r}")
    return Step(outputs)


def model_turns(items: Sequence[Mapping[str, Any]]) -> int:
    """Model turns a conversation holds: runs of model output (calls, assistant messages, reasoning)."""
    turns, inside = 0, False
    for item in items:
        produced = item.get("role") == "assistant" or item.get("type") in _MODEL_ITEM_TYPES
        if produced and not inside:
            turns += 1
        inside = produced
    return turns


#: Item types only the model produces (a client resends them as they came).
_MODEL_ITEM_TYPES = frozenset({"function_call", "reasoning", "custom_tool_call", "web_search_call"})


class Script:
    """An ordered list of steps.

    Each entry may be a ``Step``, a single ``Text``/``FunctionCall``, a sequence of them, an
    :class:`Error` or a callable (:data:`Reply`). The request whose conversation already
    holds ``k`` model turns (see :meth:`turn_for`) is answered by the ``k``-th step that is
    not an error; an error answers the first request that reaches it, once. Past the last
    step the last step repeats.
    """

    def __init__(self, steps: Sequence[Entry]) -> None:
        self.steps: tuple[Step, ...] = tuple(as_step(entry) for entry in steps)
        if not self.steps:
            raise ValueError("a Script needs at least one step")
        # calls_before[k] = tool calls made by steps 0..k-1, i.e. results expected before step k.
        calls_before = [0]
        for step in self.steps[:-1]:
            calls_before.append(calls_before[-1] + step.call_count)
        self._calls_before = tuple(calls_before)

    @classmethod
    def of(cls, entries: Sequence[Any]) -> Script:
        """A script from a marker's arguments: one :class:`Script`, or its entries."""
        if len(entries) == 1 and isinstance(entries[0], Script):
            return entries[0]
        return cls(entries)

    @classmethod
    def default(cls) -> Script:
        """The script of a simulator given none: one short text answer."""
        return cls([Text(DEFAULT_TEXT)])

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
        steps: list[Entry] = [
            FunctionCall(tool, {"city": f"City {index}", "step": index}) for index in range(n_calls)
        ]
        steps.append(Text(final_text))
        return cls(steps)

    def step_for(self, tool_results: int) -> Step:
        """The step after the steps that made ``tool_results`` calls."""
        for index, needed in enumerate(self._calls_before):
            if needed >= tool_results:
                return self.steps[index]
        return self.steps[-1]

    def turn_for(self, items: Sequence[Mapping[str, Any]]) -> int:
        """The model turn a request with this effective input asks for: the model turns it
        holds, or, when it holds no model output but tool results (the calls left out), the
        turn after the steps that made that many calls."""
        turns = model_turns(items)
        results = sum(1 for item in items if item.get("type") == "function_call_output")
        if turns or not results:
            return turns
        answering = [step for step in self.steps if step.error is None]
        made = 0
        for turn, step in enumerate(answering):
            if made >= results:
                return turn
            made += step.call_count
        return len(answering) - 1

    def pick(self, turn: int, given: set[int]) -> int:
        """The position of the step answering model turn ``turn``; ``given`` holds the errors
        already given (the caller adds an error it gives)."""
        answers = 0
        for position, step in enumerate(self.steps):
            if step.error is not None:
                if position not in given:
                    return position
                continue
            if answers == turn:
                return position
            answers += 1
        for position in range(len(self.steps) - 1, -1, -1):
            if self.steps[position].error is None:
                return position
        return len(self.steps) - 1

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        return f"Script({list(self.steps)!r})"
