"""Bad input is one clear line, never a traceback, and never loses or corrupts a recording."""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from websockets.sync.server import ServerConnection, serve

from pytest_responses_ws.sim import SimulatorServer

from support.project import FAKE_API_KEY, Project

USES_RWS = """
def test_weather(rws):
    pass
"""

LOOP = """
import agent_loops

def test_weather(rws):
    text, _ = agent_loops.run(rws.openai_client(), rws.transport)
    assert text
"""


def _cassette_with_turn(**turn: Any) -> str:
    base = {"transport": "http", "connection": 0, "outcome": "completed", "status": 200, "request": {}}
    return json.dumps(
        {
            "format": "pytest-responses-ws/cassette",
            "version": 1,
            "recorded_at": "2026-01-01T00:00:00+00:00",
            "recorded_with": {"plugin_version": "0"},
            "turns": [{**base, "events": [], **turn}],
        }
    )


def _response(**fields: Any) -> dict[str, Any]:
    return {"id": "resp_1", "object": "response", "status": "completed", "output": [], **fields}


_NESTED = "[" * 500 + "]" * 500


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            _cassette_with_turn(request={"x": "NESTED"}).replace('"NESTED"', _NESTED),
            "*test_weather.json at /turns/0/request: not usable JSON: arrays and objects nested deeper than 100 levels",
        ),
        (
            _cassette_with_turn(connection=0).replace('"connection": 0', '"connection": ' + "7" * 5000),
            "*test_weather.json at /: not usable JSON: a number has more digits than Python converts",
        ),
        (
            _cassette_with_turn(request={"input": "LONE"}).replace('"LONE"', '"\\ud800"'),
            "*test_weather.json at /turns/0/request/input: a string holds a lone UTF-16 surrogate escape*",
        ),
        (
            _cassette_with_turn(body={"id": "resp_1", "output": []}),
            "*test_weather.json at /turns/0/body/status: cannot stream a response with status None*",
        ),
        (
            _cassette_with_turn(body=_response(status="queued")),
            "*at /turns/0/body/status: cannot stream a response with status 'queued'*",
        ),
        (
            _cassette_with_turn(body=_response(output={"type": "message"})),
            "*at /turns/0/body/output: expected an array of output items, found an object",
        ),
        (
            _cassette_with_turn(body=_response(output=[{"type": "message", "content": "hi"}])),
            "*at /turns/0/body/output/0/content: expected an array of parts, found a string",
        ),
    ],
    ids=[
        "deep-nesting",
        "huge-integer",
        "lone-surrogate",
        "no-status",
        "odd-status",
        "output-object",
        "content",
    ],
)
def test_a_bad_cassette_is_one_line_naming_file_and_pointer(
    project: Project, content: str, expected: str
) -> None:
    project.write("test_agent", USES_RWS)
    path = project.path / "cassettes" / "test_agent" / "test_weather.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    result = project.replay("--rws-transports=http,ws")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines([f"*corrupt cassette {expected}"])
    assert "Traceback" not in result.stdout.str()
    assert path.read_text() == content


def test_a_directory_at_the_cassette_path_fails_before_anything_is_recorded(
    project: Project, sim: SimulatorServer
) -> None:
    project.write("test_agent", LOOP)
    path = project.path / "cassettes" / "test_agent" / "test_weather.json"
    path.mkdir(parents=True)
    result = project.record(sim, "--rws-transports=ws")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*cannot use cassette path *test_weather.json: it is a directory, not a cassette file"]
    )
    assert "Traceback" not in result.stdout.str()
    assert len(sim.simulator.requests) == 0
    assert path.is_dir()


