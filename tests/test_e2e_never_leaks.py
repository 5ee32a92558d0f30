"""End to end: a secret planted in every position a request can carry one never reaches a file
the run writes (cassettes, JSON and HTML reports, JUnit XML) or its terminal output, over both
transports, and the recording it made replays.

The test project talks to the plugin with raw clients, so each position is exactly the one
named: headers, the query string, a cookie, the user agent, body metadata, prompt text, MCP tool
``authorization``/``headers``/``server_url``, the WebSocket lane name (``stream_id``) and close
reason. Besides its own position, each secret is also put in the request's ``metadata``, which
the simulated upstream echoes in its events: a secret that is not learned from its position
would survive there.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from support.project import Project

#: One secret per position, random-looking (mixed case and digits) as real ones are, so no
#: 8-character piece of one is an English word the cassette has anyway. The prompt one has only
#: its ``sk-`` shape to go by (it is learned from nowhere).
SECRETS = {
    "authorization": "u8jzPde0IgxLd6GncfBAepfJBd",
    "x_api_key": "0Kh8oOOL8dKLzdocJ2isAjIhKt",
    "organization": "org-J0RlgLKOmxgJTeKdNnFRIBXuDL",
    "credential": "7DxtpYlSXpfKtHF4vUCsMehGAk",
    "jwt": "eyJWvj7FAc9QeW.JKY40uvSwM.FLZDe1f8rESQedUS",
    "assertion": "tPKR0CsTy4Qwb8DwkNhFdnXsiV",
    "signature": "pzz63FfkCzJr4i0B3JrTAwR4y9",
    "query": "ojfljoQoaF1LlqsajAIxNKu8iS",
    "cookie": "2G8NPRVdD53X83R8xNbe3nNyjO",
    "user_agent": "q9wMxEhh2FDEEtfjgVvVqE1SkH",
    "prompt": "sk-" + "proj-bn88HxjSI6bWHtP3fS2qHx6kw",
    "mcp_authorization": "XoIIXGvOoNZYW2mZp0zVZomHFw",
    "mcp_header": "UbbYrEqmSM9wCZ7Uw9xfogoEmv",
    "mcp_url": "nEN5N1aE6PwZPf1Qh6yYTWmE4l",
    "lane": "BYOvfZ8UzDzV8fUkkibjL5DZPj",
    "close_reason": "N0MEQ7wjJJibaZUP4Xk2Lm9Rq",
}

PROJECT_TEST = """
import json
import socket

import httpx
import pytest
from websockets.sync.client import connect

SECRETS = json.loads({secrets!r})
# Every secret the transport carries but the pasted prompt key goes in the metadata too: the
# upstream echoes it in its events. (HTTP has no lane and no close reason.)
METADATA = {{k[:16]: v for k, v in SECRETS.items() if k not in ("prompt", "lane", "close_reason")}}
WS_METADATA = {{**METADATA, "lane": SECRETS["lane"], "close_reason": SECRETS["close_reason"]}}
HEADERS = {{
    "Authorization": "Bearer " + SECRETS["authorization"],
    "X-Api-Key": SECRETS["x_api_key"],
    "OpenAI-Organization": SECRETS["organization"],
    "X-Client-Credential": SECRETS["credential"],
    "X-Id-Jwt": SECRETS["jwt"],
    "X-Assertion": SECRETS["assertion"],
    "X-Request-Signature": SECRETS["signature"],
    "Cookie": "theme=dark; onboarding=completed; session=" + SECRETS["cookie"],
    "User-Agent": "leak-check/1.0 (+" + SECRETS["user_agent"] + ")",
}}
MCP = {{
    "type": "mcp",
    "server_label": "docs",
    "server_url": "https://mcp.example/" + SECRETS["mcp_url"] + "/sse",
    "authorization": SECRETS["mcp_authorization"],
    "headers": {{"X-Mcp-Token": SECRETS["mcp_header"]}},
    "require_approval": "never",
}}
REQUEST = {{
    "model": "gpt-5.2",
    "input": [{{"role": "user", "content": "my key is " + SECRETS["prompt"] + ", what is the weather?"}}],
    "tools": [MCP],
    "metadata": METADATA,
}}


@pytest.mark.rws_transports("http")
def test_http(rws):
    with httpx.Client(headers=HEADERS) as client:
        answer = client.post(
            rws.base_url + "/responses?api-key=" + SECRETS["query"], json={{**REQUEST, "stream": True}}
        )
    assert answer.status_code == 200, answer.text
    assert "response.completed" in answer.text


