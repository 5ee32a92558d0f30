"""What the real openai SDK (sync and async) sees of a few turns, for the recorded-errors tests.

Copied into pytester runs as ``error_clients.py``. Each function sends one request per
input (over one WebSocket connection, or one HTTP request each) and saves what the
client got, through ``agent_loops.save_events``: the events as plain dicts, the response
of a plain request, or what it raised (class, status, body and the headers clients act
on). Names are ``"<flavour> <ws|http-stream|http-plain> <input>"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import agent_loops
import openai

MODEL = "gpt-5.2"
#: Events after which a WebSocket client stops reading a turn.
ENDS = frozenset({"error", "response.completed", "response.failed", "response.incomplete"})
#: Response headers the tests look at on an error.
WATCHED_HEADERS = ("retry-after", "retry-after-ms", "x-should-retry", "x-ratelimit-remaining-requests")


def raised(exc: openai.APIError) -> list[dict[str, Any]]:
    """What a client learns from an SDK error."""
    response = getattr(exc, "response", None)
    headers = (
        {} if response is None else {k: response.headers[k] for k in WATCHED_HEADERS if k in response.headers}
    )
    return [
        {
            "raised": type(exc).__name__,
            "status": getattr(exc, "status_code", None),
            "body": exc.body,
            "headers": headers,
        }
    ]


def ws_turns(client: Any, inputs: Sequence[str], flavour: str) -> None:
    with client.responses.connect() as conn:
        for text in inputs:
            conn.response.create(model=MODEL, input=text)
            events = []
            for event in conn:
                events.append(event.to_dict())
                if event.type in ENDS:
                    break
            agent_loops.save_events(f"{flavour} ws {text}", events)


async def async_ws_turns(client: Any, inputs: Sequence[str], flavour: str) -> None:
    async with client.responses.connect() as conn:
        for text in inputs:
            await conn.response.create(model=MODEL, input=text)
            events = []
            async for event in conn:
                events.append(event.to_dict())
                if event.type in ENDS:
                    break
            agent_loops.save_events(f"{flavour} ws {text}", events)


def http_turns(client: Any, inputs: Sequence[str], flavour: str, *, plain: bool) -> None:
    for text in inputs:
        events: list[dict[str, Any]] = []
        try:
            for event in client.responses.create(model=MODEL, input=text, stream=True):
                events.append(event.to_dict())
        except openai.APIError as exc:
            events += raised(exc)
        agent_loops.save_events(f"{flavour} http-stream {text}", events)
        if not plain:
            continue
        try:
            answer = [client.responses.create(model=MODEL, input=text).to_dict()]
        except openai.APIError as exc:
            answer = raised(exc)
        agent_loops.save_events(f"{flavour} http-plain {text}", answer)


async def async_http_turns(client: Any, inputs: Sequence[str], flavour: str, *, plain: bool) -> None:
    for text in inputs:
        events: list[dict[str, Any]] = []
        try:
            async for event in await client.responses.create(model=MODEL, input=text, stream=True):
                events.append(event.to_dict())
        except openai.APIError as exc:
            events += raised(exc)
        agent_loops.save_events(f"{flavour} http-stream {text}", events)
        if not plain:
            continue
        try:
            answer = [(await client.responses.create(model=MODEL, input=text)).to_dict()]
        except openai.APIError as exc:
            answer = raised(exc)
        agent_loops.save_events(f"{flavour} http-plain {text}", answer)


def observe(rws: Any, inputs: Sequence[str], *, plain: bool = True) -> None:
    """The sync client's view of ``inputs`` over the test's transport (plain requests too, if asked)."""
    client = rws.openai_client()
    if rws.transport == "ws":
        ws_turns(client, inputs, "sync")
    else:
        http_turns(client, inputs, "sync", plain=plain)


async def observe_async(rws: Any, inputs: Sequence[str], *, plain: bool = True) -> None:
    """The async client's view of ``inputs`` over the test's transport."""
    client = rws.async_openai_client()
    if rws.transport == "ws":
        await async_ws_turns(client, inputs, "async")
    else:
        await async_http_turns(client, inputs, "async", plain=plain)