UNAUTHORIZED = """
import httpx, json, pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

def test_weather(rws):
    # No Authorization header: the upstream refuses it.
    if rws.transport == "http":
        answer = httpx.post(rws.base_url + "/responses", json={"model": "gpt-5.2", "input": "hi"})
        assert answer.status_code == 401
    elif rws.settings.record_mode.value == "new_episodes":
        # The upstream is opened on the first request the cassette cannot answer.
        with connect(rws.websocket_base_url + "/responses") as ws:
            ws.send(json.dumps({"type": "response.create", "model": "gpt-5.2", "input": "hi"}))
            assert json.loads(ws.recv(timeout=5))["status"] == 401
    else:
        with pytest.raises(InvalidStatus) as info:
            connect(rws.websocket_base_url + "/responses")
        assert info.value.response.status_code == 401
"""


@pytest.mark.parametrize("mode", ["once", "new_episodes", "all"])
def test_an_authentication_failure_while_recording_fails_the_test_and_writes_nothing(
    project: Project, sim: SimulatorServer, mode: str
) -> None:
    project.write("test_agent", UNAUTHORIZED)
    result = project.record(sim, mode=mode)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*recording failed: the upstream refused the credentials of HTTP request 1 (connection 0) (HTTP 401)*",
            "*recording failed: the upstream refused the credentials of the WebSocket handshake to *(HTTP 401)*",
        ],
        consecutive=False,
    )
    assert "Traceback" not in result.stdout.str()
    assert FAKE_API_KEY not in result.stdout.str()
    assert project.cassettes() == []


LONE_SURROGATE_REQUEST = r"""
import httpx, json
from websockets.sync.client import connect

BODY = r'{"type": "response.create", "model": "gpt-5.2", "input": "\ud800"}'

def test_weather(rws):
    if rws.transport == "http":
        answer = httpx.post(rws.base_url + "/responses", content=BODY.encode())
        assert answer.status_code == 400
        assert "lone UTF-16 surrogate" in answer.json()["error"]["message"]
    else:
        with connect(rws.websocket_base_url + "/responses") as ws:
            ws.send(BODY)
            event = json.loads(ws.recv(timeout=5))
            assert event["type"] == "error" and event["status"] == 400
"""


def test_a_request_with_a_lone_surrogate_is_a_400_and_a_clear_failure(project: Project) -> None:
    project.write("test_agent", LONE_SURROGATE_REQUEST)
    path = project.path / "cassettes" / "test_agent" / "test_weather.json"
    path.parent.mkdir(parents=True)
    path.write_text(_cassette_with_turn(body=_response()))
    result = project.replay()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*malformed request body on HTTP request 1*lone UTF-16 surrogate escape*at /input",
            "*malformed client frame 1*lone UTF-16 surrogate escape*at /input",
        ],
        consecutive=False,
    )
    assert "Traceback" not in result.stdout.str()


REFUSED_BY_EVENT = """
import json
from websockets.sync.client import connect

def test_weather(rws):
    with connect(rws.websocket_base_url + "/responses") as ws:
        ws.send(json.dumps({"type": "response.create", "model": "gpt-5.2", "input": "hi"}))
        event = json.loads(ws.recv(timeout=5))
    assert event["type"] == "error" and event["status"] == 401
"""


def test_an_error_event_with_status_401_while_recording_fails_the_test_and_writes_nothing(
    project: Project,
) -> None:
    def refuse(connection: ServerConnection) -> None:
        # An upstream that accepts the handshake and refuses each request, quoting the key.
        for _ in connection:
            message = f"Incorrect API key provided: {FAKE_API_KEY}."
            error = {"type": "invalid_request_error", "code": "invalid_api_key", "message": message}
            connection.send(json.dumps({"type": "error", "status": 401, "error": error}))

    project.write("test_agent", REFUSED_BY_EVENT)
    with serve(refuse, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        port = server.socket.getsockname()[1]
        upstream = SimpleNamespace(url=f"http://127.0.0.1:{port}/v1")
        result = project.record(upstream, "--rws-transports=ws")  # type: ignore[arg-type]
        server.shutdown()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*recording failed: the upstream refused the credentials of WebSocket connection 0 (HTTP 401)*"]
    )
    assert FAKE_API_KEY not in result.stdout.str()
    assert project.cassettes() == []
