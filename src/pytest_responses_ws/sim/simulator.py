"""The simulated model: turns a create request into the events the Responses API would stream.

No sockets and no clock: ids, timestamps and obfuscation strings come from a counter and the
seed, so two simulators with the same seed and the same requests produce the same bytes. The
transport adapters (``SimulatorApp``) own one ``ConnectionState`` per WebSocket connection and a
fresh one per HTTP request, which is what makes ``store: false`` continuations connection-local.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.latency import estimate_tokens, output_chars, request_chars
from ..core.replay import error_event
from ..core.synthesize import synthesize_events
from ..errors import RwsError
from .script import Error, FunctionCall, Output, Script, ScriptRequest, Step, as_step

__all__ = ["Answer", "ConnectionState", "ScriptError", "Simulator", "error_event"]

#: ``created_at`` of the first response (2026-01-01T00:00:00Z); each later one adds a second.
BASE_CREATED_AT = 1_767_225_600

#: The service pads ``delta + obfuscation`` to 16 characters; with the default 8-character
#: chunks an 8-character obfuscation gives the same total for full chunks.
_OBFUSCATION_TOTAL = 16
_OBFUSCATION_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

_STREAM_ID = re.compile(r"[A-Za-z0-9_.-]{1,256}")


@dataclass
class ConnectionState:
    """What one client connection can see besides the global store.

    A WebSocket connection keeps every response it created in ``cache``, so it can continue
    from them with ``store: false``. HTTP requests each get a fresh, empty state.
    """

    transport: str = "ws"
    cache: dict[str, _Stored] = field(default_factory=dict)


@dataclass(frozen=True)
class _Stored:
    """A created response and the effective input it answered, for chaining."""

    response: dict[str, Any]
    effective_input: tuple[Mapping[str, Any], ...]

    @property
    def context(self) -> list[Mapping[str, Any]]:
        """The effective input of a request that continues from this response."""
        return [*self.effective_input, *self.response.get("output", [])]


class ScriptError(RwsError):
    """A callable step of a script raised, or returned something that is not a step."""


@dataclass(frozen=True)
class Answer:
    """What the simulator answers one request with: the events, and the HTTP headers of an
    error answer (``retry-after``)."""

    events: list[dict[str, Any]]
    headers: tuple[tuple[str, str], ...] = ()


class _RequestError(Exception):
    """A request the real API would refuse; carries the wrapped error body."""

    def __init__(
        self,
        status: int,
        error_type: str,
        code: str | None,
        message: str,
        param: str | None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.code = code
        self.message = message
        self.param = param
        self.headers = headers

    @classmethod
    def scripted(cls, error: Error) -> _RequestError:
        """The service's answer a script's :class:`Error` stands for."""
        answer = error.service_error()
        headers = () if error.retry_after is None else (("retry-after", f"{error.retry_after:g}"),)
        return cls(answer.status, answer.error_type, answer.code, answer.message, answer.param, headers)

    def event(self, stream_id: str | None) -> dict[str, Any]:
        return error_event(
            self.code,
            self.message,
            status=self.status,
            param=self.param,
            error_type=self.error_type,
            lane=stream_id,
        )


def _input_items(value: object) -> list[Mapping[str, Any]]:
    """A request's ``input`` as a list of items (a bare string is one user message)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, list) and all(isinstance(item, Mapping) for item in value):
        return list(value)
    raise _RequestError(
        400,
        "invalid_request_error",
        "invalid_type",
        "Invalid type for 'input': expected a string or an array of input items.",
        "input",
    )


def _normalize_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """A tool as the response echoes it: function tools get the defaulted fields filled in."""
    if tool.get("type") != "function":
        return copy.deepcopy(dict(tool))
    return {
        "type": "function",
        "description": tool.get("description"),
        "name": tool.get("name"),
        "parameters": copy.deepcopy(tool.get("parameters")),
        "strict": tool.get("strict", True),
    }


def _merged(default: Mapping[str, Any], given: object) -> dict[str, Any]:
    merged = dict(default)
    if isinstance(given, Mapping):
        merged.update(copy.deepcopy(dict(given)))
    return merged


