"""Re-record the example cassettes from the package's simulated upstream.

The committed cassettes were made this way, because this repository's machines have
no route to the real API. To record from the real API instead, run
``pytest examples --rws-record-mode=rewrite`` with OPENAI_API_KEY set.

    python examples/record_from_simulator.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from pytest_responses_ws.sim import FunctionCall, Script, Text, serve_simulator

HERE = Path(__file__).parent
FORECAST_TEXT = {"Paris": "Paris is 18°C and sunny", "Oslo": "Oslo is 4°C and cloudy"}


def script_for(cities: list[str]) -> Script:
    steps: list[Any] = [FunctionCall("get_weather", {"city": city}) for city in cities]
    steps.append(Text(". ".join(FORECAST_TEXT[c] for c in cities) + "."))
    return Script(steps)


def main() -> int:
    # One simulator per test selection, each scripted for the cities its question names.
    # The recovery tests record with their faults injected in front of the simulator, over
    # both transports (some faults exist on one only): the cassette holds what the client
    # did to recover, as the service answered it.
    runs = [
        (["Paris", "Oslo"], "both_cities or agents", "ws"),
        (["Paris"], "Paris", "ws"),
        (["Oslo"], "Oslo", "ws"),
        (["Paris", "Oslo"], "test_recovery", "ws,http"),
        # openai-node in a node subprocess (skipped where node or its packages are missing).
        (["Paris", "Oslo"], "test_node_agent", "ws"),
    ]
    status = 0
    for cities, selector, transports in runs:
        with serve_simulator(script_for(cities), event_delay_s=0.002) as sim:
            # The agents SDK exports traces to the real API by itself: not from here.
            env = {
                **os.environ,
                "OPENAI_API_KEY": "simulated-not-a-real-key",
                "OPENAI_AGENTS_DISABLE_TRACING": "1",
            }
            status |= subprocess.call(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    str(HERE / "tests"),
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    "--rws-record-mode=rewrite",
                    f"--rws-upstream={sim.url}",
                    f"--rws-transports={transports}",
                    "-k",
                    selector,
                ],
                env=env,
            )
    print(
        json.dumps(
            {"cassettes": sorted(str(p.relative_to(HERE)) for p in HERE.rglob("cassettes/**/*.json"))},
            indent=2,
        )
    )
    return status


if __name__ == "__main__":
    raise SystemExit(main())
