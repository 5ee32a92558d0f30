"""The simulated upstream: pure ``Simulator`` logic, then end to end with the real openai SDK."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from pytest_responses_ws.core.synthesize import TERMINAL_EVENT_TYPES, response_from_events
from pytest_responses_ws.sim import (
    ConnectionState,
    FunctionCall,
    Script,
    Simulator,
    SimulatorServer,
    Step,
    Text,
    serve_simulator,
)

#: Upper bound on events per turn, so a misbehaving server fails a test instead of hanging it.
MAX_EVENTS = 500
#: Bound on every blocking receive or HTTP call, in seconds.
WAIT_S = 5.0

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "step": {"type": "integer"}},
            "required": ["city", "step"],
            "additionalProperties": False,
        },
        "strict": True,
    }
]


def _expected_arguments(n_calls: int) -> list[dict[str, Any]]:
    return [{"city": f"City {index}", "step": index} for index in range(n_calls)]


def _client(sim: SimulatorServer) -> OpenAI:
    return OpenAI(base_url=sim.url, api_key="sk-test", max_retries=0, timeout=WAIT_S)


def _until_terminal(events: Iterable[Any]) -> list[Any]:
    """Events of one turn, up to and including its terminal event."""
    seen: list[Any] = []
    for event in events:
        seen.append(event)
        if event.type in TERMINAL_EVENT_TYPES:
            return seen
        assert len(seen) < MAX_EVENTS, "no terminal event"
    raise AssertionError(f"stream ended without a terminal event after {[e.type for e in seen]}")


def _raw_turn(ws: ClientConnection) -> list[dict[str, Any]]:
    """Frames of one turn over a raw WebSocket client, up to the terminal event."""
    frames: list[dict[str, Any]] = []
    while len(frames) < MAX_EVENTS:
        frame = json.loads(ws.recv(timeout=WAIT_S))
        frames.append(frame)
        if frame["type"] in TERMINAL_EVENT_TYPES:
            return frames
    raise AssertionError("no terminal event")


@pytest.fixture(scope="module")
def _shared_server() -> Iterator[SimulatorServer]:
    with serve_simulator() as server:
        yield server


@pytest.fixture
def sim(_shared_server: SimulatorServer) -> SimulatorServer:
    """The module's server with a fresh simulator (3-call tool loop) and an empty handshake log.

    Sharing one server keeps the file fast: each uvicorn shutdown costs about 0.1 s.
    """
    app = _shared_server.app
    app.simulator = Simulator(Script.tool_loop(3, final_text="Sunny everywhere."))
    app.handshakes.clear()
    app.event_delay_s = 0.0
    app.close_after_events = None
    app.max_active_responses = 16
    return SimulatorServer(app.simulator, app, _shared_server.runner)


# -- Script ------------------------------------------------------------------------------------------


def test_tool_loop_builds_distinct_calls_then_text() -> None:
    script = Script.tool_loop(3, tool="lookup", final_text="bye")
    assert len(script) == 4
    calls = [step.outputs[0] for step in script.steps[:3]]
    assert all(isinstance(call, FunctionCall) and call.name == "lookup" for call in calls)
    assert [json.loads(call.arguments_json) for call in calls if isinstance(call, FunctionCall)] == (
        _expected_arguments(3)
    )
    assert script.steps[3] == Step((Text("bye"),))


def test_script_accepts_loose_entries_and_counts_parallel_calls() -> None:
    script = Script(
        [
            [FunctionCall("a", {"x": 1}), FunctionCall("b", "{}")],
            FunctionCall("c"),
            Step((Text("end"),)),
        ]
    )
    assert script.step_for(0) is script.steps[0]
    # Two results answer the two parallel calls of step 0, so step 1 is next.
    assert script.step_for(2) is script.steps[1]
    assert script.step_for(3) is script.steps[2]
    assert script.step_for(10) is script.steps[2]


def test_script_rejects_bad_entries() -> None:
    with pytest.raises(ValueError, match="at least one step"):
        Script([])
    with pytest.raises(TypeError, match="Text and FunctionCall"):
        Script([["not an output"]])  # type: ignore[list-item]


# -- Simulator (no sockets) ------------------------------------------------------------------------


def _final(events: list[dict[str, Any]]) -> dict[str, Any]:
    response = response_from_events(events)
    assert response is not None, events
    return response


def test_response_echoes_request_settings() -> None:
    simulator = Simulator(seed=7)
    request = {
        "model": "gpt-4o-mini",
        "input": "Say hello.",
        "instructions": "Be brief.",
        "tools": TOOLS,
        "tool_choice": "required",
        "temperature": 0.2,
        "parallel_tool_calls": False,
        "store": False,
        "metadata": {"run": "1"},
    }
    events = simulator.respond(request, connection=ConnectionState())
    final = _final(events)
    assert final["model"] == "gpt-4o-mini"
    assert final["instructions"] == "Be brief."
    assert final["tool_choice"] == "required"
    assert final["temperature"] == 0.2
    assert final["parallel_tool_calls"] is False
    assert final["store"] is False
    assert final["metadata"] == {"run": "1"}
    assert final["tools"][0]["name"] == "get_weather"
    assert final["id"].startswith("resp_sim")
    assert final["output"][0]["id"].startswith("msg_sim")
    usage = final["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    assert usage["input_tokens_details"] == {"cached_tokens": 0}
    assert usage["output_tokens_details"] == {"reasoning_tokens": 0}
    assert simulator.requests == [request]


def test_defaults_match_the_service() -> None:
    final = _final(Simulator().respond({"input": "hi"}, connection=ConnectionState()))
    assert final["model"] == "gpt-5.2"
    assert final["store"] is True
    assert final["tool_choice"] == "auto"
    assert final["text"] == {"format": {"type": "text"}, "verbosity": "medium"}
    assert final["previous_response_id"] is None


def test_same_seed_same_bytes_and_ids_are_unique() -> None:
    def run(seed: int) -> list[dict[str, Any]]:
        simulator = Simulator(Script.tool_loop(1), seed=seed)
        state = ConnectionState()
        first = simulator.respond({"input": "go", "store": False}, connection=state)
        call_id = _final(first)["output"][0]["call_id"]
        follow_up = {
            "previous_response_id": _final(first)["id"],
            "input": [{"type": "function_call_output", "call_id": call_id, "output": "ok"}],
        }
        return first + simulator.respond(follow_up, connection=state)

    assert run(3) == run(3)
    assert run(3) != run(4)
    events = run(3)
    ids = [
        item["id"]
        for event in events
        if event["type"] == "response.output_item.done"
        for item in [event["item"]]
    ]
    responses = {event["response"]["id"] for event in events if event["type"] == "response.completed"}
    assert len(set(ids)) == len(ids) == 2
    assert len(responses) == 2


def test_obfuscation_on_deltas_unless_turned_off() -> None:
    simulator = Simulator(Script([Text("a fairly long answer to stream")]))
    events = simulator.respond({"input": "hi"}, connection=ConnectionState())
    deltas = [event for event in events if event["type"] == "response.output_text.delta"]
    assert deltas
    assert all(isinstance(event["obfuscation"], str) and event["obfuscation"] for event in deltas)
    plain = simulator.respond(
        {"input": "hi", "stream_options": {"include_obfuscation": False}}, connection=ConnectionState()
    )
    assert all("obfuscation" not in event for event in plain)


def test_store_false_continues_only_on_the_same_connection() -> None:
    simulator = Simulator()
    connection = ConnectionState()
    first = _final(simulator.respond({"input": "one", "store": False}, connection=connection))
    again = simulator.respond({"input": "two", "previous_response_id": first["id"]}, connection=connection)
    assert _final(again)["previous_response_id"] == first["id"]

    elsewhere = simulator.respond(
        {"input": "two", "previous_response_id": first["id"], "stream_id": "lane-1"},
        connection=ConnectionState(),
    )
    assert elsewhere == [
        {
            "type": "error",
            "status": 400,
            "error": {
                "type": "invalid_request_error",
                "code": "previous_response_not_found",
                "message": f"Previous response with id '{first['id']}' not found.",
                "param": "previous_response_id",
            },
            "stream_id": "lane-1",
        }
    ]


def test_stored_responses_continue_from_any_connection() -> None:
    simulator = Simulator()
    first = _final(simulator.respond({"input": "one"}, connection=ConnectionState(transport="http")))
    later = simulator.respond(
        {"input": "two", "previous_response_id": first["id"]}, connection=ConnectionState(transport="http")
    )
    assert later[-1]["type"] == "response.completed"


def test_step_follows_effective_input_not_call_order() -> None:
    simulator = Simulator(Script.tool_loop(2))
    outputs = [{"type": "function_call_output", "call_id": f"c{index}", "output": "x"} for index in range(2)]
    # A full-history request with two results is answered by the final step at once.
    final = _final(
        simulator.respond(
            {"input": [{"role": "user", "content": "go"}, *outputs]}, connection=ConnectionState()
        )
    )
    assert final["output"][0]["type"] == "message"
    # A fresh request starts the loop again.
    first = _final(simulator.respond({"input": "go"}, connection=ConnectionState()))
    assert json.loads(first["output"][0]["arguments"]) == _expected_arguments(1)[0]


def test_invalid_stream_id_and_input_are_refused() -> None:
    simulator = Simulator()
    bad_lane = simulator.respond(
        {"input": "x", "stream_id": "no spaces allowed"}, connection=ConnectionState()
    )
    assert bad_lane[0]["error"]["code"] == "invalid_stream_id"
    assert "stream_id" not in bad_lane[0]
    bad_input = simulator.respond({"input": 42}, connection=ConnectionState())
    assert bad_input[0]["error"]["param"] == "input"


def test_warm_up_returns_an_id_without_output() -> None:
    simulator = Simulator()
    connection = ConnectionState()
    warm = _final(
        simulator.respond({"input": "ctx", "generate": False, "store": False}, connection=connection)
    )
    assert warm["output"] == []
    follow = simulator.respond({"input": "go", "previous_response_id": warm["id"]}, connection=connection)
    assert _final(follow)["output"][0]["type"] == "message"


# -- end to end with the openai SDK -----------------------------------------------------------------


def test_ws_text_turn_with_sync_sdk(sim: SimulatorServer) -> None:
    simulator = sim.app.simulator = Simulator(Script([Text("Hello from the loopback.")]))
    with _client(sim).responses.connect() as conn:
        conn.response.create(model="gpt-5.2", input="Say hello.", store=False, tools=[])
        events = _until_terminal(conn)
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert text == "Hello from the loopback."
    assert events[-1].response.output_text == "Hello from the loopback."
    assert simulator.requests[0]["type"] == "response.create"
    assert sim.app.handshakes[0]["authorization"] == "Bearer sk-test"


@pytest.mark.asyncio
async def test_ws_text_turn_with_async_sdk(sim: SimulatorServer) -> None:
    client = AsyncOpenAI(base_url=sim.url, api_key="sk-test", max_retries=0, timeout=WAIT_S)
    async with client.responses.connect() as conn:
        await conn.response.create(model="gpt-5.2", input="Weather?", store=False, tools=TOOLS)
        events: list[Any] = []
        async for event in conn:
            events.append(event)
            if event.type in TERMINAL_EVENT_TYPES or len(events) >= MAX_EVENTS:
                break
    assert events[-1].type == "response.completed"
    call = events[-1].response.output[0]
    assert call.type == "function_call"
    assert json.loads(call.arguments) == _expected_arguments(1)[0]
    await client.close()


def test_http_streaming_create(sim: SimulatorServer) -> None:
    client = _client(sim)
    stream = client.responses.create(model="gpt-5.2", input="Weather?", tools=TOOLS, stream=True)
    events = _until_terminal(stream)
    stream.close()
    types = [event.type for event in events]
    assert types[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert types[-2:] == ["response.output_item.done", "response.completed"]
    arguments = "".join(
        event.delta for event in events if event.type == "response.function_call_arguments.delta"
    )
    assert json.loads(arguments) == _expected_arguments(1)[0]


def test_http_sse_wire_format(sim: SimulatorServer) -> None:
    body = {"model": "gpt-5.2", "input": "hi", "stream": True}
    with httpx.Client(timeout=WAIT_S) as http:
        reply = http.post(f"{sim.url}/responses", json=body, headers={"Authorization": "Bearer sk-test"})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "text/event-stream; charset=utf-8"
    blocks = reply.text.split("\n\n")
    assert blocks[-1] == ""  # the body ends right after the terminal event, with no [DONE]
    events = []
    for block in blocks[:-1]:
        event_line, data_line = block.split("\n")
        data = json.loads(data_line.removeprefix("data: "))
        assert event_line == f"event: {data['type']}"
        assert data_line == "data: " + json.dumps(data, separators=(",", ":"))
        events.append(data)
    assert events[-1]["type"] == "response.completed"


def test_http_create_without_stream(sim: SimulatorServer) -> None:
    response = _client(sim).responses.create(model="gpt-5.2", input="Weather?", tools=TOOLS)
    assert response.status == "completed"
    assert response.output[0].type == "function_call"
    assert response.usage is not None
    assert response.usage.total_tokens > 0
    assert sim.simulator.requests[0]["input"] == "Weather?"


def test_tool_loop_over_ws_chains_ids_with_store_false(sim: SimulatorServer) -> None:
    arguments = []
    with _client(sim).responses.connect() as conn:
        conn.response.create(model="gpt-5.2", input="Weather in 3 cities?", store=False, tools=TOOLS)
        final = _until_terminal(conn)[-1].response
        while final.output[0].type == "function_call":
            call = final.output[0]
            arguments.append(json.loads(call.arguments))
            conn.response.create(
                model="gpt-5.2",
                previous_response_id=final.id,
                input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"temp": 21}'}],
                store=False,
                tools=TOOLS,
            )
            final = _until_terminal(conn)[-1].response
            assert len(arguments) <= 3
    assert arguments == _expected_arguments(3)
    assert final.output_text == "Sunny everywhere."
    # Continuations send only the new item; the chain lives on the connection.
    assert [
        len(request["input"]) if isinstance(request["input"], list) else 1
        for request in sim.simulator.requests
    ] == [
        1,
        1,
        1,
        1,
    ]
    assert len(sim.app.handshakes) == 1


def test_tool_loop_over_http_resends_history(sim: SimulatorServer) -> None:
    client = _client(sim)
    history: list[Any] = [{"role": "user", "content": "Weather in 3 cities?"}]
    arguments = []
    response = client.responses.create(model="gpt-5.2", input=history, store=False, tools=TOOLS)
    while response.output[0].type == "function_call":
        call = response.output[0]
        arguments.append(json.loads(call.arguments))
        history += [item.to_dict() for item in response.output]
        history.append({"type": "function_call_output", "call_id": call.call_id, "output": '{"temp": 21}'})
        response = client.responses.create(model="gpt-5.2", input=history, store=False, tools=TOOLS)
        assert len(arguments) <= 3
    assert arguments == _expected_arguments(3)
    assert response.output_text == "Sunny everywhere."
    assert [len(request["input"]) for request in sim.simulator.requests] == [1, 3, 5, 7]


def test_previous_response_not_found_after_reconnect(sim: SimulatorServer) -> None:
    client = _client(sim)
    with client.responses.connect() as conn:
        conn.response.create(model="gpt-5.2", input="hi", store=False)
        first = _until_terminal(conn)[-1].response
    with client.responses.connect() as conn:
        conn.response.create(model="gpt-5.2", input="again", previous_response_id=first.id, store=False)
        events = _until_terminal(conn)
        assert len(events) == 1
        error = events[0]
        assert error.type == "error"
        assert error.to_dict()["status"] == 400
        payload = error.to_dict()["error"]
        assert payload["code"] == "previous_response_not_found"
        assert payload["message"] == f"Previous response with id '{first.id}' not found."
        # The connection stays usable: resending the history works.
        conn.response.create(model="gpt-5.2", input="again", store=False)
        assert _until_terminal(conn)[-1].type == "response.completed"
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-5.2", input="again", previous_response_id=first.id, store=False)
    assert caught.value.code == "previous_response_not_found"


def test_missing_api_key_is_rejected(sim: SimulatorServer) -> None:
    with httpx.Client(timeout=WAIT_S) as http:
        reply = http.post(f"{sim.url}/responses", json={"model": "gpt-5.2", "input": "hi"})
    assert reply.status_code == 401
    error = reply.json()["error"]
    assert error["code"] == "invalid_api_key"
    assert error["type"] == "invalid_request_error"
    assert error["param"] is None
    with pytest.raises(InvalidStatus) as caught:
        connect(f"{sim.ws_url}/responses", open_timeout=WAIT_S)
    assert caught.value.response.status_code == 401
    assert json.loads(caught.value.response.body or b"{}")["error"]["code"] == "invalid_api_key"
    assert len(sim.app.handshakes) == 2
    assert sim.simulator.requests == []


def test_api_key_header_is_accepted(sim: SimulatorServer) -> None:
    with httpx.Client(timeout=WAIT_S) as http:
        reply = http.post(f"{sim.url}/responses", json={"input": "hi"}, headers={"api-key": "azure-key"})
    assert reply.status_code == 200
    assert reply.json()["object"] == "response"


# -- WebSocket protocol details (raw client) --------------------------------------------------------


def _ws(sim: SimulatorServer) -> ClientConnection:
    return connect(
        f"{sim.ws_url}/responses", additional_headers={"Authorization": "Bearer sk-test"}, open_timeout=WAIT_S
    )


def test_named_lanes_echo_stream_id(sim: SimulatorServer) -> None:
    with _ws(sim) as ws:
        for lane in ("lane-a", "lane-b"):
            ws.send(json.dumps({"type": "response.create", "input": "hi", "store": False, "stream_id": lane}))
        frames: list[dict[str, Any]] = []
        while sum(frame["type"] == "response.completed" for frame in frames) < 2:
            frames.append(json.loads(ws.recv(timeout=WAIT_S)))
            assert len(frames) < MAX_EVENTS
    for lane in ("lane-a", "lane-b"):
        lane_frames = [frame for frame in frames if frame["stream_id"] == lane]
        assert [frame["sequence_number"] for frame in lane_frames] == list(range(len(lane_frames)))
        assert lane_frames[-1]["type"] == "response.completed"


def test_bad_frames_get_errors_and_the_connection_stays_open(sim: SimulatorServer) -> None:
    with _ws(sim) as ws:
        ws.send("not json")
        first = json.loads(ws.recv(timeout=WAIT_S))
        ws.send(json.dumps({"type": "session.update"}))
        second = json.loads(ws.recv(timeout=WAIT_S))
        ws.send(json.dumps({"type": "response.create", "input": "hi"}))
        turn = _raw_turn(ws)
    assert first["type"] == second["type"] == "error"
    assert first["error"]["type"] == second["error"]["type"] == "invalid_request_error"
    assert turn[-1]["type"] == "response.completed"


def test_close_after_events_cuts_the_connection(sim: SimulatorServer) -> None:
    sim.app.close_after_events = 3
    with _ws(sim) as ws:
        ws.send(json.dumps({"type": "response.create", "input": "hi"}))
        received = [json.loads(ws.recv(timeout=WAIT_S)) for _ in range(3)]
        with pytest.raises(ConnectionClosedError) as caught:
            ws.recv(timeout=WAIT_S)
    assert [frame["type"] for frame in received] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
    ]
    assert caught.value.rcvd is not None
    assert caught.value.rcvd.code == 1011


def test_paced_lanes_still_complete_in_order(sim: SimulatorServer) -> None:
    sim.app.event_delay_s = 0.001
    with _ws(sim) as ws:
        for lane in ("a", "b"):
            ws.send(json.dumps({"type": "response.create", "input": "hi", "stream_id": lane}))
        frames: list[dict[str, Any]] = []
        while sum(frame["type"] == "response.completed" for frame in frames) < 2:
            frames.append(json.loads(ws.recv(timeout=WAIT_S)))
            assert len(frames) < MAX_EVENTS
    for lane in ("a", "b"):
        numbers = [frame["sequence_number"] for frame in frames if frame["stream_id"] == lane]
        assert numbers == list(range(len(numbers)))


def test_http_errors_for_bad_requests(sim: SimulatorServer) -> None:
    auth = {"Authorization": "Bearer sk-test"}
    with httpx.Client(timeout=WAIT_S) as http:
        not_json = http.post(f"{sim.url}/responses", content=b"{oops", headers=auth)
        wrong_path = http.post(f"{sim.url}/chat/completions", json={}, headers=auth)
    assert not_json.status_code == 400
    assert not_json.json()["error"]["type"] == "invalid_request_error"
    assert wrong_path.status_code == 404
    assert wrong_path.json()["error"]["message"] == "Invalid URL (POST /v1/chat/completions)"


def test_server_urls_and_arguments(sim: SimulatorServer) -> None:
    assert sim.url == f"http://127.0.0.1:{sim.port}/v1"
    assert sim.ws_url == f"ws://127.0.0.1:{sim.port}/v1"
    with (
        pytest.raises(ValueError, match="either script or simulator"),
        serve_simulator(Script([Text("x")]), simulator=Simulator()),
    ):
        pass


# -- the service's connection rules: lanes, active responses, steering -------------------------------


def test_bad_lane_names_and_the_33rd_lane_are_refused_and_the_connection_goes_on(
    sim: SimulatorServer,
) -> None:
    with _ws(sim) as ws:
        ws.send(json.dumps({"type": "response.create", "input": "hi", "stream_id": "no spaces"}))
        bad = json.loads(ws.recv(timeout=WAIT_S))
        for n in range(32):
            ws.send(json.dumps({"type": "response.create", "input": "hi", "stream_id": f"l{n}"}))
            assert _raw_turn(ws)[-1]["type"] == "response.completed"
        ws.send(json.dumps({"type": "response.create", "input": "hi", "stream_id": "l32"}))
        limit = json.loads(ws.recv(timeout=WAIT_S))
        ws.send(json.dumps({"type": "response.create", "input": "hi", "stream_id": "l3"}))
        again = _raw_turn(ws)
    assert bad["error"]["code"] == "invalid_stream_id" and "stream_id" not in bad
    assert limit["error"]["code"] == "websocket_stream_limit_reached" and limit["stream_id"] == "l32"
    assert again[-1]["type"] == "response.completed" and again[-1]["stream_id"] == "l3"


def _most_active(sim: SimulatorServer, lanes: int) -> int:
    with _ws(sim) as ws:
        for n in range(lanes):
            ws.send(json.dumps({"type": "response.create", "input": "hi", "stream_id": f"l{n}"}))
        active: set[str] = set()
        most = done = 0
        while done < lanes:
            frame = json.loads(ws.recv(timeout=WAIT_S))
            if frame["type"] == "response.created":
                active.add(frame["stream_id"])
                most = max(most, len(active))
            elif frame["type"] == "response.completed":
                active.discard(frame["stream_id"])
                done += 1
    return most


def test_at_most_16_responses_generate_at_once_unless_raised(sim: SimulatorServer) -> None:
    sim.app.event_delay_s = 0.005
    assert _most_active(sim, 20) == 16
    sim.app.max_active_responses = 64
    assert _most_active(sim, 20) == 20


def test_a_steer_ends_the_streaming_response_and_its_successor_answers_the_steered_input(
    sim: SimulatorServer,
) -> None:
    # A text answer: a response that waits for tool output keeps steers pending instead.
    simulator = sim.app.simulator = Simulator(Script([Text("A long answer, streamed slowly.")]))
    sim.app.event_delay_s = 0.01
    with _ws(sim) as ws:
        ws.send(json.dumps({"type": "response.create", "input": "hi", "store": False, "stream_id": "s"}))
        created = json.loads(ws.recv(timeout=WAIT_S))
        steered = created["response"]["id"]
        ws.send(json.dumps({"type": "response.steer", "previous_response_id": steered, "input": "shorter"}))
        frames = _raw_turn(ws)  # up to the steered ending
        frames += _raw_turn(ws)  # the successor
    types = [frame["type"] for frame in frames]
    assert types[0] == "response.steer.accepted" and frames[0]["steer"]["previous_response_id"] == steered
    ending = frames[types.index("response.incomplete")]
    assert ending["response"]["id"] == steered
    assert ending["response"]["incomplete_details"] == {"reason": "steered"}
    successor = frames[types.index("response.incomplete") + 1]
    assert successor["type"] == "response.created" and successor["response"]["id"] != steered
    assert types[-1] == "response.completed"
    assert all(frame["stream_id"] == "s" for frame in frames)
    # The steered response's events are numbered once, the steer's answer included.
    numbers = [frame["sequence_number"] for frame in frames[: types.index("response.incomplete") + 1]]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert simulator.requests[-1]["input"][-1] == {"role": "user", "content": "shorter"}


def test_steers_the_service_would_fail(sim: SimulatorServer) -> None:
    with _ws(sim) as ws:
        ws.send(json.dumps({"type": "response.create", "input": "hi", "store": False}))
        finished = _raw_turn(ws)[0]["response"]["id"]
        answers = []
        for target, given in ((finished, "more"), ("resp_unknown", "more"), (finished, [])):
            ws.send(json.dumps({"type": "response.steer", "previous_response_id": target, "input": given}))
            answers.append(json.loads(ws.recv(timeout=WAIT_S)))
    assert [answer["type"] for answer in answers] == ["response.steer.failed"] * 3
    assert [answer["error"]["code"] for answer in answers] == [
        "response_already_completed",
        "response_not_found",
        "invalid_input",
    ]
    assert answers[1]["steer"] == {"input": "more", "previous_response_id": "resp_unknown"}


def test_a_steer_of_a_response_that_waits_for_tool_output_is_pending_then_prepended(
    sim: SimulatorServer,
) -> None:
    sim.app.event_delay_s = 0.01
    with _ws(sim) as ws:
        ws.send(json.dumps({"type": "response.create", "input": "weather?", "store": False}))
        created = json.loads(ws.recv(timeout=WAIT_S))
        target = created["response"]["id"]
        ws.send(json.dumps({"type": "response.steer", "previous_response_id": target, "input": "and Rome"}))
        frames = _raw_turn(ws)
        pending = json.loads(ws.recv(timeout=WAIT_S))
        call_id = frames[-1]["response"]["output"][0]["call_id"]
        output = {"type": "function_call_output", "call_id": call_id, "output": "{}"}
        ws.send(
            json.dumps(
                {"type": "response.create", "previous_response_id": target, "input": [output], "store": False}
            )
        )
        _raw_turn(ws)
    types = [frame["type"] for frame in frames]
    assert "response.steer.accepted" in types and "response.incomplete" not in types
    assert types[-1] == "response.completed"
    assert pending["type"] == "response.steer.pending"
    assert pending["reason"] == "waiting_for_required_input"
    assert pending["required_input"] == [{"type": "function_call_output", "call_id": call_id}]
    # The queued steer goes first in the continuation the client sent.
    assert sim.simulator.requests[-1]["input"] == [{"role": "user", "content": "and Rome"}, output]
