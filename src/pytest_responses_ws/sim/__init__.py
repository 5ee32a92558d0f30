"""A simulated Responses API upstream, over HTTP+SSE and WebSocket mode, on loopback.

In a test, script what the model answers and the plugin serves it (no cassette, no key)::

    from pytest_responses_ws.sim import FunctionCall, Text

    @pytest.mark.rws_script(FunctionCall("get_weather", {"city": "Paris"}), Text("Sunny in Paris."))
    def test_agent(rws): ...

``--rws-upstream=sim`` records cassettes from it. Outside pytest it serves on its own::

    with serve_simulator(Script.tool_loop(3)) as sim:
        client = OpenAI(base_url=sim.url, api_key="sk-test")
"""

from __future__ import annotations

from .app import SimulatorApp, SimulatorServer, serve_simulator
from .hub import SimulatorHub
from .script import Error, FunctionCall, Reply, Script, ScriptRequest, Step, Text
from .simulator import Answer, ConnectionState, ScriptError, Simulator

__all__ = [
    "Answer",
    "ConnectionState",
    "Error",
    "FunctionCall",
    "Reply",
    "Script",
    "ScriptError",
    "ScriptRequest",
    "Simulator",
    "SimulatorApp",
    "SimulatorHub",
    "SimulatorServer",
    "Step",
    "Text",
    "serve_simulator",
]
