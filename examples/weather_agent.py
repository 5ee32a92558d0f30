"""A small tool-calling agent on the Responses API, written the two ways teams write them.

Over WebSocket mode it keeps one connection open and sends only the new items each
turn, chained with ``previous_response_id`` (``store: false``). Over HTTP it streams
each turn and resends the whole history. Both end with the model's text answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

MODEL = "gpt-5.2"
INSTRUCTIONS = "You are a weather assistant. Call get_weather for every city the user asks about."
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    }
]
FORECASTS = {"Paris": {"temp_c": 18, "sky": "sunny"}, "Oslo": {"temp_c": 4, "sky": "cloudy"}}
MAX_TURNS = 10


def get_weather(city: str) -> dict[str, Any]:
    """The tool: a fixed table, so tests are deterministic."""
    return {"city": city, **FORECASTS.get(city, {"temp_c": None, "sky": "unknown"})}


@dataclass
class AgentResult:
    answer: str
    tool_calls: list[str] = field(default_factory=list)
    turns: int = 0


def _as_input(item: Any) -> dict[str, Any]:
    # Parsed responses carry SDK-side fields (parsed_arguments) the API does not accept back.
    data: dict[str, Any] = item.to_dict()
    data.pop("parsed_arguments", None)
    return data


def _run_tools(output: list[Any], result: AgentResult) -> list[dict[str, Any]]:
    items = []
    for item in output:
        if item.type == "function_call":
            city = json.loads(item.arguments)["city"]
            result.tool_calls.append(city)
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": item.call_id,
                    "output": json.dumps(get_weather(city)),
                }
            )
    return items


def ask_over_websocket(client: Any, question: str) -> AgentResult:
    result = AgentResult(answer="")
    previous, new_items = None, [{"role": "user", "content": question}]
    with client.responses.connect() as connection:
        while result.turns < MAX_TURNS:
            result.turns += 1
            connection.response.create(
                model=MODEL,
                instructions=INSTRUCTIONS,
                input=new_items,
                tools=TOOLS,
                store=False,
                previous_response_id=previous,
            )
            for event in connection:
                if event.type == "error":
                    raise RuntimeError(f"the API answered with an error: {event.to_dict()}")
                if event.type == "response.completed":
                    break
            response = event.response
            new_items = _run_tools(response.output, result)
            if not new_items:
                result.answer = response.output_text
                return result
            previous = response.id
    raise RuntimeError("the agent did not finish")


def ask_over_http(client: Any, question: str) -> AgentResult:
    result = AgentResult(answer="")
    history: list[Any] = [{"role": "user", "content": question}]
    while result.turns < MAX_TURNS:
        result.turns += 1
        with client.responses.stream(
            model=MODEL, instructions=INSTRUCTIONS, input=history, tools=TOOLS, store=False
        ) as stream:
            response = stream.get_final_response()
        tool_outputs = _run_tools(response.output, result)
        if not tool_outputs:
            result.answer = response.output_text
            return result
        history += [_as_input(item) for item in response.output] + tool_outputs
    raise RuntimeError("the agent did not finish")


def ask(client: Any, transport: str, question: str) -> AgentResult:
    """Run the agent over ``transport`` (``"ws"`` or ``"http"``)."""
    return ask_over_websocket(client, question) if transport == "ws" else ask_over_http(client, question)


async def ask_async(client: Any, transport: str, question: str) -> AgentResult:
    """The async agent: the same loop on ``AsyncOpenAI``."""
    result = AgentResult(answer="")
    if transport == "ws":
        previous, new_items = None, [{"role": "user", "content": question}]
        async with client.responses.connect() as connection:
            while result.turns < MAX_TURNS:
                result.turns += 1
                await connection.response.create(
                    model=MODEL,
                    instructions=INSTRUCTIONS,
                    input=new_items,
                    tools=TOOLS,
                    store=False,
                    previous_response_id=previous,
                )
                async for event in connection:
                    if event.type == "response.completed":
                        break
                response = event.response
                new_items = _run_tools(response.output, result)
                if not new_items:
                    result.answer = response.output_text
                    return result
                previous = response.id
        raise RuntimeError("the agent did not finish")
    history: list[Any] = [{"role": "user", "content": question}]
    while result.turns < MAX_TURNS:
        result.turns += 1
        async with client.responses.stream(
            model=MODEL, instructions=INSTRUCTIONS, input=history, tools=TOOLS, store=False
        ) as stream:
            response = await stream.get_final_response()
        tool_outputs = _run_tools(response.output, result)
        if not tool_outputs:
            result.answer = response.output_text
            return result
        history += [_as_input(item) for item in response.output] + tool_outputs
    raise RuntimeError("the agent did not finish")
