"""Hardening found in review: malformed requests, credentials in odd places."""

from __future__ import annotations

import json
from typing import Any

import pytest

from support.project import Project


def test_malformed_previous_response_id_is_a_clear_failure_on_both_transports(
    project: Project, sim: Any
) -> None:
    project.write(
        "test_agent",
        "import agent_loops\n\ndef test_weather(rws):\n    agent_loops.run(rws.openai_client(), rws.transport)\n",
    )
    project.record(sim).assert_outcomes(passed=2)
    project.write(
        "test_bad",
        """
import json, httpx, pytest
from websockets.sync.client import connect

@pytest.mark.rws_cassette("test_weather")
def test_bad(rws):
    bad = {"model": "gpt-5.2", "input": "hi", "previous_response_id": ["not", "a", "string"]}
    if rws.transport == "http":
        response = httpx.post(rws.base_url + "/responses", json=bad, timeout=5)
        assert response.status_code == 400
    else:
        with connect(rws.websocket_base_url + "/responses", open_timeout=5) as ws:
            ws.send(json.dumps({"type": "response.create", **bad}))
            assert json.loads(ws.recv(timeout=5))["type"] == "error"
""",
    )
    (project.path / "cassettes" / "test_bad").mkdir()
    (project.path / "cassettes" / "test_bad" / "test_weather.json").write_text(
        project.cassettes()[0].read_text()
    )
    result = project.replay("test_bad.py")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*previous_response_id must be a string or null, not list*"])
    assert "Exception in ASGI application" not in result.stdout.str() + result.stderr.str()


def test_upstream_url_with_credentials_is_refused(project: Project) -> None:
    project.write("test_x", "def test_x():\n    pass\n")
    result = project.run("--rws-upstream=https://user:secret-password@gateway.example/v1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*must not carry credentials*"])


@pytest.mark.parametrize(
    "upstream",
    ["https://gw.example/openai/v1?api-key=AzKey7xQ9zLm2Kd8Vt4", "https://gw.example/v1#AzKey7xQ9zLm2Kd8Vt4"],
)
def test_upstream_url_with_a_query_is_refused_without_echoing_it(project: Project, upstream: str) -> None:
    # A query on the upstream would be glued in front of /responses (a 404 recorded as a turn).
    project.write("test_x", "def test_x():\n    pass\n")
    result = project.run(f"--rws-upstream={upstream}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*upstream URL must not carry a query or fragment*default_query*"])
    assert "AzKey7xQ9zLm2Kd8Vt4" not in result.stdout.str() + result.stderr.str()


def test_every_request_key_on_a_keep_alive_connection_is_scrubbed(project: Project, sim: Any) -> None:
    project.write(
        "test_keys",
        """
import pytest

@pytest.mark.rws_transports("http")
def test_two_keys(rws):
    client = rws.openai_client()
    for key in ("fake-key-FIRST-0123456789", "fake-key-SECOND-0123456789"):
        # Each request carries its own key and echoes it in metadata, on one pooled connection.
        client.with_options(api_key=key).responses.create(model="gpt-5.2", input="hi", metadata={"k": key})
""",
    )
    project.record(sim).assert_outcomes(passed=1)
    text = project.cassettes()[0].read_text()
    assert "FIRST" not in text
    assert "SECOND" not in text
    assert len(json.loads(text)["connections"]) == 1


def test_tool_credentials_stay_out_of_cassettes_and_miss_reports(project: Project, sim: Any) -> None:
    project.write(
        "test_mcp",
        """
import pytest

TOOL = {"type": "mcp", "server_label": "docs", "server_url": "https://mcp.example/sse",
        "authorization": "fake-mcp-TOKEN-0123456789", "headers": {"X-Api-Key": "fake-mcp-HEADER-0123456789"},
        "require_approval": "never"}

@pytest.mark.rws_transports("http")
def test_mcp(rws):
    text = repr(rws.openai_client().responses.create(model="gpt-5.2", input="hi", tools=[TOOL]).to_dict())
""",
    )
    project.record(sim).assert_outcomes(passed=1)
    text = project.cassettes()[0].read_text()
    assert "TOKEN" not in text
    assert "HEADER" not in text
    mcp = project.path / "test_mcp.py"
    mcp.write_text(mcp.read_text().replace('input="hi"', 'input="something else"'))
    result = project.replay()
    result.assert_outcomes(failed=1)
    assert "TOKEN" not in result.stdout.str()


def test_an_endpoint_that_is_not_replayed_fails_the_test_saying_so(project: Project) -> None:
    project.write(
        "test_retrieve",
        """
import openai, pytest

@pytest.mark.rws_transports("http")
def test_retrieve(rws):
    with pytest.raises(openai.NotFoundError):
        rws.openai_client().responses.retrieve("resp_123")
""",
    )
    result = project.replay()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*GET /v1/responses/resp_123 is not replayed*"])
