"""Many simulated upstreams behind one loopback port, one per test.

The plugin records scripted tests (and ``--rws-upstream=sim``) through its recording proxy
from a simulator served here, so a cassette recorded from the simulator went through the
same path as one recorded from the service. Each test gets its own :class:`SimulatorApp`
under ``/sim/<key>/v1``; the hub starts on first use and serves until the run ends.
"""

from __future__ import annotations

import threading

from ..core.replay import compact
from ..server.common import error_body
from ..server.runner import LoopbackRunner, Receive, Scope, Send
from .app import CLOSE_POLICY_VIOLATION, SimulatorApp

__all__ = ["SimulatorHub"]

_PREFIX = "/sim/"


class SimulatorHub:
    """Routes ``/sim/<key>/...`` to the simulator registered under ``key``."""

    def __init__(self) -> None:
        self._apps: dict[str, SimulatorApp] = {}
        self._lock = threading.Lock()
        self._runner: LoopbackRunner | None = None

    def add(self, key: str, app: SimulatorApp) -> str:
        """Serve ``app`` under ``key`` (starting the hub on first use); returns its base URL."""
        with self._lock:
            if self._runner is None:
                self._runner = LoopbackRunner(self, name="rws-sim-hub").start()
            self._apps[key] = app
            return f"http://{self._runner.host}:{self._runner.port}{_PREFIX}{key}/v1"

    def get(self, key: str) -> SimulatorApp | None:
        """The simulator registered under ``key``, if any."""
        with self._lock:
            return self._apps.get(key)

    def remove(self, key: str) -> None:
        """Stop serving ``key`` (a client left over gets a 404)."""
        with self._lock:
            self._apps.pop(key, None)

    def stop(self) -> None:
        """Stop the hub's server (bounded, see :class:`LoopbackRunner`)."""
        with self._lock:
            runner, self._runner = self._runner, None
            self._apps.clear()
        if runner is not None:
            runner.stop()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        key = path[len(_PREFIX) :].partition("/")[0] if path.startswith(_PREFIX) else ""
        app = self.get(key) if key else None
        if app is not None:
            await app(scope, receive, send)
            return
        if scope["type"] == "http":
            body = error_body(
                message=f"no simulator is serving {path} (its test has ended)",
                error_type="invalid_request_error",
                code=None,
                param=None,
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 404,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": compact(body).encode()})
        elif scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": CLOSE_POLICY_VIOLATION})
