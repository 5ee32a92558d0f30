#!/usr/bin/env python
"""Does the first test of a session measure the same loop as the later ones?

For each client variant (sync/async, streamed/not, HTTP/WebSocket, openai-agents), a
generated pytest project holds one test function parametrized ``--reps`` times, each
repetition replaying the same committed example cassette. The project runs in a fresh
``python -m pytest`` process per variant, so the first repetition is the first test of the
session, as in a real suite. ``--rws-report`` gives every turn's overhead; the output
compares the first test with the median of the later ones:

* ``first med`` / ``first max``: the first test's median and largest per-turn overhead;
* ``later med`` / ``later max``: the median over the later tests of their median and
  largest per-turn overhead;
* ``ratio``: first max / later max. The target is at most 1.2x.

Run ``python benchmarks/bench_first_test.py --help`` for the options; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
CASSETTES = EXAMPLES / "tests" / "cassettes" / "test_weather_agent"

#: variant name -> (transport, cassette stem, test body). ``rws`` and ``weather_agent`` are in scope.
VARIANTS: dict[str, tuple[str, str, str]] = {
    "sync-http-stream": ("http", "test_answers_with_both_cities", "sync_loop(rws, 'stream')"),
    "sync-http-create-stream": ("http", "test_answers_with_both_cities", "sync_loop(rws, 'create-stream')"),
    "sync-http-create": ("http", "test_answers_with_both_cities", "sync_loop(rws, 'create')"),
    "sync-ws": ("ws", "test_answers_with_both_cities", "sync_loop(rws, 'ws')"),
    "async-http-stream": ("http", "test_answers_with_both_cities_async", "await async_loop(rws, 'stream')"),
    "async-http-create": ("http", "test_answers_with_both_cities_async", "await async_loop(rws, 'create')"),
    "async-ws": ("ws", "test_answers_with_both_cities_async", "await async_loop(rws, 'ws')"),
    "agents-http": ("http", "test_openai_agents_weather", "await agents_loop(rws)"),
    "agents-ws": ("ws", "test_openai_agents_weather", "await agents_loop(rws)"),
}

TEST_MODULE = '''
import json

import pytest

import weather_agent

QUESTION = "What's the weather in Paris and Oslo?"
ARGS = dict(model=weather_agent.MODEL, instructions=weather_agent.INSTRUCTIONS, tools=weather_agent.TOOLS, store=False)


def _tool_outputs(response, history):
    outputs = weather_agent._run_tools(response.output, weather_agent.AgentResult(answer=""))
    history += [weather_agent._as_input(item) for item in response.output] + outputs
    return outputs


def sync_loop(rws, how):
    client = rws.openai_client()
    if how == "ws":
        return weather_agent.ask_over_websocket(client, QUESTION)
    if how == "stream":
        return weather_agent.ask_over_http(client, QUESTION)
    history = [{"role": "user", "content": QUESTION}]
    while True:
        if how == "create":
            response = client.responses.create(input=history, **ARGS)
        else:
            for event in client.responses.create(input=history, stream=True, **ARGS):
                if event.type == "response.completed":
                    response = event.response
        if not _tool_outputs(response, history):
            return response.output_text


async def async_loop(rws, how):
    client = rws.async_openai_client()
    if how in ("ws", "stream"):
        return await weather_agent.ask_async(client, rws.transport, QUESTION)
    history = [{"role": "user", "content": QUESTION}]
    while True:
        response = await client.responses.create(input=history, **ARGS)
        if not _tool_outputs(response, history):
            return response.output_text


async def agents_loop(rws):
    from agents import Agent, Runner, function_tool

    @function_tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        return str(weather_agent.get_weather(city))

    agent = Agent(name="weather", instructions=weather_agent.INSTRUCTIONS, tools=[get_weather], model="gpt-5.2")
    result = await Runner.run(agent, QUESTION, run_config=rws.agents_run_config())
    assert "Paris" in result.final_output
'''

TEST_FUNCTION = """

@pytest.mark.rws_cassette({stem!r})
@pytest.mark.parametrize("rep", range({reps}), ids=lambda n: f"rep{{n:03d}}")
{prefix}def test_{name}(rws, rep):
    {body}
