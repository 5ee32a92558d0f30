"""Turn a final Responses API object into the event stream the service would have sent, and back.

Pure code: no I/O, no clock and no randomness. The optional ``obfuscation`` callback is the only
source of variable text, so a caller that wants the random-looking padding the real service adds
passes a seeded function.

The event shapes follow live recordings of ``api.openai.com`` (early 2026): ``type`` first, the
other fields in alphabetical order (the order the service writes them), ``sequence_number`` counting
from 0 within one response, and ``item_id``/``output_index``/``content_index`` on every item event.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

__all__ = [
    "TERMINAL_EVENT_TYPES",
    "ends_turn",
    "is_steered_ending",
    "response_from_events",
    "streamable_problem",
    "synthesize_events",
    "warm_up_response",
]

#: Event types that end a turn. ``response.done`` is the early-2026 WebSocket beta name and
#: ``error`` ends a turn that never produced a response.
TERMINAL_EVENT_TYPES: frozenset[str] = frozenset(
    {"response.completed", "response.failed", "response.incomplete", "response.done", "error"}
)

#: ``incomplete_details.reason`` of a response a ``response.steer`` ended: its successor follows.
STEERED_REASON = "steered"


def is_steered_ending(event: Mapping[str, Any]) -> bool:
    """Whether ``event`` ends a response because the client steered it (a successor follows)."""
    if event.get("type") != "response.incomplete":
        return False
    response = event.get("response")
    details = response.get("incomplete_details") if isinstance(response, Mapping) else None
    return isinstance(details, Mapping) and details.get("reason") == STEERED_REASON


def ends_turn(event: Mapping[str, Any]) -> bool:
    """Whether ``event`` ends its turn: a terminal event, but not a steered ending (the
    successor the steer created belongs to the same turn)."""
    return event.get("type") in TERMINAL_EVENT_TYPES and not is_steered_ending(event)


# Terminal events that carry the final response object (everything terminal except ``error``).
#: Terminal events that carry the final response object.
RESPONSE_TERMINALS = TERMINAL_EVENT_TYPES - {"error"}

_TERMINAL_BY_STATUS = {
    "completed": "response.completed",
    "incomplete": "response.incomplete",
    "failed": "response.failed",
}

# Hosted tools whose progress the service reports with three status events between the item's
# ``added`` and ``done`` (seen in the web and file search recordings).
_SEARCH_PROGRESS = ("in_progress", "searching", "completed")
_SEARCH_CALL_TYPES = frozenset({"web_search_call", "file_search_call"})


class _Stream:
    """Accumulates events, numbering them and attaching the shared fields."""

    def __init__(
        self, chunk_chars: int, obfuscation: Callable[[int], str] | None, stream_id: str | None
    ) -> None:
        self.events: list[dict[str, Any]] = []
        self._chunk_chars = chunk_chars
        self._obfuscation = obfuscation
        self._stream_id = stream_id
        self._deltas = 0

    def emit(self, event_type: str, **fields: Any) -> None:
        fields["sequence_number"] = len(self.events)
        if self._stream_id is not None:
            fields["stream_id"] = self._stream_id
        event: dict[str, Any] = {"type": event_type}
        for name in sorted(fields):
            event[name] = fields[name]
        self.events.append(event)

    def emit_deltas(self, event_type: str, text: str, **fields: Any) -> None:
        """One delta event per chunk of ``text``; an empty text streams no deltas."""
        for chunk in _chunks(text, self._chunk_chars):
            extra: dict[str, Any] = {}
            if self._obfuscation is not None:
                extra["obfuscation"] = self._obfuscation(self._deltas)
            self._deltas += 1
            self.emit(event_type, delta=chunk, **fields, **extra)


def _chunks(text: str, size: int) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]


def _start_snapshot(final: Mapping[str, Any]) -> dict[str, Any]:
    """The response as ``response.created`` shows it: running, no output, no usage yet."""
    start = copy.deepcopy(dict(final))
    start["status"] = "in_progress"
    start["output"] = []
    start["usage"] = None
    # These are only known at the end; keep the keys (and their order) the final object has.
    for late_field in ("completed_at", "error", "incomplete_details"):
        if late_field in start:
            start[late_field] = None
    # Until it finishes, the service shows the requested tier ("auto" by default), not the one used.
    if start.get("service_tier") == "default":
        start["service_tier"] = "auto"
    return start


def _item_in_progress(item: Mapping[str, Any]) -> dict[str, Any]:
    """The item as ``response.output_item.added`` shows it, before any content streamed."""
    added = copy.deepcopy(dict(item))
    if "status" in added:
        added["status"] = "in_progress"
    item_type = added.get("type")
    if item_type == "message":
        added["content"] = []
    elif item_type == "function_call":
        added["arguments"] = ""
    elif item_type == "custom_tool_call":
        added["input"] = ""
    elif item_type == "reasoning":
        added["summary"] = []
        if "content" in added:
            added["content"] = []
    elif item_type == "web_search_call" and isinstance(added.get("action"), Mapping):
        # The query is only known once the search ran.
        added["action"] = {"type": added["action"].get("type")}
    elif item_type == "file_search_call":
        if "queries" in added:
            added["queries"] = []
        if "results" in added:
            added["results"] = None
    return added


def _empty_part(part: Mapping[str, Any]) -> dict[str, Any]:
    """A content part with its text fields emptied, as ``content_part.added`` carries it."""
    empty = copy.deepcopy(dict(part))
    for list_field in ("annotations", "logprobs"):
        if list_field in empty:
            empty[list_field] = []
    for text_field in ("text", "refusal"):
        if text_field in empty:
            empty[text_field] = ""
    return empty


def _emit_message(stream: _Stream, item: Mapping[str, Any], where: dict[str, Any]) -> None:
    for content_index, part in enumerate(item.get("content") or []):
        at = {**where, "content_index": content_index}
        stream.emit("response.content_part.added", part=_empty_part(part), **at)
        part_type = part.get("type")
        if part_type == "output_text":
            text = str(part.get("text", ""))
            # Per-token logprobs cannot be split across chunks; deltas carry an empty list
            # (as the service does when logprobs are not requested) and ``done`` the full one.
            delta_extra: dict[str, Any] = {"logprobs": []} if "logprobs" in part else {}
            stream.emit_deltas("response.output_text.delta", text, **at, **delta_extra)
            for annotation_index, annotation in enumerate(part.get("annotations") or []):
                stream.emit(
                    "response.output_text.annotation.added",
                    annotation=copy.deepcopy(annotation),
                    annotation_index=annotation_index,
                    **at,
                )
            done_extra = {"logprobs": copy.deepcopy(part["logprobs"])} if "logprobs" in part else {}
            stream.emit("response.output_text.done", text=text, **at, **done_extra)
        elif part_type == "refusal":
            refusal = str(part.get("refusal", ""))
            stream.emit_deltas("response.refusal.delta", refusal, **at)
            stream.emit("response.refusal.done", refusal=refusal, **at)
        stream.emit("response.content_part.done", part=copy.deepcopy(part), **at)


def _emit_reasoning(stream: _Stream, item: Mapping[str, Any], where: dict[str, Any]) -> None:
    for summary_index, part in enumerate(item.get("summary") or []):
        at = {**where, "summary_index": summary_index}
        text = str(part.get("text", ""))
        stream.emit("response.reasoning_summary_part.added", part=_empty_part(part), **at)
        stream.emit_deltas("response.reasoning_summary_text.delta", text, **at)
        stream.emit("response.reasoning_summary_text.done", text=text, **at)
        stream.emit("response.reasoning_summary_part.done", part=copy.deepcopy(part), **at)
    for content_index, part in enumerate(item.get("content") or []):
        at = {**where, "content_index": content_index}
        text = str(part.get("text", ""))
        stream.emit("response.content_part.added", part=_empty_part(part), **at)
        stream.emit_deltas("response.reasoning_text.delta", text, **at)
        stream.emit("response.reasoning_text.done", text=text, **at)
        stream.emit("response.content_part.done", part=copy.deepcopy(part), **at)


def _emit_item(stream: _Stream, output_index: int, item: Mapping[str, Any]) -> None:
    stream.emit("response.output_item.added", item=_item_in_progress(item), output_index=output_index)
    where: dict[str, Any] = {"item_id": item.get("id"), "output_index": output_index}
    item_type = item.get("type")
    if item_type == "message":
        _emit_message(stream, item, where)
    elif item_type == "function_call":
        arguments = str(item.get("arguments", ""))
        stream.emit_deltas("response.function_call_arguments.delta", arguments, **where)
        stream.emit("response.function_call_arguments.done", arguments=arguments, **where)
    elif item_type == "custom_tool_call":
        tool_input = str(item.get("input", ""))
        stream.emit_deltas("response.custom_tool_call_input.delta", tool_input, **where)
        stream.emit("response.custom_tool_call_input.done", input=tool_input, **where)
    elif item_type == "reasoning":
        _emit_reasoning(stream, item, where)
    elif item_type in _SEARCH_CALL_TYPES:
        for phase in _SEARCH_PROGRESS:
            stream.emit(f"response.{item_type}.{phase}", **where)
    stream.emit("response.output_item.done", item=copy.deepcopy(dict(item)), output_index=output_index)


def streamable_problem(response: Mapping[str, Any]) -> tuple[str, str] | None:
    """What keeps :func:`synthesize_events` from streaming ``response``, or None.

    Returns the JSON pointer of the offending value, relative to ``response``, and the
    problem, so a cassette loader can name the spot in the file.
    """
    status = response.get("status")
    if not isinstance(status, str) or status not in _TERMINAL_BY_STATUS:
        expected = ", ".join(sorted(_TERMINAL_BY_STATUS))
        return "/status", f"cannot stream a response with status {status!r}: expected one of {expected}"
    output = response.get("output")
    if output is None:
        return None
    if not isinstance(output, list):
        return "/output", f"expected an array of output items, found {_kind(output)}"
    for index, item in enumerate(output):
        problem = _item_problem(item)
        if problem is not None:
            return f"/output/{index}{problem[0]}", problem[1]
    return None


def _item_problem(item: Any) -> tuple[str, str] | None:
    if not isinstance(item, Mapping):
        return "", f"expected an output item object, found {_kind(item)}"
    item_type = item.get("type")
    if not isinstance(item_type, str):
        return "/type", f"expected a string item type, found {_kind(item_type)}"
    lists: tuple[str, ...] = ()
    if item_type == "message":
        lists = ("content",)
    elif item_type == "reasoning":
        lists = ("summary", "content")
    for name in lists:
        parts = item.get(name)
        if not parts:
            continue
        if not isinstance(parts, list):
            return f"/{name}", f"expected an array of parts, found {_kind(parts)}"
        for index, part in enumerate(parts):
            if not isinstance(part, Mapping):
                return f"/{name}/{index}", f"expected a part object, found {_kind(part)}"
            annotations = part.get("annotations")
            if annotations and not isinstance(annotations, list):
                return (
                    f"/{name}/{index}/annotations",
                    f"expected an array, found {_kind(annotations)}",
                )
    return None


def _kind(value: Any) -> str:
    """A JSON value's kind as a message names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def synthesize_events(
    response: Mapping[str, Any],
    *,
    chunk_chars: int = 8,
    obfuscation: Callable[[int], str] | None = None,
    stream_id: str | None = None,
) -> list[dict[str, Any]]:
    """Return the event stream the service would have sent for the final ``response`` object.

    ``response`` is what a non-streamed ``POST /v1/responses`` returns. The result starts with
    ``response.created`` and ``response.in_progress`` (status ``in_progress``, no output, no
    usage), streams every output item (text, arguments and summaries split into deltas of at most
    ``chunk_chars`` characters) and ends with ``response.completed``, ``response.incomplete`` or
    ``response.failed`` according to ``response["status"]``.

    ``obfuscation(n)`` gives the ``obfuscation`` field of the n-th delta event (from 0); without
    it the field is left out, as with ``stream_options.include_obfuscation: false``. With
    ``stream_id`` every event carries it, as on a named WebSocket lane.

    Raises ``ValueError`` for a ``chunk_chars`` below 1 or a response it cannot stream (a status
    without a terminal event, output that is not an array of item objects: see
    :func:`streamable_problem`).
    """
    if chunk_chars < 1:
        raise ValueError(f"chunk_chars must be at least 1, got {chunk_chars}")
    problem = streamable_problem(response)
    if problem is not None:
        pointer, message = problem
        raise ValueError(f"{message} (at {pointer})" if pointer != "/status" else message)
    terminal = _TERMINAL_BY_STATUS[response["status"]]
    stream = _Stream(chunk_chars, obfuscation, stream_id)
    start = _start_snapshot(response)
    stream.emit("response.created", response=start)
    stream.emit("response.in_progress", response=copy.deepcopy(start))
    for output_index, item in enumerate(response.get("output") or []):
        _emit_item(stream, output_index, item)
    stream.emit(terminal, response=copy.deepcopy(dict(response)))
    return stream.events


