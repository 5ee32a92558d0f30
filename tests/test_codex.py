"""The Codex CLI as a client: recorded over WebSocket mode, replayed over both transports.

``test_codex_cli_records_and_replays`` runs only where the ``codex`` command is installed
(``npm install @openai/codex``, ~424 MB: CI does not install it). It records ``codex exec``
from the simulator through a custom model provider, then replays over HTTP and WebSocket
mode with the ``codex`` volatile preset. ``tests/data/codex/codex_say_hi.json`` is a
cassette that test recorded; the other tests here replay it without Codex, as Codex sent it,
on a later day, from another folder, with new session ids.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from pytest_responses_ws.sim import Script, Text, serve_simulator

from support.project import Project

CODEX_CASSETTE = Path(__file__).parent / "data" / "codex" / "codex_say_hi.json"
ANSWER = "Hi there from the simulator."

CODEX_TEST = '''
import os, shutil, subprocess, pytest

# No network but the loopback mount: updates and analytics off, no retries, a fake key.
CONFIG = """
model = "gpt-5.2"
model_provider = "rws"
check_for_update_on_startup = false

[analytics]
enabled = false

# Plugins sync a curated catalog from chatgpt.com and GitHub at start-up.
[features]
plugins = false

[model_providers.rws]
name = "pytest-responses-ws"
base_url = "{base_url}"
env_key = "OPENAI_API_KEY"
wire_api = "responses"
supports_websockets = {websockets}
request_max_retries = 0
stream_max_retries = 0
"""

@pytest.mark.rws_cassette(os.environ["RWS_CODEX_CASSETTE"], volatile=["codex"])
def test_codex(rws, tmp_path):
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(
        CONFIG.format(base_url=rws.base_url, websockets="true" if rws.transport == "ws" else "false")
    )
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "OPENAI_API_KEY") or k.lower().endswith("proxy")}
    env.update(HOME=str(home), CODEX_HOME=str(home))
    run = subprocess.run(
        [shutil.which("codex"), "exec", "--skip-git-repo-check", "-s", "read-only", "say hi"],
        cwd=work, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "ANSWER" in run.stdout
    # Over WebSocket Codex warms the connection up first (generate: false).
    assert len(rws.turns) == (2 if rws.transport == "ws" else 1)
'''.replace("ANSWER", ANSWER)


@pytest.mark.skipif(
    shutil.which("codex") is None, reason="the codex CLI is not installed (npm install @openai/codex)"
)
@pytest.mark.parametrize("recorded_over", ["ws", "http"])
def test_codex_cli_records_and_replays(project: Project, recorded_over: str) -> None:
    project.write("test_codex_exec", CODEX_TEST)
    project.monkeypatch.setenv("RWS_CODEX_CASSETTE", f"codex_say_hi_{recorded_over}")
    with serve_simulator(Script([Text(ANSWER)])) as sim:
        project.record(sim, f"--rws-transports={recorded_over}").assert_outcomes(passed=1)
        generate = [request.get("generate") for request in sim.simulator.requests]
    (cassette,) = project.cassettes()
    turns = json.loads(cassette.read_text(encoding="utf-8"))["turns"]
    if recorded_over == "ws":
        assert generate == [False, None]
        assert turns[0]["request"]["generate"] is False and turns[1]["request"]["previous_response_id"]
    else:
        assert generate == [None] and len(turns) == 1
    # Replayed the next run from another temporary folder, with another session, over both:
    # over WebSocket from an HTTP recording, the warm-up is answered without a recorded turn.
    result = project.replay("-v")
    result.assert_outcomes(passed=2)


# -- the committed Codex cassette, replayed without Codex -----------------------------------------

REPLAY_CODEX_REQUESTS = """
import json, os, pytest
import urllib.request
from websockets.sync.client import connect

REQUESTS = json.loads(os.environ["RWS_CODEX_REQUESTS"])

