"""Helpers around the client libraries tests drive (imported lazily: all are optional)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

from .core.synthesize import synthesize_events

_warmed = False
_tls_context: Any = None


def sdk_http_client(*, asynchronous: bool) -> Any:
    """The SDK's default HTTP client, sharing one verifying TLS context across clients.

    A new ``OpenAI()`` loads the system's CA certificates into a fresh TLS context (15-30 ms
    here), a cost every test would pay though the loopback server speaks plain HTTP.
    Verification is kept as the SDK sets it up: the context is only built once.
    """
    global _tls_context
    import openai

    try:  # openai-python 3.x runs on httpx2, 2.x on httpx
        import httpx2 as http_library

        client_class: Any = openai.DefaultAsyncHttpx2Client if asynchronous else openai.DefaultHttpx2Client
    except (ImportError, AttributeError):
        import httpx as http_library  # type: ignore[no-redef]

        client_class = openai.DefaultAsyncHttpxClient if asynchronous else openai.DefaultHttpxClient
    if _tls_context is None:
        _tls_context = http_library.create_ssl_context()
    return client_class(verify=_tls_context)


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
    _warm_stream_helper(events)
    _warm_request_transform()
    _warmed = True
    return True


def _warm_request_transform() -> None:
    # The SDK also builds its request-parameter transforms lazily, per type (~6 ms).
    try:
        from openai._utils import maybe_transform
        from openai.types.responses import response_create_params
    except ImportError:
        return
    response = _sample_response()
    params = {
        "model": "warmup",
        "input": [{"role": "user", "content": "warm"}, *response["output"]],
        "tools": [{"type": "function", "name": "warmup", "parameters": {"type": "object"}, "strict": True}],
        "stream": True,
    }
    maybe_transform(params, response_create_params.ResponseCreateParamsStreaming)


def _warm_stream_helper(events: list[dict[str, Any]]) -> None:
    # ``client.responses.stream()`` accumulates events into parsed snapshots, another
    # lazily built path (~60 ms on its first response).
    try:
        from openai import omit
        from openai._models import construct_type
        from openai.lib.streaming.responses._responses import ResponseStreamState
        from openai.types.responses import ResponseStreamEvent
    except ImportError:  # an SDK without the helper: nothing to warm
        return
    state: Any = ResponseStreamState(input_tools=omit, text_format=omit)
    for event in events:
        state.handle_event(construct_type(value=event, type_=ResponseStreamEvent))


def exclude_loopback_from_vcr(vcr: Any, port: Callable[[], int | None]) -> None:
    """Keep a pytest-recording/vcrpy cassette from capturing the loopback server's traffic.

    The filter is added to every cassette this VCR builds, after the user's own
    ``before_record_request`` settings, so a ``vcr_config`` cannot drop it. A request
    vcrpy filters out is neither recorded nor looked up: it goes to the loopback server.
    """
    build = vcr._build_before_record_request

    def build_with_exclusion(options: Any) -> Callable[[Any], Any]:
        user_filter = build(options)

        def before_record_request(request: Any) -> Any:
            ours = port()
            if ours is not None and request.host in ("127.0.0.1", "localhost") and request.port == ours:
                return None
            return user_filter(request)

        return before_record_request

    vcr._build_before_record_request = build_with_exclusion
