"""Helpers around the client libraries tests drive (imported lazily: all are optional)."""

from __future__ import annotations

import importlib.util
from typing import Any

from .core.synthesize import synthesize_events

_warmed = False


def _sample_response() -> dict[str, Any]:
    """A response with the item kinds agent loops meet most: a function call and a message."""
    return {
        "id": "resp_rws_warmup",
        "object": "response",
        "created_at": 0,
        "status": "completed",
        "model": "warmup",
        "output": [
            {
                "type": "function_call",
                "id": "fc_rws_warmup",
                "call_id": "call_rws_warmup",
                "name": "warmup",
                "arguments": '{"a": 1}',
                "status": "completed",
            },
            {
                "type": "message",
                "id": "msg_rws_warmup",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "warm", "annotations": [], "logprobs": []}],
            },
        ],
        "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2},
    }


def warm_openai_parsers() -> bool:
    """Build the openai SDK's lazy event validators now, not inside the first test's turn.

    The SDK constructs its pydantic validators the first time it parses each event shape
    (hundreds of milliseconds), which would otherwise land in the first test's first turn
    and its overhead figures. Returns False when openai is not installed.
    """
    global _warmed
    if _warmed:
        return True
    if importlib.util.find_spec("openai") is None:
        return False
    from openai._models import construct_type, construct_type_unchecked
    from openai.types.responses import ResponseStreamEvent

    events = synthesize_events(_sample_response())
    for event in events:
        construct_type(value=event, type_=ResponseStreamEvent)
    try:
        from openai.types.responses.responses_server_event import ResponsesServerEvent
    except ImportError:  # SDKs without WebSocket mode
        pass
    else:
        for event in events:
            construct_type_unchecked(value=event, type_=ResponsesServerEvent)  # type: ignore[arg-type]
    _warmed = True
    return True