@pytest.mark.rws_cassette("codex_say_hi", **json.loads(os.environ["RWS_CODEX_OPTIONS"]))
def test_codex_requests(rws):
    warm_up, turn = REQUESTS
    if rws.transport == "ws":
        with connect(rws.websocket_base_url + "/responses", open_timeout=10) as ws:
            ws.send(json.dumps(warm_up))
            events = [json.loads(ws.recv(timeout=10)) for _ in range(3)]
            assert events[-1]["type"] == "response.completed", events
            ws.send(json.dumps({**turn, "previous_response_id": events[-1]["response"]["id"]}))
            while True:
                event = json.loads(ws.recv(timeout=10))
                if event["type"] in ("response.completed", "error"):
                    break
        assert event["type"] == "response.completed", event
        text = event["response"]["output"][0]["content"][0]["text"]
    else:
        # Codex over HTTP sends no warm-up: one request with the whole conversation.
        body = {k: v for k, v in turn.items() if k not in ("type", "previous_response_id", "stream")}
        body["input"] = warm_up["input"] + turn["input"]
        request = urllib.request.Request(
            rws.base_url + "/responses", data=json.dumps(body).encode(), headers={"content-type": "application/json"}
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
        with opener.open(request, timeout=10) as answer:
            text = json.loads(answer.read())["output"][0]["content"][0]["text"]
    assert text == "ANSWER"
""".replace("ANSWER", ANSWER)


def _shift_dates(value: Any, days: int) -> Any:
    """``value`` with every ISO date in its strings moved by ``days``."""
    if isinstance(value, str):
        return re.sub(
            r"\b(\d{4})-(\d{2})-(\d{2})\b",
            lambda m: (_dt.date(*map(int, m.groups())) + _dt.timedelta(days=days)).isoformat(),
            value,
        )
    if isinstance(value, dict):
        return {key: _shift_dates(item, days) for key, item in value.items()}
    if isinstance(value, list):
        return [_shift_dates(item, days) for item in value]
    return value


def _todays_requests(cassette: dict[str, Any], *, moved: bool) -> list[dict[str, Any]]:
    """The recorded Codex requests as a later run sends them: new session ids and, ``moved``,
    from another folder (another machine, or pytest's next temporary folder)."""
    requests = [copy.deepcopy(turn["request"]) for turn in cassette["turns"]]
    text = json.dumps(requests)
    recorded_cwd = re.search(r"<cwd>([^<]*)</cwd>", text)
    assert recorded_cwd is not None
    if moved:
        text = text.replace(recorded_cwd.group(1), "/tmp/pytest-of-ci/pytest-7/test_codex0/work")
    session = requests[0]["prompt_cache_key"]
    text = text.replace(session, "019b0000-aaaa-7bbb-8ccc-0123456789ab")
    requests = json.loads(text)
    for request in requests:
        request["client_metadata"]["x-codex-ws-stream-request-start-ms"] = "1800000000000"
    return requests


@pytest.fixture
def recorded_yesterday(project: Project) -> dict[str, Any]:
    """The committed Codex cassette, as if recorded the day before (its dates shifted back a day)."""
    cassette = json.loads(CODEX_CASSETTE.read_text(encoding="utf-8"))
    derived = {
        **cassette,
        "turns": [{**t, "request": _shift_dates(t["request"], -1)} for t in cassette["turns"]],
    }
    assert derived["turns"] != cassette["turns"]  # the recording has a date to shift
    target = project.path / "cassettes" / "test_codex_requests" / "codex_say_hi.json"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(derived, indent=1), encoding="utf-8")
    project.write("test_codex_requests", REPLAY_CODEX_REQUESTS)
    return cassette


def test_a_codex_cassette_from_yesterday_replays_today_with_the_codex_preset(
    project: Project, recorded_yesterday: dict[str, Any]
) -> None:
    project.monkeypatch.setenv(
        "RWS_CODEX_REQUESTS", json.dumps(_todays_requests(recorded_yesterday, moved=True))
    )
    project.monkeypatch.setenv("RWS_CODEX_OPTIONS", json.dumps({"volatile": ["codex"]}))
    project.replay().assert_outcomes(passed=2)


def test_without_the_preset_it_misses_and_the_report_shows_the_date(
    project: Project, recorded_yesterday: dict[str, Any]
) -> None:
    # The same folder: the date is what differs in the environment context.
    project.monkeypatch.setenv(
        "RWS_CODEX_REQUESTS", json.dumps(_todays_requests(recorded_yesterday, moved=False))
    )
    project.monkeypatch.setenv("RWS_CODEX_OPTIONS", json.dumps({}))
    result = project.replay()
    result.assert_outcomes(failed=2)
    output = result.stdout.str()
    # The long environment context is shown where it differs: the date, not its first 100 characters.
    today = re.search(r"<current_date>([^<]*)<", json.dumps(recorded_yesterday)).group(1)  # type: ignore[union-attr]
    yesterday = _shift_dates(today, -1)
    (line,) = {
        line.strip() for line in output.splitlines() if "differ from character" in line and "<current" in line
    }
    assert (
        f"<current_date>{yesterday}</current_date>" in line
        and f"<current_date>{today}</current_date>" in line
    )
    assert "/prompt_cache_key" in output
