"""``pytest-responses-ws serve``: cassettes replayed outside pytest, to clients in any language.

The cassettes are the simulator's answers to a two-turn tool loop; the client is a Node
script with no package (plain fetch, and a WebSocket client of its own), run when ``node``
is installed.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_responses_ws.cassette.model import Cassette, RecordedEvent, RecordedWith, Turn
from pytest_responses_ws.cassette.store import write_cassette_atomically
from pytest_responses_ws.sim import ConnectionState, Script, Simulator

NODE_CLIENT = Path(__file__).parent / "support" / "serve_client.mjs"
#: Bound on each wait for the server process (its start, its output, its exit).
WAIT_S = 30.0
TOOLS = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]
QUESTION = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather?"}]}


def _tool_loop_cassette(transport: str) -> Cassette:
    """Two turns answered by the simulator: a tool call, then the text after its output."""
    simulator = Simulator(Script.tool_loop(1, final_text="It is 18 degrees."))
    first = {"model": "gpt-5.2", "input": [QUESTION], "tools": TOOLS}
    first_events = simulator.respond(first, connection=ConnectionState())
    call = first_events[-1]["response"]["output"][0]
    output = {"type": "function_call_output", "call_id": call["call_id"], "output": '{"temperature": 18}'}
    second = {**first, "previous_response_id": first_events[-1]["response"]["id"], "input": [output]}
    second_events = simulator.respond(second, connection=ConnectionState())
    turns = tuple(
        Turn(
            request=request,
            events=tuple(RecordedEvent(float(i), e) for i, e in enumerate(events)),
            transport=transport,
        )  # type: ignore[arg-type]
        for request, events in ((first, first_events), (second, second_events))
    )
    return Cassette(turns, RecordedWith("test", transport), "2026-12-07T00:00:00Z")  # type: ignore[arg-type]


@dataclass
class Running:
    process: subprocess.Popen[str]
    urls: dict[str, tuple[str, str]]
    stdout: list[str]

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str]:
        self.process.send_signal(signum)
        _, err = self.process.communicate(timeout=WAIT_S)
        return self.process.returncode, err


@pytest.fixture
def cassettes(tmp_path: Path) -> Path:
    folder = tmp_path / "cassettes"
    write_cassette_atomically(folder / "weather" / "loop.json", _tool_loop_cassette("ws"))
    write_cassette_atomically(folder / "weather" / "loop_http.json", _tool_loop_cassette("http"))
    (folder / "package.json").write_text('{"name": "not a cassette"}', encoding="utf-8")
    return folder


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> Running:
        process = subprocess.Popen(
            [sys.executable, "-m", "pytest_responses_ws.cli", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        lines: list[str] = []
        ready = threading.Event()

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line.rstrip("\n"))
                if line.startswith("ready"):
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        assert ready.wait(WAIT_S), "serve printed no ready line in time"
        assert lines and lines[-1].startswith("ready"), (lines, process.stderr and process.stderr.read())
        urls = {}
        for index, line in enumerate(lines):
            if line.startswith("  http: "):
                urls[Path(lines[index - 1]).stem] = (line.split()[-1], lines[index + 1].split()[-1])
        return Running(process, urls, lines)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(WAIT_S)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: the Node client needs it")
def test_a_node_client_replays_over_both_transports_and_a_miss_fails_the_run(
    cassettes: Path, serve: Any, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    running = serve(str(cassettes), "--report", str(report))
    assert sorted(running.urls) == ["loop", "loop_http"]  # package.json is no cassette
    http_base, ws_base = running.urls["loop_http"][0], running.urls["loop"][1]
    assert http_base.startswith("http://127.0.0.1:") and ws_base.startswith("ws://127.0.0.1:")
    assert running.urls["loop"][0] == "http" + ws_base[2:]
    client = subprocess.run(
        ["node", str(NODE_CLIENT), http_base, ws_base], capture_output=True, text=True, timeout=60
    )
    assert client.returncode == 0, client.stderr
    seen = json.loads(client.stdout)
    recorded = [turn.events[-1].data["response"] for turn in _tool_loop_cassette("ws").turns]
    for transport in ("http", "ws"):
        assert [turn["output"] for turn in seen[transport]] == [r["output"] for r in recorded]
        assert [turn["id"] for turn in seen[transport]] == [r["id"] for r in recorded]
    assert "response.function_call_arguments.delta" in seen["ws"][0]["types"]
    assert seen["miss"] == {"status": 400, "error": "rws_cassette_miss"}
    status, err = running.stop()
    assert status == 1, err
    assert f"FAILED ({cassettes / 'weather' / 'loop_http.json'})" in err
    assert "matched no recorded turn" in err and "Something nobody recorded" in err
    assert "5 requests, 1 failures, 0 budgets exceeded" in err
    document = json.loads(report.read_text(encoding="utf-8"))
    turns = {(test["test"], test["transport"]): test["turns"] for test in document["tests"]}
    assert turns == {("weather.loop_http", "http"): 3, ("weather.loop", "ws"): 2}


def test_a_clean_session_exits_0_on_sigint_and_budgets_fail_it(cassettes: Path, serve: Any) -> None:
    import urllib.request

    def first_turn(base: str) -> str:
        body = json.dumps({"model": "gpt-5.2", "input": [QUESTION], "tools": TOOLS, "stream": True}).encode()
        request = urllib.request.Request(
            f"{base}/responses", data=body, headers={"content-type": "application/json"}
        )
        # Straight to loopback, whatever proxy the environment names.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=WAIT_S) as answer:
            return str(answer.read().decode())

    running = serve(str(cassettes / "weather" / "loop_http.json"), "--strict", "on")
    assert any(line.startswith("export OPENAI_BASE_URL=http://127.0.0.1:") for line in running.stdout)
    assert "event: response.completed" in first_turn(running.urls["loop_http"][0])
    status, err = running.stop(signal.SIGINT)
    assert status == 0, err
    assert "1 requests, 0 failures" in err
    limited = serve(str(cassettes / "weather" / "loop_http.json"), "--budget", "input_items=0")
    first_turn(limited.urls["loop_http"][0])
    status, err = limited.stop()
    assert status == 1
    assert "budget exceeded" in err and "1 budgets exceeded" in err


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--host", "0.0.0.0"], "serve listens on loopback only"),
        (["--volatile", "re:("], "not a valid regular expression"),
        (["--budget", "nonsense"], "expected METRIC=VALUE"),
        (["--budget", "speed=1"], "unknown budget metric 'speed'"),
    ],
)
def test_bad_options_stop_it_in_one_line(cassettes: Path, args: list[str], problem: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest_responses_ws.cli", "serve", str(cassettes), *args],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert result.returncode == 2
    assert problem in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_unreadable_cassette_or_an_empty_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text('{"format": "pytest-responses-ws/cassette", "turns": 3}')
    (tmp_path / "empty").mkdir()
    for target, problem in (
        (tmp_path, "broken.json"),
        (tmp_path / "empty", "no pytest-responses-ws cassettes"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "pytest_responses_ws.cli", "serve", str(target)],
            capture_output=True,
            text=True,
            timeout=WAIT_S,
        )
        assert result.returncode == 2 and problem in result.stderr, result.stderr
