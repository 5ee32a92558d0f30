"""A latency model of the Responses API service, per transport (sans I/O).

It answers "how long would the service take to answer this turn, over HTTP and over
WebSocket mode?" from what a turn recorded: its token counts (the final response's
``usage``, or the events' text when there is none) and whether the request chains from a
response held on its connection. Replay uses it to send each event when the service would
(``--rws-timing=model``); reports and the ``ws_gain`` budget use it to project a test's
turns over both transports.

A turn costs, in order:

* **service time**: validation, routing, the safety checks and the processing of the input
  before inference starts. A request the service must set up afresh (every HTTP request,
  and a WebSocket request that does not chain from a response held on its connection)
  pays ``request_ms`` plus ``input_ms_per_1k_tokens`` for its whole input, the effective
  context. A WebSocket request that chains (``previous_response_id``) from a response
  held in its connection's cache pays ``chained_request_ms`` plus the input cost of the
  items it sends: the service keeps the previous response, its items, the tools and the
  rendered tokens, so it processes only what is new. A reconnect (the response is not
  on this connection) or a loop that resends its history over WebSocket pays in full;
* **time to first token** (``ttft_ms``), then the reasoning tokens;
* **generation**: the visible output tokens at ``tokens_per_s``; each event is sent when
  the tokens it carries have been generated.

The defaults and their sources are in :data:`PRESETS` (see also "Will WebSocket mode speed up
my agent?" in the docs). Every figure here is unscaled, the service's own time; replay
multiplies the send times by ``scale`` so a test suite can run the model at a fraction of
real time, ratios unchanged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from ..cassette.model import Transport, Turn

if TYPE_CHECKING:
    from .metrics import TurnMetrics

__all__ = [
    "DEFAULT_PRESET",
    "PRESETS",
    "ContextTokens",
    "LatencyModel",
    "Projection",
    "RecordedTokens",
    "TurnProjection",
    "TurnTiming",
    "estimate_tokens",
    "event_offsets",
    "project",
    "recorded_tokens",
    "reference_loop",
    "text_length",
    "turn_timing",
]

#: About four characters a token: the service's own rule of thumb for English text and code.
CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class LatencyModel:
    """The parameters of the service's latency (milliseconds and tokens per second).

    Build one from a preset with :meth:`preset` (``LatencyModel.preset("fast", scale=0.01)``)
    or give every value. ``scale`` multiplies replay's send times only: reported figures
    stay the service's own.
    """

    #: The preset the values started from (shown in reports).
    name: str
    #: Inference's time to the first token once the service has processed the request.
    ttft_ms: float
    #: Generation speed of output (and reasoning) tokens.
    tokens_per_s: float
    #: Fixed service cost of a request the service sets up afresh (HTTP, an unchained or
    #: reconnected WebSocket request): authentication, validation, routing, loading state.
    request_ms: float
    #: Fixed service cost of a WebSocket request chained from a response held on its connection.
    chained_request_ms: float
    #: Service cost of processing input (rendering, tokenizing, safety checks) per 1,000 tokens.
    input_ms_per_1k_tokens: float
    #: Multiplies replay's send times (1: real time); reports are never scaled.
    scale: float = 1.0

    @classmethod
    def preset(cls, name: str = "fast", **overrides: float) -> LatencyModel:
        """A preset (``fast`` or ``slow``) with some values replaced."""
        try:
            base = PRESETS[name]
        except KeyError:
            raise ValueError(
                f"unknown latency preset {name!r}; expected one of {', '.join(PRESETS)}"
            ) from None
        return base.with_values(**overrides)

    def with_values(self, **values: float) -> LatencyModel:
        """This model with some values replaced (names as the fields; each is checked)."""
        unknown = [key for key in values if key not in PARAMETERS]
        if unknown:
            raise ValueError(
                f"unknown latency model parameter(s) {', '.join(map(repr, unknown))}; "
                f"expected {', '.join(PARAMETERS)}"
            )
        model: LatencyModel = replace(self, **values)  # type: ignore[arg-type]  # names checked above
        model.check()
        return model

    def check(self) -> None:
        """Raise ValueError naming the first value that can never work."""
        for name in PARAMETERS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a number, got {value!r}")
            positive = name in ("tokens_per_s", "scale")
            if value < 0 or (positive and value == 0):
                raise ValueError(f"{name} must be {'above' if positive else 'at least'} 0, got {value!r}")

    def describe(self) -> str:
        """``fast (ttft 100 ms, 1000 tok/s, request 100 ms, chained 20 ms, 5 ms/1k input tokens)``."""
        return (
            f"{self.name} (ttft {self.ttft_ms:g} ms, {self.tokens_per_s:g} tok/s, request {self.request_ms:g} ms, "
            f"chained {self.chained_request_ms:g} ms, {self.input_ms_per_1k_tokens:g} ms/1k input tokens)"
        )

    def as_dict(self) -> dict[str, Any]:
        """The parameters as JSON-ready values (for reports)."""
        return asdict(self)


#: The values a model is made of (``name`` aside), as options and ``rws_config`` keys take them.
PARAMETERS = tuple(f.name for f in fields(LatencyModel) if f.name != "name")

#: The presets. Sources and calibration (docs/ws-speedup.md):
#:
#: * ``tokens_per_s``: OpenAI's engineering post on WebSocket mode (April 2026) gives ~65
#:   tokens/s for GPT-5 and GPT-5.2 in the Responses API, and over 1,000 for
#:   GPT-5.3-Codex-Spark on Cerebras hardware;
#: * ``ttft_ms``: inference's own first-token time, not published apart from the API's; 400 ms
#:   for a GPU-served flagship and 100 ms for a fast model are typical prefill times of an
#:   agent's cached context, an assumption;
#: * ``request_ms``, ``chained_request_ms``, ``input_ms_per_1k_tokens``: the service's per-request
#:   work is not published in milliseconds. These values are calibrated so that the reference
#:   loop (:func:`reference_loop`: 20 tool calls on the fast model) runs at 0.60 WebSocket/HTTP
#:   end to end, OpenAI's "up to ~40% faster for rollouts with 20+ tool calls" (Vercel: up to 40%,
#:   Cline: 39%, Cursor: up to 30%, xAI: ~20%), while a slow model or a 2-turn loop gains little.
PRESETS: dict[str, LatencyModel] = {
    "fast": LatencyModel(
        name="fast",
        ttft_ms=100.0,
        tokens_per_s=1000.0,
        request_ms=100.0,
        chained_request_ms=20.0,
        input_ms_per_1k_tokens=5.0,
    ),
    "slow": LatencyModel(
        name="slow",
        ttft_ms=400.0,
        tokens_per_s=65.0,
        request_ms=100.0,
        chained_request_ms=20.0,
        input_ms_per_1k_tokens=5.0,
    ),
}
DEFAULT_PRESET = "fast"


# -- token counts -------------------------------------------------------------------------


def text_length(value: object) -> int:
    """Characters of every string inside ``value`` (keys aside): what token estimates count."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Mapping):
        return sum(text_length(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(text_length(v) for v in value)
    return 0


def estimate_tokens(chars: int) -> int:
    """Tokens for ``chars`` characters of text: about four a token, at least one for any text."""
    return 0 if chars <= 0 else max(1, math.ceil(chars / CHARS_PER_TOKEN))


def request_chars(request: Mapping[str, Any]) -> int:
    """Characters a request's own input, instructions and tools hold (the simulator's usage
    counts the same, so a recording from it and an estimate agree)."""
    items = request.get("input")
    tools = request.get("tools") or []
    return text_length(items) + text_length(request.get("instructions")) + len(json.dumps(tools))


#: Events whose ``delta`` is not generated text (audio is base64).
_NOT_TEXT_DELTAS = frozenset({"response.audio.delta"})


def _delta_chars(event: Mapping[str, Any]) -> int:
    event_type = event.get("type")
    delta = event.get("delta")
    if (
        isinstance(event_type, str)
        and event_type.endswith(".delta")
        and isinstance(delta, str)
        and event_type not in _NOT_TEXT_DELTAS
    ):
        return len(delta)
    return 0


def _output_chars(item: Mapping[str, Any]) -> int:
    """Characters the model generated for an output item (ids and statuses do not count)."""
    if item.get("type") == "function_call":
        return len(str(item.get("name", ""))) + len(str(item.get("arguments", "")))
    content = item.get("content")
    parts = content if isinstance(content, list) else []
    return sum(text_length(part.get("text", "")) for part in parts if isinstance(part, Mapping))


def output_chars(output: Sequence[Any]) -> int:
    """Characters the model generated for a response's output items."""
    return sum(_output_chars(item) for item in output if isinstance(item, Mapping))


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


@dataclass(frozen=True)
class RecordedTokens:
    """What a recorded turn's answer cost in tokens.

    ``input_tokens`` is the whole effective context as the service counted it (None when
    the turn recorded no usage). ``event_tokens`` holds, per event, the visible output
    tokens the event carries.
    """

    input_tokens: int | None
    output_tokens: int
    reasoning_tokens: int
    event_tokens: tuple[int, ...] = ()

    @property
    def visible_tokens(self) -> int:
        """Output tokens the events carry (reasoning aside)."""
        return max(0, self.output_tokens - self.reasoning_tokens)


def _usage(response: Mapping[str, Any] | None) -> tuple[int | None, int | None, int]:
    usage = response.get("usage") if isinstance(response, Mapping) else None
    if not isinstance(usage, Mapping):
        return None, None, 0
    details = usage.get("output_tokens_details")
    reasoning = _int(details.get("reasoning_tokens")) if isinstance(details, Mapping) else None
    return _int(usage.get("input_tokens")), _int(usage.get("output_tokens")), reasoning or 0


def recorded_tokens(
    events: Sequence[Mapping[str, Any]], response: Mapping[str, Any] | None, *, per_event: bool = True
) -> RecordedTokens:
    """Token counts of a turn from its events and final response (``usage`` first).

    Without usage, output tokens are counted from the events' text (their ``delta``
    strings, else the final output items'). Visible tokens are spread over the events in
    proportion to their text; a turn with output but no text events gives it all to its
    last event. ``per_event=False`` skips the spreading (the totals need one read only).
    """
    input_tokens, output_tokens, reasoning = _usage(response)
    chars = [_delta_chars(event) for event in events] if per_event or output_tokens is None else []
    total_chars = sum(chars)
    if output_tokens is None:
        if total_chars == 0 and isinstance(response, Mapping):
            output = response.get("output")
            total_chars = output_chars(output) if isinstance(output, list) else 0
            chars = []
        output_tokens = estimate_tokens(total_chars)
    reasoning = min(reasoning, output_tokens)
    if not per_event:
        return RecordedTokens(input_tokens, output_tokens, reasoning)
    visible = output_tokens - reasoning
    spread = [0] * len(events)
    if visible and events:
        if sum(chars) == 0:
            spread[-1] = visible
        else:
            seen, given = 0, 0
            for index, count in enumerate(chars):
                seen += count
                share = round(visible * seen / total_chars)
                spread[index], given = share - given, share
    return RecordedTokens(input_tokens, output_tokens, reasoning, tuple(spread))


def turn_tokens(turn: Turn, *, per_event: bool = True) -> RecordedTokens:
    """:func:`recorded_tokens` of a cassette turn (its events, or the events its body stands for)."""
    # Imported here: settings import this module, and a run that never replays must not pay for them.
    from .match import turn_response
    from .replay import turn_events

    response = turn_response(turn, as_copy=False)
    events: Sequence[Mapping[str, Any]] = turn_events(turn) if per_event else ()
    return recorded_tokens(events, response, per_event=per_event)


def sent_items(request: Mapping[str, Any]) -> list[Any]:
    """The input items a request itself carries (a bare string is one message)."""
    raw = request.get("input")
    return raw if isinstance(raw, list) else ([] if raw is None else [raw])


@dataclass(frozen=True)
class InputFigures:
    """A request's input in tokens: the whole effective context, and what it sent itself."""

    input_tokens: int
    sent_tokens: int


class ContextTokens:
    """The size of each conversation so far, by response id, for turns without usage.

    A turn's context is its recorded ``usage.input_tokens``; without usage it is estimated
    from the request, plus the conversation it chains from, as remembered here.
    """

    def __init__(self) -> None:
        self._after: dict[str, int] = {}

    def figures(
        self, request: Mapping[str, Any], recorded: RecordedTokens, response_id: str | None
    ) -> InputFigures:
        """The input figures of ``request``, answered by a turn that cost ``recorded``; the
        conversation after ``response_id`` is remembered for the requests chaining from it."""
        input_tokens = recorded.input_tokens
        if input_tokens is None:
            parent = request.get("previous_response_id")
            held = self._after.get(parent, 0) if isinstance(parent, str) else 0
            input_tokens = held + estimate_tokens(request_chars(request))
        if response_id is not None:
            self._after[response_id] = input_tokens + recorded.output_tokens
        return InputFigures(input_tokens, estimate_tokens(text_length(sent_items(request))))


# -- time -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TurnTiming:
    """When the service answers one turn, in seconds after its request (unscaled)."""

    #: The service's work before inference: validation, routing, input processing.
    service_s: float
    #: When visible output starts: the service, the first token, the reasoning tokens.
    generation_start_s: float
    #: When the terminal event goes out.
    total_s: float


def service_seconds(model: LatencyModel, input_tokens: int, sent_tokens: int, held: bool) -> float:
    """The service's time before inference: in full, or (``held``) for what was sent only."""
    if held:
        fixed, tokens = model.chained_request_ms, sent_tokens
    else:
        fixed, tokens = model.request_ms, input_tokens
    return (fixed + model.input_ms_per_1k_tokens * tokens / 1000.0) / 1000.0


def turn_timing(
    model: LatencyModel,
    *,
    input_tokens: int,
    sent_tokens: int,
    output_tokens: int,
    reasoning_tokens: int = 0,
    held: bool,
) -> TurnTiming:
    """The timing of one turn (a turn without output is answered when the service is done)."""
    service = service_seconds(model, input_tokens, sent_tokens, held)
    if output_tokens <= 0:
        return TurnTiming(service, service, service)
    start = service + model.ttft_ms / 1000.0 + min(reasoning_tokens, output_tokens) / model.tokens_per_s
    return TurnTiming(service, start, service + model.ttft_ms / 1000.0 + output_tokens / model.tokens_per_s)


def event_offsets(
    model: LatencyModel, tokens: RecordedTokens, *, input_tokens: int, sent_tokens: int, held: bool
) -> list[float]:
    """When the service sends each event of a turn, in seconds after the request (unscaled).

    Events before any output (``response.created``, ``in_progress``, an item's ``added``) go
    when the service is done; each later event when the tokens up to it are generated;
    the rest (``done`` events, the terminal event) with the last of them.
    """
    timing = turn_timing(
        model,
        input_tokens=input_tokens,
        sent_tokens=sent_tokens,
        output_tokens=tokens.output_tokens,
        reasoning_tokens=tokens.reasoning_tokens,
        held=held,
    )
    offsets: list[float] = []
    generated = 0
    last = len(tokens.event_tokens) - 1
    for index, count in enumerate(tokens.event_tokens):
        generated += count
        if index == last:
            offsets.append(timing.total_s)
        elif generated == 0:
            offsets.append(timing.service_s)
        else:
            offsets.append(timing.generation_start_s + generated / model.tokens_per_s)
    return offsets


def schedule(
    model: LatencyModel, tokens: RecordedTokens, *, input_tokens: int, sent_tokens: int, held: bool
) -> list[float]:
    """:func:`event_offsets` as replay sends them: multiplied by the model's ``scale``."""
    offsets = event_offsets(model, tokens, input_tokens=input_tokens, sent_tokens=sent_tokens, held=held)
    return [offset * model.scale for offset in offsets]


def answer_schedule(
    model: LatencyModel, request: Mapping[str, Any], events: Sequence[Mapping[str, Any]], *, held: bool
) -> list[float]:
    """Send times (scaled) of an answer the simulator made: its usage drives the model."""
    from .synthesize import response_from_events

    tokens = recorded_tokens(events, response_from_events(events, as_copy=False))
    figures = ContextTokens().figures(request, tokens, None)
    return schedule(
        model, tokens, input_tokens=figures.input_tokens, sent_tokens=figures.sent_tokens, held=held
    )


# -- projection over both transports ----------------------------------------------------------


@dataclass(frozen=True)
class TurnProjection:
    """One turn's modeled service time over each transport (milliseconds, unscaled).

    ``held`` says whether the WebSocket figure chains from a response held on the
    connection: as played over WebSocket, or (an HTTP run) as a chaining client would.
    """

    index: int
    held: bool
    input_tokens: int
    #: Input tokens the WebSocket request pays for (all of them unless ``held``).
    ws_input_tokens: int
    output_tokens: int
    http_ms: float
    ws_ms: float
    #: Of each, the service's part (the rest is inference: first token and generation).
    http_service_ms: float = 0.0
    ws_service_ms: float = 0.0


@dataclass(frozen=True)
class Projection:
    """A test's turns as the model times them over both transports.

    ``played`` is the transport the test ran over: its figure is the turns as played, the
    other transport's is projected (over HTTP every request pays in full; over WebSocket
    an HTTP run's turns that continue a conversation are taken as chained on one
    connection, sending only what is new).
    """

    model: LatencyModel
    played: Transport
    turns: tuple[TurnProjection, ...] = field(default_factory=tuple)

    @property
    def http_ms(self) -> float:
        """Modeled service time of every turn over HTTP."""
        return sum(turn.http_ms for turn in self.turns)

    @property
    def ws_ms(self) -> float:
        """Modeled service time of every turn over WebSocket mode."""
        return sum(turn.ws_ms for turn in self.turns)

    @property
    def ratio(self) -> float | None:
        """WebSocket time over HTTP time (None without turns)."""
        http = self.http_ms
        return self.ws_ms / http if http > 0 else None

    @property
    def gain(self) -> float | None:
        """The share of the HTTP time WebSocket mode saves: ``1 - ratio`` (0.4 is 40% faster)."""
        ratio = self.ratio
        return None if ratio is None else 1.0 - ratio

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (for reports)."""
        return {
            "model": self.model.as_dict(),
            "played": self.played,
            "http_ms": round(self.http_ms, 3),
            "ws_ms": round(self.ws_ms, 3),
            "ratio": None if self.ratio is None else round(self.ratio, 4),
            "gain": None if self.gain is None else round(self.gain, 4),
            "turns": [asdict(turn) for turn in self.turns],
        }


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def project(turns: Sequence[TurnMetrics], model: LatencyModel, played: Transport) -> Projection:
    """Model ``turns`` (measured over ``played``) over both transports.

    Turns without token figures (a miss, a refused or faulted turn) are left out.
    """
    projected = []
    for turn in turns:
        if turn.input_tokens is None or turn.output_tokens is None:
            continue
        if played == "ws":
            held = turn.held
            ws_input = turn.sent_tokens if held else turn.input_tokens
        else:
            held = turn.resent_items > 0 or turn.chained
            ws_input = turn.new_tokens if held else turn.input_tokens

        def timed(is_held: bool, sent: int, turn: TurnMetrics = turn) -> TurnTiming:
            return turn_timing(
                model,
                input_tokens=turn.input_tokens or 0,
                sent_tokens=sent,
                output_tokens=turn.output_tokens or 0,
                reasoning_tokens=turn.reasoning_tokens,
                held=is_held,
            )

        http, ws = timed(False, turn.input_tokens), timed(held, ws_input)
        projected.append(
            TurnProjection(
                index=turn.index,
                held=held,
                input_tokens=turn.input_tokens,
                ws_input_tokens=ws_input,
                output_tokens=turn.output_tokens,
                http_ms=_ms(http.total_s),
                ws_ms=_ms(ws.total_s),
                http_service_ms=_ms(http.service_s),
                ws_service_ms=_ms(ws.service_s),
            )
        )
    return Projection(model, played, tuple(projected))


# -- the calibration ----------------------------------------------------------------------------

#: The reference loop the presets are calibrated on, in tokens: an agent's opening context
#: (instructions, tools, the task), then per tool call the call the model writes, the call item
#: it adds to the context and the tool's output the client sends back, and a final answer.
REFERENCE_OPENING_TOKENS = 1700
REFERENCE_CALL_TOKENS = 15
REFERENCE_CALL_ITEM_TOKENS = 25
REFERENCE_TOOL_OUTPUT_TOKENS = 300
REFERENCE_FINAL_TOKENS = 150


def reference_loop(model: LatencyModel, tool_calls: int) -> tuple[float, float]:
    """Modeled (HTTP, WebSocket) seconds of the reference loop with ``tool_calls`` calls.

    Over HTTP every turn resends the context; over WebSocket each turn after the first
    chains from the previous response on the same connection and sends the tool output.
    """
    http = ws = 0.0
    context = REFERENCE_OPENING_TOKENS
    for turn in range(tool_calls + 1):
        output = REFERENCE_FINAL_TOKENS if turn == tool_calls else REFERENCE_CALL_TOKENS
        http += turn_timing(
            model, input_tokens=context, sent_tokens=context, output_tokens=output, held=False
        ).total_s
        ws += turn_timing(
            model,
            input_tokens=context,
            sent_tokens=REFERENCE_TOOL_OUTPUT_TOKENS if turn else context,
            output_tokens=output,
            held=turn > 0,
        ).total_s
        context += REFERENCE_CALL_ITEM_TOKENS + REFERENCE_TOOL_OUTPUT_TOKENS
    return http, ws
