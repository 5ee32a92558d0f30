"""Function-calling agent loops driven by the real openai SDK, for end-to-end tests.

Copied into pytester runs as ``agent_loops.py``. Each loop runs until the model
answers with text, and returns every event it saw (as plain dicts) so tests can
check that replay sends exactly what was recorded. WebSocket loops chain
``previous_response_id`` with ``store: false`` and send only the new items; HTTP
loops resend the whole history, as most HTTP agents do.
"""

from __future__ import annotations

import json
import os
from typing import Any

MODEL = "gpt-5.2"
TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]
PROMPT = [{"role": "user", "content": "What's the weather in the cities you know?"}]
MAX_TURNS = 12


def tool_output(call: Any) -> dict[str, Any]:
    arguments = json.loads(call.arguments or "{}")
    result = {"city": arguments.get("city"), "temp_c": 20 + len(str(arguments.get("city")))}
    return {"type": "function_call_output", "call_id": call.call_id, "output": json.dumps(result)}


def _dump(events: list[Any]) -> list[dict[str, Any]]:
    return [event.to_dict() for event in events]


def save_events(name: str, events: list[dict[str, Any]]) -> None:
    """Append a loop's events to the file named by RWS_EVENTS_OUT, if set."""
    path = os.environ.get("RWS_EVENTS_OUT")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"name": name, "events": events}) + "\n")


def _calls(response: Any) -> list[Any]:
    return [item for item in response.output if item.type == "function_call"]


def ws_loop(client: Any) -> tuple[str, list[dict[str, Any]]]:
    events: list[Any] = []
    previous, items = None, list(PROMPT)
    with client.responses.connect() as connection:
        for _ in range(MAX_TURNS):
            connection.response.create(
                model=MODEL, input=items, tools=TOOLS, store=False, previous_response_id=previous
            )
            for event in connection:
                events.append(event)
                if event.type == "error":
                    raise RuntimeError(f"error event: {event.to_dict()}")
                if event.type == "response.completed":
                    break
            response = event.response
            calls = _calls(response)
            if not calls:
                return response.output_text, _dump(events)
            previous, items = response.id, [tool_output(call) for call in calls]
    raise AssertionError("the loop did not finish")


async def async_ws_loop(client: Any) -> tuple[str, list[dict[str, Any]]]:
    events: list[Any] = []
    previous, items = None, list(PROMPT)
    async with client.responses.connect() as connection:
        for _ in range(MAX_TURNS):
            await connection.response.create(
                model=MODEL, input=items, tools=TOOLS, store=False, previous_response_id=previous
            )
            async for event in connection:
                events.append(event)
                if event.type == "error":
                    raise RuntimeError(f"error event: {event.to_dict()}")
                if event.type == "response.completed":
                    break
            response = event.response
            calls = _calls(response)
            if not calls:
                return response.output_text, _dump(events)
            previous, items = response.id, [tool_output(call) for call in calls]
    raise AssertionError("the loop did not finish")


def http_loop(client: Any) -> tuple[str, list[dict[str, Any]]]:
    events: list[Any] = []
    history: list[Any] = list(PROMPT)
    for _ in range(MAX_TURNS):
        response = None
        for event in client.responses.create(
            model=MODEL, input=history, tools=TOOLS, store=False, stream=True
        ):
            events.append(event)
            if event.type == "response.completed":
                response = event.response
        assert response is not None, "stream ended without response.completed"
        calls = _calls(response)
        if not calls:
            return response.output_text, _dump(events)
        history += [item.to_dict() for item in response.output]
        history += [tool_output(call) for call in calls]
    raise AssertionError("the loop did not finish")


async def async_http_loop(client: Any) -> tuple[str, list[dict[str, Any]]]:
    events: list[Any] = []
    history: list[Any] = list(PROMPT)
    for _ in range(MAX_TURNS):
        response = None
        stream = await client.responses.create(
            model=MODEL, input=history, tools=TOOLS, store=False, stream=True
        )
        async for event in stream:
            events.append(event)
            if event.type == "response.completed":
                response = event.response
        assert response is not None, "stream ended without response.completed"
        calls = _calls(response)
        if not calls:
            return response.output_text, _dump(events)
        history += [item.to_dict() for item in response.output]
        history += [tool_output(call) for call in calls]
    raise AssertionError("the loop did not finish")


def run(client: Any, transport: str) -> tuple[str, list[dict[str, Any]]]:
    return ws_loop(client) if transport == "ws" else http_loop(client)


async def run_async(client: Any, transport: str) -> tuple[str, list[dict[str, Any]]]:
    return await (async_ws_loop(client) if transport == "ws" else async_http_loop(client))
