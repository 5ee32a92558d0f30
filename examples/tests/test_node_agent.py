"""The weather agent written with openai-node, run as a ``node`` subprocess over both transports.

The plugin's server is real, on loopback, so a client in another language needs nothing but
the environment the ``rws`` fixture sets: ``OPENAI_BASE_URL`` (openai-node's ``ResponsesWS``
derives its WebSocket URL from it) and, while replaying, a placeholder ``OPENAI_API_KEY``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).parents[1] / "node"
QUESTION = "What's the weather in Paris and Oslo?"
#: Bound on one run of the Node agent.
RUN_TIMEOUT_S = 60


def _node_agent() -> list[str]:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the Node example needs node 20 or later")
    if not (NODE_DIR / "node_modules" / "openai").is_dir():
        pytest.skip("examples/node has no packages: run bash scripts/setup-node-example.sh (npm ci)")
    return ["node", str(NODE_DIR / "weather_agent.mjs")]


# Over WebSocket one connection, and only the new items go out each turn (node's fetch may
# open a second HTTP connection between turns, so HTTP has no connection limit here).
@pytest.mark.rws_budget(connections={"ws": 1}, resent_items={"ws": 0})
def test_node_agent_answers_with_both_cities(rws):
    command = _node_agent()
    run = subprocess.run(
        [*command, rws.transport, QUESTION], capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["toolCalls"] == ["Paris", "Oslo"]
    assert "Paris" in result["answer"] and "Oslo" in result["answer"]
    assert result["turns"] == 3
    assert len(rws.turns) == 3