class Simulator:
    """A Responses API model that follows a ``Script``.

    ``respond(request, connection=...)`` returns the full event list for one create request
    (or a single ``error`` event). ``requests`` lists every request received, as sent.
    """

    def __init__(
        self,
        script: Script | None = None,
        *,
        model_default: str = "gpt-5.2",
        seed: int = 0,
        chunk_chars: int = 8,
        on_script_error: Callable[[ScriptError], None] | None = None,
    ) -> None:
        self.script = script if script is not None else Script.default()
        #: Told of every error of a callable step (the plugin fails the test with it).
        self.on_script_error = on_script_error
        #: Positions of the script's errors already given (each is given once).
        self.given_errors: set[int] = set()
        self.model_default = model_default
        self.seed = seed
        self.chunk_chars = chunk_chars
        #: Every create request received, in arrival order, exactly as it came in.
        self.requests: list[dict[str, Any]] = []
        self._store: dict[str, _Stored] = {}
        self._ids: Iterator[int] = itertools.count(1)
        self._responses = 0
        # The app calls in from one event loop; the lock covers tests reading from another thread.
        self._lock = threading.Lock()

    # -- ids and deterministic "randomness" -----------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_sim{self.seed:08x}{next(self._ids):016x}"

    def _obfuscation_for(self, response_id: str) -> Callable[[int], str]:
        length = max(1, _OBFUSCATION_TOTAL - self.chunk_chars)

        def obfuscation(index: int) -> str:
            digest = hashlib.blake2b(f"{self.seed}:{response_id}:{index}".encode(), digest_size=32).digest()
            return "".join(
                _OBFUSCATION_ALPHABET[byte % len(_OBFUSCATION_ALPHABET)] for byte in digest[:length]
            )

        return obfuscation

    # -- the protocol -----------------------------------------------------------------------------

    def respond(self, request: Mapping[str, Any], *, connection: ConnectionState) -> list[dict[str, Any]]:
        """Answer one create request (an HTTP body or a ``response.create`` frame).

        Returns the events to stream, or a one-element list holding the wrapped ``error`` event
        (``status``, ``error.code``...) when the real API would refuse the request.
        """
        return self.answer(request, connection=connection).events

    def answer(self, request: Mapping[str, Any], *, connection: ConnectionState) -> Answer:
        """:meth:`respond`, with the headers an HTTP error answer carries."""
        with self._lock:
            self.requests.append(copy.deepcopy(dict(request)))
            stream_id = request.get("stream_id")
            try:
                response = self._create(request, connection)
            except _RequestError as exc:
                valid_lane = isinstance(stream_id, str) and _STREAM_ID.fullmatch(stream_id) is not None
                return Answer([exc.event(stream_id if valid_lane else None)], exc.headers)
            options = request.get("stream_options")
            include_obfuscation = not (
                isinstance(options, Mapping) and options.get("include_obfuscation") is False
            )
            return Answer(
                synthesize_events(
                    response,
                    chunk_chars=self.chunk_chars,
                    obfuscation=self._obfuscation_for(response["id"]) if include_obfuscation else None,
                    stream_id=stream_id if isinstance(stream_id, str) else None,
                )
            )

    def steered(
        self,
        request: Mapping[str, Any],
        response_id: str,
        steer_inputs: Sequence[object],
        *,
        connection: ConnectionState,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """End response ``response_id`` (answering ``request``) because the client steered it.

        Returns the steered ending (the ``response`` of a ``response.incomplete`` with
        ``incomplete_details.reason = "steered"``, no output) and the events of its
        successor: a new response with the same settings whose input is the steered
        response's whole context followed by the steers' input. The successor is stored
        (and cached on the connection) like any response.
        """
        with self._lock:
            stored = connection.cache.get(response_id)
        effective = list(stored.effective_input) if stored is not None else []
        ending: dict[str, Any] = copy.deepcopy(stored.response) if stored is not None else {"id": response_id}
        ending.update(
            status="incomplete",
            completed_at=None,
            output=[],
            incomplete_details={"reason": "steered"},
        )
        steered_input = [item for value in steer_inputs for item in _input_items(value)]
        successor = {k: v for k, v in request.items() if k != "previous_response_id"}
        successor["input"] = [*effective, *steered_input]
        return ending, self.respond(successor, connection=connection)

    def _resolve_parent(self, previous_id: object, connection: ConnectionState) -> _Stored | None:
        if previous_id is None:
            return None
        if not isinstance(previous_id, str):
            raise _RequestError(
                400,
                "invalid_request_error",
                "invalid_type",
                "Invalid type for 'previous_response_id': expected a string.",
                "previous_response_id",
            )
        parent = self._store.get(previous_id) or connection.cache.get(previous_id)
        if parent is None:
            raise _RequestError(
                400,
                "invalid_request_error",
                "previous_response_not_found",
                f"Previous response with id '{previous_id}' not found.",
                "previous_response_id",
            )
        return parent

    def _create(self, request: Mapping[str, Any], connection: ConnectionState) -> dict[str, Any]:
        stream_id = request.get("stream_id")
        if stream_id is not None and not (isinstance(stream_id, str) and _STREAM_ID.fullmatch(stream_id)):
            raise _RequestError(
                400,
                "invalid_request_error",
                "invalid_stream_id",
                "Invalid 'stream_id': expected 1 to 256 characters from [A-Za-z0-9_.-].",
                "stream_id",
            )
        own_input = _input_items(request.get("input"))
        parent = self._resolve_parent(request.get("previous_response_id"), connection)
        effective_input = tuple((parent.context if parent is not None else []) + own_input)

        # A warm-up (``generate: false``) prepares state and returns an id, with no model output.
        generate = request.get("generate") is not False
        outputs = self._step(request, effective_input, connection).outputs if generate else ()

        response = self._response_object(request, [self._output_item(output) for output in outputs])
        response["usage"] = self._usage(request, effective_input, response["output"], generate)

        stored = _Stored(copy.deepcopy(response), effective_input)
        connection.cache[response["id"]] = stored
        if request.get("store", True) is not False:
            self._store[response["id"]] = stored
        return response

    def _step(
        self,
        request: Mapping[str, Any],
        effective_input: Sequence[Mapping[str, Any]],
        connection: ConnectionState,
    ) -> Step:
        """The script's step for this request: its error is raised, its callable called."""
        turn = self.script.turn_for(effective_input)
        position = self.script.pick(turn, self.given_errors)
        step = self.script.steps[position]
        if step.error is not None:
            self.given_errors.add(position)
            raise _RequestError.scripted(step.error)
        if step.reply is None:
            return step
        asked = ScriptRequest(
            body=copy.deepcopy(dict(request)),
            input=tuple(effective_input),
            tool_outputs=tuple(i for i in effective_input if i.get("type") == "function_call_output"),
            transport=connection.transport,
            turn=turn,
        )
        name = getattr(step.reply, "__qualname__", repr(step.reply))
        try:
            answered = as_step(step.reply(asked))
            if answered.reply is not None:
                raise TypeError("it returned a callable; return Text, FunctionCall, a list of them, or Error")
        except Exception as exc:
            problem = ScriptError(
                f"pytest-responses-ws: script step {position} ({name}) raised {type(exc).__name__}: {exc}"
            )
            if self.on_script_error is not None:
                self.on_script_error(problem)
            raise _RequestError(500, "server_error", "rws_script_error", str(problem), None) from exc
        if answered.error is not None:
            raise _RequestError.scripted(answered.error)
        return answered

    def _output_item(self, output: Output) -> dict[str, Any]:
        if isinstance(output, FunctionCall):
            return {
                "id": self._new_id("fc"),
                "type": "function_call",
                "status": "completed",
                "arguments": output.arguments_json,
                "call_id": self._new_id("call"),
                "name": output.name,
            }
        return {
            "id": self._new_id("msg"),
            "type": "message",
            "status": "completed",
            "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": output.text}],
            "role": "assistant",
        }

    def _response_object(self, request: Mapping[str, Any], output: list[dict[str, Any]]) -> dict[str, Any]:
        """The final response, with the request's settings echoed the way the service does."""
        created_at = BASE_CREATED_AT + self._responses
        self._responses += 1
        tools = request.get("tools") or []
        service_tier = request.get("service_tier")
        metadata = request.get("metadata")
        return {
            "id": self._new_id("resp"),
            "object": "response",
            "created_at": created_at,
            "status": "completed",
            "background": False,
            "completed_at": created_at + 1,
            "error": None,
            "frequency_penalty": 0.0,
            "incomplete_details": None,
            "instructions": copy.deepcopy(request.get("instructions")),
            "max_output_tokens": request.get("max_output_tokens"),
            "max_tool_calls": request.get("max_tool_calls"),
            "model": request.get("model") or self.model_default,
            "output": output,
            "parallel_tool_calls": request.get("parallel_tool_calls", True),
            "presence_penalty": 0.0,
            "previous_response_id": request.get("previous_response_id"),
            "prompt_cache_key": request.get("prompt_cache_key"),
            "prompt_cache_retention": request.get("prompt_cache_retention"),
            "reasoning": _merged({"effort": None, "summary": None}, request.get("reasoning")),
            "safety_identifier": request.get("safety_identifier"),
            # The service reports the tier it used: "auto" resolves to "default".
            "service_tier": service_tier if service_tier not in (None, "auto") else "default",
            "store": request.get("store", True) is not False,
            "temperature": request.get("temperature", 1.0),
            "text": _merged({"format": {"type": "text"}, "verbosity": "medium"}, request.get("text")),
            "tool_choice": copy.deepcopy(request.get("tool_choice", "auto")),
            "tools": [_normalize_tool(tool) for tool in tools if isinstance(tool, Mapping)],
            "top_logprobs": request.get("top_logprobs", 0),
            "top_p": request.get("top_p", 1.0),
            "truncation": request.get("truncation", "disabled"),
            "usage": None,
            "user": request.get("user"),
            "metadata": copy.deepcopy(dict(metadata)) if isinstance(metadata, Mapping) else {},
        }

    def _usage(
        self,
        request: Mapping[str, Any],
        effective_input: Sequence[Mapping[str, Any]],
        output: Sequence[Mapping[str, Any]],
        generate: bool,
    ) -> dict[str, Any]:
        # The effective input's size, counted as the latency model estimates a request's.
        prompt_chars = request_chars({**request, "input": list(effective_input)})
        input_tokens = max(1, estimate_tokens(prompt_chars))
        output_tokens = max(1, estimate_tokens(output_chars(output))) if generate else 0
        return {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        }
