"""The service's ``error`` events in each transport's shape, and the mapping between them (sans I/O).

A recorded turn replays over the transport it was recorded on exactly as recorded.
Over the other transport its ``error`` events take the shape the service uses there:

* WebSocket mode wraps the error: ``{"type": "error", "status": 429, "error": {"type",
  "code", "message", "param"}}``.
* An HTTP stream sends it mid-stream either in the documented flat shape
  ``{"type": "error", "code", "message", "param", "sequence_number"}`` or in the nested
  ``{"type": "error", "sequence_number": 2, "error": {...}}`` production also sent; the
  openai SDK yields the first as an event and raises ``APIError`` on the second.

An HTTP event replayed over WebSocket becomes the wrapped shape (status from the error
type, 500 when unknown: the service had accepted the request). A WebSocket event replayed
over an HTTP stream becomes the documented flat shape, which the SDK yields as an
``error`` event as its WebSocket side does; the status and the error type have no place
in it. Every other field of the event is kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "MID_STREAM_ERROR_TYPE",
    "MID_STREAM_STATUS",
    "as_sse_events",
    "as_websocket_events",
    "error_answer",
    "error_object",
    "error_status",
    "flat_error",
    "is_error_event",
    "next_sequence_number",
    "wrapped_error",
]

#: Fields of a flat event that belong to the error object.
_FLAT_ERROR_FIELDS = ("code", "message", "param")
#: HTTP status of the error types the service names in its error bodies (a 429 names the
#: exhausted limit, ``requests`` or ``tokens``, or ``insufficient_quota``).
_STATUS_BY_ERROR_TYPE = {
    "invalid_request_error": 400,
    "requests": 429,
    "tokens": 429,
    "insufficient_quota": 429,
    "server_error": 500,
}
#: An error event without a type or status: the service failed after accepting the request.
MID_STREAM_STATUS = 500
MID_STREAM_ERROR_TYPE = "server_error"


def is_error_event(event: Mapping[str, Any]) -> bool:
    """Whether ``event`` is an ``error`` event (in any shape)."""
    return event.get("type") == "error"


def error_object(event: Mapping[str, Any]) -> dict[str, Any]:
    """The error object of an ``error`` event in any shape (wrapped, nested or flat)."""
    nested = event.get("error")
    if isinstance(nested, Mapping):
        return dict(nested)
    error: dict[str, Any] = {"type": MID_STREAM_ERROR_TYPE}
    error.update((name, event.get(name)) for name in _FLAT_ERROR_FIELDS)
    return error


def error_status(event: Mapping[str, Any]) -> int:
    """The HTTP status an ``error`` event stands for: its own, else its error type's, else 500."""
    status = event.get("status")
    if isinstance(status, int) and not isinstance(status, bool):
        return status
    error_type = error_object(event).get("type")
    if isinstance(error_type, str):
        return _STATUS_BY_ERROR_TYPE.get(error_type, MID_STREAM_STATUS)
    return MID_STREAM_STATUS


def wrapped_error(event: Mapping[str, Any]) -> dict[str, Any]:
    """``event`` in WebSocket mode's wrapped shape; its other fields (``sequence_number``...) kept."""
    wrapped: dict[str, Any] = {"type": "error", "status": error_status(event), "error": error_object(event)}
    flat = not isinstance(event.get("error"), Mapping)
    for name, value in event.items():
        if name in wrapped or (flat and name in _FLAT_ERROR_FIELDS):
            continue
        wrapped[name] = value
    return wrapped


def flat_error(event: Mapping[str, Any], sequence_number: int) -> dict[str, Any]:
    """``event`` in the HTTP stream's documented flat shape.

    ``sequence_number`` is used when the event has none of its own (WebSocket error
    events carry none).
    """
    error = error_object(event)
    own = event.get("sequence_number")
    flat: dict[str, Any] = {"type": "error"}
    flat.update((name, error.get(name)) for name in _FLAT_ERROR_FIELDS)
    flat["sequence_number"] = own if isinstance(own, int) else sequence_number
    for name, value in event.items():
        if name not in flat and name not in ("status", "error"):
            flat[name] = value
    return flat


def next_sequence_number(events: Sequence[Mapping[str, Any]], index: int) -> int:
    """The ``sequence_number`` an event at ``index`` takes: one past the last numbered event before it."""
    for earlier in reversed(events[:index]):
        number = earlier.get("sequence_number")
        if isinstance(number, int) and not isinstance(number, bool):
            return number + 1
    return index


def as_websocket_events(events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Events recorded over HTTP as WebSocket mode sends them: errors wrapped, the rest as they are."""
    return [wrapped_error(event) if is_error_event(event) else dict(event) for event in events]


def as_sse_events(events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Events recorded over WebSocket as an HTTP stream sends them: errors flat, the rest as they are."""
    return [
        flat_error(event, next_sequence_number(events, index)) if is_error_event(event) else dict(event)
        for index, event in enumerate(events)
    ]


def error_answer(event: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
    """The status and JSON error body of ``event`` as an HTTP answer without a stream."""
    return error_status(event), {"error": error_object(event)}


def error_event(
    code: str | None,
    message: str,
    *,
    status: int = 400,
    lane: str | None = None,
    error_type: str = "invalid_request_error",
    param: str | None = None,
) -> dict[str, Any]:
    """A WebSocket-mode ``error`` event in the service's wrapped shape."""
    event: dict[str, Any] = {
        "type": "error",
        "status": status,
        "error": {"type": error_type, "code": code, "message": message, "param": param},
    }
    if lane is not None:
        event["stream_id"] = lane
    return event


def error_body(
    code: str | None, message: str, error_type: str = "invalid_request_error", param: str | None = None
) -> dict[str, Any]:
    """A JSON error body in the Responses API's shape."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}
