#!/usr/bin/env python
"""A whole suite: wall time and peak memory, pytest-responses-ws against vcrpy + pytest-recording.

Run: ``python benchmarks/bench_suite.py [--tests 200] [--turns 5] [--rounds 3] [--workers 0,2]``.

Projects are generated as in ``bench_vs_vcrpy.py`` (the same agent loop through the real openai
SDK, clients built the same way, cassettes recorded here from the simulator on 127.0.0.1):

* ``vcrpy``: ``--tests`` tests over HTTP, each replaying its YAML cassette;
* ``rws-http``: the same tests with ``rws``, over HTTP only (``rws_transports("http")``);
* ``rws-both``: the same tests over both transports, ``test[http]`` and ``test[ws]`` from one
  recording: the WebSocket run chains ``previous_response_id`` on one connection and sends only
  the new items (twice the tests of the other two).

Each project runs as a pytest subprocess, ``--rounds`` times in turn after a warm-up, once per
``--workers`` value (``0``: no xdist; ``2``: ``-n 2``, a loopback server per worker). Printed per
project and worker count: the median whole-process wall time, its ratio to vcrpy's, seconds per
test, and the peak resident memory of the pytest process (the controller's under xdist).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench_vs_vcrpy import (
    RWS_TEST,
    BenchError,
    _fill,
    record_cassettes,
    replay_args,
    run_pytest,
    write_project,
)

#: Both transports from one recording: the WebSocket run takes the chained loop.
RWS_BOTH_TEST = """
import agent
import pytest

TURNS = __TURNS__


@pytest.mark.parametrize("case", range(__TESTS__))
def test_agent(rws, case):
    with agent.make_client(rws.base_url) as client:
        loop = agent.run_ws if rws.transport == "ws" else agent.run
        assert loop(client, case, TURNS) == agent.FINAL_TEXT
"""


def build(base: Path, tests: int, turns: int) -> dict[str, Path]:
    """The three projects, their cassettes recorded (rws-both replays rws-http's)."""
    projects = {kind: write_project(base / kind, kind, tests, turns) for kind in ("vcrpy", "rws")}
    record_cassettes(projects, tests, turns)
    both = base / "rws-both"
    shutil.copytree(projects["rws"], both)
    (both / "test_bench.py").write_text(_fill(RWS_BOTH_TEST, TURNS=turns, TESTS=tests), encoding="utf-8")
    assert "rws_transports" in _fill(RWS_TEST, TURNS=turns, TESTS=tests)  # rws-http stays HTTP only
    return {"vcrpy": projects["vcrpy"], "rws-http": projects["rws"], "rws-both": both}


def _tests(kind: str, tests: int) -> int:
    return tests * (2 if kind == "rws-both" else 1)


def measure(
    projects: dict[str, Path], tests: int, rounds: int, workers: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall seconds and peak MB of each project's runs, in turn, after one warm-up run each."""
    extra = ["-n", str(workers)] if workers else ["-p", "no:xdist"]
    walls: dict[str, list[float]] = {kind: [] for kind in projects}
    peaks: dict[str, list[float]] = {kind: [] for kind in projects}
    order = list(projects)
    for index in range(rounds + 1):
        for kind in order if index % 2 == 0 else order[::-1]:
            tool = "vcrpy" if kind == "vcrpy" else "rws"
            result = run_pytest(
                projects[kind], tool, [*replay_args(tool), *extra], expect_tests=_tests(kind, tests)
            )
            if index:  # the first round warms bytecode and file caches
                walls[kind].append(result.wall_s)
                peaks[kind].append(result.peak_rss_mb)
    return walls, peaks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=200, help="tests per project (default 200)")
    parser.add_argument("--turns", type=int, default=5, help="turns per test (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="measured runs per project (default 3)")
    parser.add_argument("--workers", default="0,2", help="xdist worker counts, comma-separated (default 0,2)")
    args = parser.parse_args(argv)
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    started = time.perf_counter()
    base = Path(tempfile.mkdtemp(prefix="rws-bench-suite-"))
    try:
        projects = build(base, args.tests, args.turns)
        print(f"{args.tests} tests x {args.turns} turns; rws-both runs each test over http and ws")
        print(
            f"{'project':9} {'workers':>7} {'tests':>6} {'wall med s':>10} {'vs vcrpy':>9} {'ms/test':>8} {'peak MB':>8}"
        )
        for count in workers:
            walls, peaks = measure(projects, args.tests, args.rounds, count)
            vcr_wall = statistics.median(walls["vcrpy"])
            for kind in projects:
                wall, tests = statistics.median(walls[kind]), _tests(kind, args.tests)
                print(
                    f"{kind:9} {count:>7} {tests:>6} {wall:>10.2f} {wall / vcr_wall:>9.3f} "
                    f"{wall / tests * 1e3:>8.1f} {statistics.median(peaks[kind]):>8.0f}"
                )
    except BenchError as exc:
        print(f"error: {exc}")
        return 2
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