def response_from_events(
    events: Sequence[Mapping[str, Any]], *, as_copy: bool = True
) -> dict[str, Any] | None:
    """Return the final response object of a recorded event stream.

    That is the ``response`` of the last terminal event (``response.completed``,
    ``response.incomplete``, ``response.failed`` or the legacy ``response.done``), as a copy
    (the recorded object itself with ``as_copy=False``, for readers that never change it).
    Returns ``None`` when the stream has none, or when an ``error`` event ends it.
    Events are read from the last one back, so only those after the terminal one are looked at.
    """
    for event in reversed(events):
        event_type = event.get("type")
        if event_type == "error":
            return None
        body = event.get("response")
        if event_type in RESPONSE_TERMINALS and isinstance(body, Mapping):
            return copy.deepcopy(dict(body)) if as_copy else dict(body)
    return None


#: Create fields the service echoes in a response object.
_ECHOED_FIELDS = (
    "model",
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "previous_response_id",
    "reasoning",
    "text",
    "store",
    "metadata",
    "temperature",
    "top_p",
    "truncation",
    "max_output_tokens",
    "prompt_cache_key",
    "service_tier",
)


def warm_up_response(request: Mapping[str, Any], response_id: str, created_at: int = 0) -> dict[str, Any]:
    """The response the service gives a ``generate: false`` warm-up: completed, with no output.

    The request's settings are echoed as in any response object; no tokens were generated.
    """
    response: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "output": [],
    }
    response.update({key: copy.deepcopy(request[key]) for key in _ECHOED_FIELDS if key in request})
    response["usage"] = {
        "input_tokens": 0,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 0,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 0,
    }
    return response
