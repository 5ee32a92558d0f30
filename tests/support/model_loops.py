"""Agent loops shaped like the latency model's reference loop, through the real openai SDK.

Copied into pytester runs as ``model_loops.py`` (and imported by the ws-gain benchmark). An
agent's opening context (instructions, four tools, the task: about 1,700 tokens), then per
tool call the model's call and a tool output of about 300 tokens, as
``core.latency.reference_loop`` counts them. Three ways to run it:

* ``chained``: WebSocket mode done right, one connection, ``previous_response_id`` with
  ``store: false`` and only the new items (over HTTP: the whole history, as HTTP must);
* ``resend``: the whole history every turn on one connection, as openai-agents' WebSocket model;
* ``reconnect``: chained, but with ``store: true`` and a new connection every turn.
"""

from __future__ import annotations

import json
import os
from typing import Any

MODEL = "gpt-5.2"
#: About 4,400 characters (1,100 tokens): an agent's instructions.
INSTRUCTIONS = (
    "You are a coding agent working in a repository on the user's machine. Read files before you "
    "change them, make the smallest change that fixes the problem, and run the tests after every "
    "change. Explain what you changed in two sentences at the end. "
) * 18
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": name,
        "description": f"{description} Returns the output as text; long outputs are cut at 200 lines. " * 2,
        "parameters": {
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "Path relative to the repository root."},
                "pattern": {"type": "string", "description": "A regular expression or a plain string."},
            },
            "required": ["path"],
            "additionalProperties": False,
        },
    }
    for name, description in (
        ("read_file", "Read one file of the repository."),
        ("search", "Search the repository for a pattern."),
        ("run_tests", "Run the test suite, or the tests under a path."),
        ("apply_patch", "Apply a unified diff to the repository."),
    )
]
PROMPT = "The test suite fails on test_parser.py; find out why and fix it."
#: About 1,200 characters (300 tokens): what a tool sends back.
TOOL_OUTPUT = (
    "def parse(line):\n    fields = line.split(',')\n    return [f.strip() for f in fields]\n" * 15
)[:1200]
MAX_TURNS = 80


def script_steps(calls: int) -> list[Any]:
    """The simulator's side of the loop: ``calls`` tool calls, then the final answer."""
    from pytest_responses_ws.sim import FunctionCall, Text

    steps: list[Any] = [FunctionCall("read_file", {"path": f"src/module_{i}.py"}) for i in range(calls)]
    steps.append(Text("Fixed: the parser kept trailing whitespace. " * 12))
    return steps


def _outputs(response: Any) -> list[dict[str, Any]]:
    return [
        {"type": "function_call_output", "call_id": item.call_id, "output": TOOL_OUTPUT}
        for item in response.output
        if item.type == "function_call"
    ]


def _params() -> dict[str, Any]:
    return {"model": MODEL, "instructions": INSTRUCTIONS, "tools": TOOLS}


def save_events(name: str, events: list[Any]) -> None:
    """Append the events a loop saw to the file named by RWS_EVENTS_OUT, if set."""
    path = os.environ.get("RWS_EVENTS_OUT")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"name": name, "events": [e.to_dict() for e in events]}) + "\n")


def _ws_turn(connection: Any, events: list[Any], **request: Any) -> Any:
    connection.response.create(**_params(), **request)
    for event in connection:
        events.append(event)
        if event.type == "error":
            raise RuntimeError(f"error event: {event.to_dict()}")
        if event.type == "response.completed":
            return event.response
    raise AssertionError("the connection closed before response.completed")


def ws_loop(client: Any, mode: str = "chained") -> tuple[str, list[Any]]:
    """A WebSocket loop in one of the module's three ways; returns the answer and the events."""
    events: list[Any] = []
    history: list[Any] = [{"role": "user", "content": PROMPT}]
    previous, items = None, list(history)
    connection_cm = None if mode == "reconnect" else client.responses.connect()
    connection = connection_cm.__enter__() if connection_cm is not None else None
    try:
        for _ in range(MAX_TURNS):
            if mode == "reconnect":
                with client.responses.connect() as fresh:
                    response = _ws_turn(fresh, events, input=items, store=True, previous_response_id=previous)
            elif mode == "resend":
                response = _ws_turn(connection, events, input=history, store=False)
            else:
                response = _ws_turn(
                    connection, events, input=items, store=False, previous_response_id=previous
                )
            outputs = _outputs(response)
            if not outputs:
                return response.output_text, events
            history += [item.to_dict() for item in response.output] + outputs
            previous, items = response.id, outputs
    finally:
        if connection_cm is not None:
            connection_cm.__exit__(None, None, None)
    raise AssertionError("the loop did not finish")


def http_loop(client: Any) -> tuple[str, list[Any]]:
    """The loop over HTTP + SSE: ``store: false``, so every turn resends the history."""
    events: list[Any] = []
    history: list[Any] = [{"role": "user", "content": PROMPT}]
    for _ in range(MAX_TURNS):
        response = None
        for event in client.responses.create(**_params(), input=history, store=False, stream=True):
            events.append(event)
            if event.type == "response.completed":
                response = event.response
        assert response is not None, "stream ended without response.completed"
        outputs = _outputs(response)
        if not outputs:
            return response.output_text, events
        history += [item.to_dict() for item in response.output] + outputs
    raise AssertionError("the loop did not finish")


def run(rws: Any, mode: str = "chained") -> str:
    """The loop over the test's transport (``mode`` applies to WebSocket); events are saved."""
    client = rws.openai_client()
    answer, events = ws_loop(client, mode) if rws.transport == "ws" else http_loop(client)
    save_events(f"{rws.transport}-{mode}", events)
    return answer


async def run_agent(rws: Any) -> str:
    """The same loop driven by openai-agents (its WebSocket model resends the whole history)."""
    from agents import Agent, Runner, function_tool

    @function_tool
    def read_file(path: str) -> str:
        """Read one file of the repository."""
        return TOOL_OUTPUT

    agent = Agent(name="coder", instructions=INSTRUCTIONS, tools=[read_file], model=MODEL)
    result = await Runner.run(agent, PROMPT, run_config=rws.agents_run_config(), max_turns=MAX_TURNS)
    return str(result.final_output)
