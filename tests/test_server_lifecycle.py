"""The loopback server starts on demand, stops cleanly, and says so when it cannot start."""

from __future__ import annotations

import socket
import threading

import pytest

from pytest_responses_ws.errors import ServerStartError
from pytest_responses_ws.server.app import LoopbackServer
from pytest_responses_ws.server.runner import LoopbackRunner

from support.project import Project


def _rws_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("rws-loopback")]


def test_start_and_stop_leave_no_thread_and_free_the_port() -> None:
    server = LoopbackServer().start()
    port = server.runner.port
    assert _rws_threads()
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    server.stop()
    assert not _rws_threads()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        async def app(scope: object, receive: object, send: object) -> None:
            return None

        with pytest.raises(ServerStartError, match=f"could not listen on 127.0.0.1:{port}"):
            LoopbackRunner(app, port=port).start()
    assert not _rws_threads()


def test_a_pytest_run_stops_its_server(project: Project, sim: object) -> None:
    project.write(
        "test_agent",
        "import agent_loops\n\ndef test_weather(rws):\n    agent_loops.run(rws.openai_client(), rws.transport)\n",
    )
    project.record(sim).assert_outcomes(passed=2)  # type: ignore[arg-type]
    project.replay().assert_outcomes(passed=2)
    assert not _rws_threads()  # both in-process runs stopped their servers at unconfigure
