"""A simulated Responses API upstream, over HTTP+SSE and WebSocket mode, on loopback.

The project's own tests record from it instead of the internet::

    with serve_simulator(Script.tool_loop(3)) as sim:
        client = OpenAI(base_url=sim.url, api_key="sk-test")
"""

from __future__ import annotations

from .app import SimulatorApp, SimulatorServer, serve_simulator
from .script import FunctionCall, Script, Step, Text
from .simulator import ConnectionState, Simulator

__all__ = [
    "ConnectionState",
    "FunctionCall",
    "Script",
    "Simulator",
    "SimulatorApp",
    "SimulatorServer",
    "Step",
    "Text",
    "serve_simulator",
]