"""


@dataclass
class Figures:
    first_median: float
    first_max: float
    later_median: float
    later_max: float

    @property
    def ratio(self) -> float:
        return self.first_max / self.later_max if self.later_max else float("nan")


def build_project(directory: Path, reps: int) -> None:
    shutil.copy(EXAMPLES / "weather_agent.py", directory / "weather_agent.py")
    shutil.copytree(CASSETTES, directory / "cassettes" / "test_bench")
    (directory / "conftest.py").write_text("")
    (directory / "pytest.ini").write_text("[pytest]\nasyncio_mode = strict\n")
    source = TEST_MODULE
    for variant, (_, stem, body) in VARIANTS.items():
        asynchronous = body.startswith("await")
        source += TEST_FUNCTION.format(
            stem=stem,
            reps=reps,
            name=variant.replace("-", "_"),
            body=body,
            prefix="@pytest.mark.asyncio\nasync " if asynchronous else "",
        )
    (directory / "test_bench.py").write_text(source)


def run_variant(directory: Path, variant: str, extra: list[str]) -> Figures:
    transport = VARIANTS[variant][0]
    report = directory / f"report-{variant}.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["OPENAI_AGENTS_DISABLE_TRACING"] = "1"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        f"test_bench.py::test_{variant.replace('-', '_')}",
        f"--rws-transports={transport}",
        "--rws-budgets=off",
        f"--rws-report={report}",
        *extra,
    ]
    done = subprocess.run(command, cwd=directory, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{variant}: pytest failed\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}")
    tests = json.loads(report.read_text())["tests"]
    tests.sort(key=lambda test: int(re.search(r"rep(\d+)", test["nodeid"]).group(1)))  # type: ignore[union-attr]
    per_test = []
    for test in tests:
        values = [turn["overhead_ms"] for turn in test["turn_metrics"] if turn["overhead_ms"] is not None]
        per_test.append((statistics.median(values), max(values)))
    first, later = per_test[0], per_test[1:]
    return Figures(
        first_median=first[0],
        first_max=first[1],
        later_median=statistics.median(m for m, _ in later),
        later_max=statistics.median(m for _, m in later),
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=8, help="identical tests per run (default 8)")
    parser.add_argument("--runs", type=int, default=3, help="pytest runs per variant (default 3)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset")
    parser.add_argument("--keep", type=Path, help="generate the project here and keep it")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--fail-above", type=float, help="exit 1 if a median ratio is above this")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    options = parser.parse_args()
    variants = [v for v in options.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; expected {', '.join(VARIANTS)}")

    directory = options.keep or Path(tempfile.mkdtemp(prefix="rws-first-test-"))
    if options.keep and directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    build_project(directory, options.reps)
    print(f"{options.reps} identical tests per run, {options.runs} runs per variant; load {os.getloadavg()}")
    print(
        f"{'variant':<24} {'first med':>9} {'first max':>9} {'later med':>9} {'later max':>9} {'ratio':>6}  runs"
    )
    results: dict[str, list[Figures]] = {}
    worst = 0.0
    started = time.monotonic()
    for variant in variants:
        runs = [run_variant(directory, variant, options.pytest_args) for _ in range(options.runs)]
        results[variant] = runs
        median_ratio = statistics.median(run.ratio for run in runs)
        worst = max(worst, median_ratio)
        pick = sorted(runs, key=lambda run: run.ratio)[len(runs) // 2]
        print(
            f"{variant:<24} {pick.first_median:9.2f} {pick.first_max:9.2f} {pick.later_median:9.2f}"
            f" {pick.later_max:9.2f} {median_ratio:6.2f}  " + " ".join(f"{run.ratio:.2f}" for run in runs)
        )
    print(
        f"(ms; row = the run with the median ratio; {time.monotonic() - started:.0f} s; load {os.getloadavg()})"
    )
    if options.json:
        options.json.write_text(json.dumps({v: [vars(r) for r in rs] for v, rs in results.items()}, indent=2))
    if not options.keep:
        shutil.rmtree(directory, ignore_errors=True)
    if options.fail_above is not None and worst > options.fail_above:
        print(f"a median ratio is {worst:.2f}, above {options.fail_above}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