@pytest.mark.rws_transports("ws")
def test_ws(rws):
    url = rws.websocket_base_url + "/responses?api-key=" + SECRETS["query"]
    with connect(url, additional_headers=HEADERS, user_agent_header=HEADERS["User-Agent"]) as ws:
        lane = "worker-" + SECRETS["lane"]
        request = {{"type": "response.create", **REQUEST, "metadata": WS_METADATA, "stream_id": lane}}
        ws.send(json.dumps(request))
        while True:
            event = json.loads(ws.recv(timeout=5))
            # (The error, not the whole event: the event echoes this test's own lane name.)
            assert event["type"] != "error", event["error"]
            if event["type"] == "response.completed":
                assert event["stream_id"] == lane
                break
        ws.close(code=1000, reason="bye " + SECRETS["close_reason"])
"""


def _leaks(text: str) -> list[str]:
    """Every planted secret of which some 8-character piece appears in ``text``."""
    return [
        name
        for name, secret in SECRETS.items()
        if any(secret[i : i + 8] in text for i in range(len(secret) - 7))
    ]


def _written_files(root: Path) -> list[Path]:
    # The project's own sources (and Python's bytecode of them) hold the secrets by design.
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    ]


def _assert_nothing_leaked(project: Project, result: pytest.RunResult) -> None:
    terminal = result.stdout.str() + result.stderr.str()
    assert _leaks(terminal) == [], terminal
    for path in _written_files(project.path):
        leaked = _leaks(path.read_text(encoding="utf-8", errors="replace"))
        assert leaked == [], f"{path.name} leaks {leaked}"


def test_a_secret_in_any_position_never_leaks_and_the_recording_replays(project: Project, sim: Any) -> None:
    project.write("test_secrets", PROJECT_TEST.format(secrets=json.dumps(SECRETS)))
    reports = (
        "--rws-report=out/report.json",
        "--rws-report-html=out/report.html",
        "--junitxml=out/junit.xml",
    )
    recorded = project.record(sim, *reports)
    recorded.assert_outcomes(passed=2)
    _assert_nothing_leaked(project, recorded)
    cassettes = project.cassettes()
    assert len(cassettes) == 2
    for path in cassettes:
        text = path.read_text(encoding="utf-8")
        # Redaction keeps the protocol intact: the events still end the turn.
        assert "response.completed" in text
        assert "[redacted]" in text
    report = json.loads((project.path / "out" / "report.json").read_text(encoding="utf-8"))
    assert {t["transport"] for t in report["tests"]} == {"http", "ws"}

    replayed = project.replay(*reports)
    replayed.assert_outcomes(passed=2)
    _assert_nothing_leaked(project, replayed)

    # CI has other credentials: the redacted parts of the recording take whatever is sent there.
    source = project.path / "test_secrets.py"
    others = {name: secret[:-6] + "Zz9Yy8" for name, secret in SECRETS.items()}
    source.write_text(source.read_text().replace(json.dumps(SECRETS), json.dumps(others)))
    project.replay().assert_outcomes(passed=2)


def test_a_miss_report_never_shows_a_secret(project: Project, sim: Any) -> None:
    project.write("test_secrets", PROJECT_TEST.format(secrets=json.dumps(SECRETS)))
    project.record(sim).assert_outcomes(passed=2)
    # The same requests with another question: every turn misses, and the report shows the request.
    source = project.path / "test_secrets.py"
    source.write_text(source.read_text().replace("what is the weather?", "what is the time?"))
    replayed = project.replay("--junitxml=out/junit.xml")
    replayed.assert_outcomes(failed=2)
    replayed.stdout.fnmatch_lines(["*matched no recorded turn*"])
    assert "what is the time?" in replayed.stdout.str()
    _assert_nothing_leaked(project, replayed)


def test_an_unreachable_upstream_is_reported_without_the_key_in_the_url(project: Project) -> None:
    # Azure-style clients put the key in the query string; the failure names the upstream
    # URL, to the test report and to the client, without it.
    key = SECRETS["query"]
    project.write(
        "test_down",
        f"""
import json
import socket

import httpx
import pytest
from websockets.sync.client import connect

KEY = {key!r}

@pytest.mark.rws_transports("ws")
def test_ws(rws):
    with connect(rws.websocket_base_url + "/responses?api-key=" + KEY) as ws:
        ws.send(json.dumps({{"type": "response.create", "model": "gpt-5.2", "input": "hi"}}))
        print("client got", ws.recv(timeout=5))

@pytest.mark.rws_transports("http")
def test_http(rws):
    answer = httpx.post(rws.base_url + "/responses?api-key=" + KEY, json={{"model": "gpt-5.2", "input": "hi"}})
    print("client got", answer.status_code, answer.text)
