"""The loopback server runs without pytest: ``server/`` imports nothing that imports it.

A command that serves cassettes outside a test run (and any tool embedding the server)
needs this; the test proves it in a fresh interpreter where importing pytest fails.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SERVE_WITHOUT_PYTEST = textwrap.dedent(
    """
    import json
    import sys
    import urllib.request
    from pathlib import Path

    # Any import of pytest (or of its internals) from here on raises ImportError.
    sys.modules["pytest"] = None
    sys.modules["_pytest"] = None

    from websockets.sync.client import connect

    from pytest_responses_ws.cassette.model import Cassette, RecordedEvent, RecordedWith, Turn
    from pytest_responses_ws.server.app import LoopbackServer
    from pytest_responses_ws.server.mount import Mount
    from pytest_responses_ws.settings import RecordMode, Settings

    REQUEST = {"model": "gpt-5.2", "input": "Weather in Paris?"}
    RESPONSE = {"id": "resp_1", "object": "response", "status": "completed", "output": []}
    EVENTS = (
        RecordedEvent(1.0, {"type": "response.created", "sequence_number": 0,
                            "response": {**RESPONSE, "status": "in_progress"}}),
        RecordedEvent(2.0, {"type": "response.completed", "sequence_number": 1, "response": RESPONSE}),
    )


    def mount_for(server, transport):
        turn = Turn(request={"type": "response.create", **REQUEST}, events=EVENTS, transport=transport)
        cassette = Cassette((turn,), RecordedWith("test", transport), "2026-01-01T00:00:00Z")
        mount = Mount(
            server.new_mount_id(),
            Settings(record_mode=RecordMode.NONE),
            Path("no-such-dir") / f"{transport}.json",
            cassette,
            record_command="(not recorded)",
            transport=transport,
        )
        server.add(mount)
        return mount


    server = LoopbackServer().start()
    try:
        ws_mount = mount_for(server, "ws")
        with connect(server.websocket_base_url(ws_mount) + "/responses", open_timeout=5) as ws:
            ws.send(json.dumps({"type": "response.create", **REQUEST}))
            types = [json.loads(ws.recv(timeout=5))["type"] for _ in EVENTS]
        assert types == ["response.created", "response.completed"], types
        assert server.remove(ws_mount) == []

        http_mount = mount_for(server, "http")
        request = urllib.request.Request(
            server.base_url(http_mount) + "/responses",
            data=json.dumps({**REQUEST, "stream": True}).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 200, answer.status
            body = answer.read().decode()
        assert "event: response.completed" in body, body
        assert server.remove(http_mount) == []
    finally:
        server.stop()
    print("served without pytest")
    """
)


def test_the_loopback_server_replays_over_both_transports_without_pytest() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SERVE_WITHOUT_PYTEST], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "served without pytest"