""",
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    result = project.run(
        "--rws-record-mode=new_episodes", f"--rws-upstream=http://127.0.0.1:{closed_port}/v1", "-s"
    )
    result.assert_outcomes(failed=2)
    output = result.stdout.str() + result.stderr.str()
    assert "rws_upstream_unavailable" in output
    assert "recording failed" in output
    assert _leaks(output) == []


CLIENT_ERROR_TEST = """
import httpx, openai, pytest

KEY = {key!r}
WORDY = {wordy!r}
REQUEST = {{"model": "gpt-5.2", "input": "nothing recorded answers this"}}


@pytest.mark.rws_transports("http")
@pytest.mark.parametrize("key", [KEY, WORDY], ids=["token", "wordy"])
def test_httpx(rws, key):
    answer = httpx.post(rws.base_url + "/responses?api-key=" + key, json=REQUEST, timeout=5)
    answer.raise_for_status()  # its message quotes the URL


@pytest.mark.rws_transports("http")
def test_sdk(rws):
    client = rws.openai_client(default_query={{"api-key": WORDY}}, default_headers={{"X-Gateway-Token": KEY}})
    try:
        client.responses.create(**REQUEST)
    except openai.BadRequestError as error:
        raise RuntimeError(f"{{error.request.url}} {{error.request.headers}}") from error
"""


def test_the_clients_error_quoted_in_the_failure_never_shows_a_request_secret(project: Project) -> None:
    # The failure quotes the exception the client raised, and clients quote the request URL.
    # A credential that looks like a word (no token shape) is hidden because of where it was sent.
    wordy = "hunter2hunter2"
    project.write("test_client_error", CLIENT_ERROR_TEST.format(key=SECRETS["query"], wordy=wordy))
    result = project.replay("--junitxml=out/junit.xml")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["*the client saw: HTTPStatusError*", "*the client saw: RuntimeError*"])
    _assert_nothing_leaked(project, result)
    written = result.stdout.str() + (project.path / "out" / "junit.xml").read_text()
    assert wordy not in written and "hunter2h" not in written, written


def test_a_malformed_frame_is_shown_without_the_connections_secrets(project: Project) -> None:
    key = SECRETS["authorization"]
    project.write(
        "test_frame",
        f"""
import pytest
from websockets.sync.client import connect

KEY = {key!r}

@pytest.mark.rws_transports("ws")
def test_ws(rws):
    with connect(rws.websocket_base_url + "/responses", additional_headers={{"Authorization": "Bearer " + KEY}}) as ws:
        ws.send('{{"type": "response.create", "model": "gpt-5.2", "input": "my key: ' + KEY + '"')
        ws.recv(timeout=5)
""",
    )
    result = project.run("--rws-record-mode=none")
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "malformed client frame" in output
    assert "my key: [redacted]" in output
    assert _leaks(output) == []


SDK_TEST = """
import json

import pytest

ORG = {org!r}
TOOLS = [{{"type": "function", "name": "get_weather", "parameters": {{"type": "object", "properties": {{}}}}}}]
PROMPT = [{{"role": "user", "content": "Weather for the team of " + ORG + "?"}}]


def _outputs(response):
    return [
        {{"type": "function_call_output", "call_id": item.call_id, "output": "sunny"}}
        for item in response.output
        if item.type == "function_call"
    ]


def test_agent(rws):
    client = rws.openai_client(organization=ORG)
    settings = dict(model="gpt-5.2", tools=TOOLS, store=False, metadata={{"org": ORG}})
    if rws.transport == "ws":
        previous, items = None, PROMPT
        with client.responses.connect() as connection:
            while True:
                connection.response.create(input=items, previous_response_id=previous, **settings)
                for event in connection:
                    assert event.type != "error", event.error.message
                    if event.type == "response.completed":
                        break
                items = _outputs(event.response)
                if not items:
                    return
                previous = event.response.id
    history = list(PROMPT)
    while True:
        response = client.responses.create(input=history, **settings)
        outputs = _outputs(response)
        if not outputs:
            return
        history += [item.to_dict() for item in response.output] + outputs
"""


def test_an_org_id_in_headers_metadata_and_prompt_replays_with_the_sdk(project: Project, sim: Any) -> None:
    # The org id travels in the OpenAI-Organization header and in the body: stored redacted, the
    # recording still replays, to the same org id and to another one (a CI account).
    org = SECRETS["organization"]
    project.write("test_org", SDK_TEST.format(org=org))
    project.record(sim).assert_outcomes(passed=2)
    for path in project.cassettes():
        text = path.read_text(encoding="utf-8")
        assert _leaks(text) == []
        assert text.count('"org": "[redacted]"') >= 5  # one per turn of the tool loop
    project.replay().assert_outcomes(passed=2)
    source = project.path / "test_org.py"
    source.write_text(source.read_text().replace(org, "org-CiAccount0123456789abcdef"))
    project.replay().assert_outcomes(passed=2)
