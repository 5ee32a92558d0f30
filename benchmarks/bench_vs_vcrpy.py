#!/usr/bin/env python
"""Whole-test time: pytest-responses-ws against vcrpy + pytest-recording, same HTTP traffic.

Two throwaway pytest projects are generated in a temporary directory, each with ``--tests``
tests; every test runs a ``--turns``-turn function-calling agent loop through the real openai
SDK over HTTP streaming (``client.responses.create(..., stream=True)``, ``store=False``, the
whole history resent every turn), so both projects send and receive the same HTTP traffic:

* ``vcrpy``: tests marked ``@pytest.mark.vcr`` (pytest-recording), a plain
  ``OpenAI(base_url="https://api.openai.com/v1", api_key="sk-x", max_retries=0)``; YAML
  cassettes replayed with ``--record-mode=none --block-network``.
* ``rws``: tests using the ``rws`` fixture with ``@pytest.mark.rws_transports("http")`` and
  ``rws.openai_client()``; JSON cassettes replayed with a plain ``pytest`` (mode ``none``).

Both sets of cassettes are recorded here, without network, from the package's simulator on
127.0.0.1. The vcrpy recording rewrites each request's URI to ``https://api.openai.com/v1/...``
in ``before_record_request``, so replay matches a client pointed at the real API (vcrpy's
default ``match_on``: method, scheme, host, port, path, query) and never connects. Both
plugins are installed and active in both projects (the realistic coexistence case).

Each project's replay is then run as a subprocess (``python -m pytest -q -p no:cacheprovider``)
``--rounds`` times, alternating A B B A ..., after one unmeasured warm-up run each. Measured:

* the wall time of the pytest process, split with timestamps from the generated conftest into
  start-up (interpreter, imports, plugins), collection, the test loop, and exit;
* per test, pytest's own ``report.duration`` of setup, call and teardown (written to JSON by
  the generated conftest): cassette load, mount set-up, matching and replay, without
  interpreter start-up and collection.

With the floor project (the SDK alone behind a minimal in-process replay, on by default), each
tool's cost is its per-test median above the floor's. Every project builds its SDK clients the
same way (``agent.make_client``: one shared TLS context), so a difference in client set-up is
never counted as a tool's. Targets (issue 9): rws adds at most 0.5x what vcrpy adds above the
floor, and its whole pytest process takes at most 0.95x vcrpy's wall time.

A ``sys.addaudithook`` guard in both projects refuses (and logs) any DNS lookup or connect to
anything but loopback; a run with a violation, a failed test or a wrong test count is an error.

Run ``python benchmarks/bench_vs_vcrpy.py --help`` for the options; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pstats
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import pytest_responses_ws  # noqa: F401
except ImportError:  # run from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from importlib.metadata import PackageNotFoundError, version

from bench_replay_ws import FINAL_TEXT, INSTRUCTIONS, TOOLS, agent_script
from pytest_responses_ws.sim import serve_simulator

#: The first version's target: rws median per-test time at most this fraction of vcrpy's.
TARGET_RATIO = 0.8
#: Issue 9's targets: the time rws adds above the SDK floor per test at most this fraction of
#: what vcrpy adds, and the whole pytest process at most this fraction of vcrpy's wall time.
ADDED_COST_TARGET = 0.5
WALL_TARGET = 0.95
PROJECTS = ("vcrpy", "rws")
#: The optional third project: the SDK alone behind a minimal in-process replay (the floor).
FLOOR = "floor"
API_BASE = "https://api.openai.com/v1"
PHASES = ("setup", "call", "teardown")
#: Bound on one pytest subprocess, so a hang fails the run instead of blocking it.
RUN_TIMEOUT_S = 900


class BenchError(RuntimeError):
    """The run cannot produce a valid measurement (a failed test, a violation, a bad cassette)."""


# --------------------------------------------------------------------------- generated projects

#: The agent loop both projects import (at collection, so ``openai`` is imported there in both).
AGENT_PY = '''
"""The agent loop of the benchmark: K turns over HTTP streaming, the whole history resent."""

import json

import openai  # imported at collection time in every project

MODEL = "gpt-5.2"
FINAL_TEXT = __FINAL_TEXT__
INSTRUCTIONS = __INSTRUCTIONS__
TOOLS = __TOOLS__


#: One verifying TLS context for every client, in all three projects: building one loads the
#: system's CA certificates (15-30 ms), which must not count for one tool and not the other.
_HTTP = __import__("httpx2") if hasattr(openai, "DefaultHttpx2Client") else __import__("httpx")
TLS = _HTTP.create_ssl_context()


def make_client(base_url):
    """The SDK client every project's tests use, built the same way."""
    http_client_class = getattr(openai, "DefaultHttpx2Client", None) or openai.DefaultHttpxClient
    return openai.OpenAI(base_url=base_url, api_key="sk-x", max_retries=0, http_client=http_client_class(verify=TLS))


def tool_result(call):
    arguments = json.loads(call.arguments or "{}")
    step = arguments.get("step", 0)
    result = {"city": arguments.get("city"), "temp_c": 12 + step % 15, "sky": "clear", "step": step}
    return {"type": "function_call_output", "call_id": call.call_id, "output": json.dumps(result)}


def run(client, case, turns):
    """Run the loop until the model answers with text; check it took exactly ``turns`` turns."""
    user = f"Case {case}: what is the weather in each of the {turns - 1} cities on my list, one by one?"
    history = [{"role": "user", "content": user}]
    for turn in range(1, turns + 1):
        response = None
        stream = client.responses.create(
            model=MODEL, instructions=INSTRUCTIONS, input=history, tools=TOOLS, store=False, stream=True
        )
        for event in stream:
            if event.type == "response.completed":
                response = event.response
        assert response is not None, f"turn {turn}: the stream ended without response.completed"
        calls = [item for item in response.output if item.type == "function_call"]
        if not calls:
            assert turn == turns, f"text answer after {turn} turns, expected {turns}"
            return response.output_text
        history += [item.to_dict() for item in response.output]
        history += [tool_result(call) for call in calls]
    raise AssertionError(f"no text answer after {turns} turns")


def run_ws(client, case, turns):
    """The same loop in WebSocket mode: one connection, each turn chained, only new items sent."""
    user = f"Case {case}: what is the weather in each of the {turns - 1} cities on my list, one by one?"
    new_items, previous = [{"role": "user", "content": user}], None
    with client.responses.connect() as connection:
        for turn in range(1, turns + 1):
            chain = {"previous_response_id": previous} if previous else {}
            connection.response.create(
                model=MODEL, instructions=INSTRUCTIONS, input=new_items, tools=TOOLS, store=False, **chain
            )
            response = None
            for event in connection:
                if event.type == "response.completed":
                    response = event.response
                    break
                assert event.type != "error", f"turn {turn}: {event}"
            assert response is not None, f"turn {turn}: the connection ended without response.completed"
            calls = [item for item in response.output if item.type == "function_call"]
            if not calls:
                assert turn == turns, f"text answer after {turn} turns, expected {turns}"
                return response.output_text
            new_items, previous = [tool_result(call) for call in calls], response.id
    raise AssertionError(f"no text answer after {turns} turns")
'''

#: Shared by both projects: the loopback guard, per-phase timings, optional profiling.
CONFTEST_COMMON = '''
"""Benchmark instrumentation, identical in both projects."""

import ipaddress
import json
import os
import sys
import time

import pytest

_T_CONFTEST = time.time()
_TIMINGS_OUT = os.environ.get("BENCH_TIMINGS_OUT")
_VIOLATIONS_OUT = os.environ.get("BENCH_VIOLATIONS_OUT")
_PROFILE_OUT = os.environ.get("BENCH_PROFILE_OUT")
_PROFILE_SKIP = int(os.environ.get("BENCH_PROFILE_SKIP", "2"))
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}


def _is_loopback(host):
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if host is None or host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refuse(what):
    if _VIOLATIONS_OUT:
        with open(_VIOLATIONS_OUT, "a", encoding="utf-8") as out:
            out.write(what + "\\n")
    raise ConnectionRefusedError(f"benchmark guard: {what} (loopback only)")


def _audit(event, args):
    # An audit hook cannot be undone or bypassed by monkeypatching socket (pytest-recording's
    # --block-network restores socket.socket.connect after each test).
    if not event.startswith("socket."):
        return
    if event == "socket.getaddrinfo" or event.startswith("socket.gethostbyname"):
        if not _is_loopback(args[0]):
            _refuse(f"{event} {args[0]!r}")
    elif event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            _refuse(f"{event} {address!r}")


sys.addaudithook(_audit)

_records = []
_marks = {"conftest": _T_CONFTEST}


def pytest_collection_finish(session):
    _marks["collected"] = time.time()


def pytest_runtest_logreport(report):
    _records.append([report.nodeid, report.when, report.duration, report.outcome])


def pytest_sessionfinish(session, exitstatus):
    _marks["finished"] = time.time()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    # After the plugins' own unconfigure (the rws server stops there).
    _marks["unconfigured"] = time.time()
    if _PROFILE_OUT:
        _dump_profiles()
    if _TIMINGS_OUT:
        import resource

        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with open(_TIMINGS_OUT, "w", encoding="utf-8") as out:
            json.dump({"marks": _marks, "reports": _records, "peak_rss_kb": peak_kb}, out)


if _PROFILE_OUT:
    import cProfile
    import threading

    _main_profile = cProfile.Profile()
    _thread_profiles = []
    _profiled = [0]

    def _thread_hook(frame, event, arg):
        # Profile the rws loopback server's thread (uvicorn) too; other threads are left alone.
        sys.setprofile(None)
        if threading.current_thread().name.endswith("-uvicorn"):
            profile = cProfile.Profile()
            _thread_profiles.append(profile)
            profile.enable()

    threading.setprofile(_thread_hook)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(item, nextitem):
        _profiled[0] += 1
        if _profiled[0] <= _PROFILE_SKIP:  # warm-up tests (lazy imports, validators)
            return (yield)
        _main_profile.enable()
        try:
            return (yield)
        finally:
            _main_profile.disable()

    def _dump_profiles():
        # Called after the plugins' own unconfigure: the rws server thread has stopped by now.
        _main_profile.dump_stats(os.path.join(_PROFILE_OUT, "main.pstats"))
        for index, profile in enumerate(_thread_profiles):
            profile.create_stats()
            profile.dump_stats(os.path.join(_PROFILE_OUT, f"thread{index}.pstats"))
        with open(os.path.join(_PROFILE_OUT, "profiled.json"), "w", encoding="utf-8") as out:
            json.dump({"profiled_tests": max(0, _profiled[0] - _PROFILE_SKIP), "all_tests": _profiled[0]}, out)
'''

VCR_CONFTEST = """

# --------------------------------------------------------------------------- vcrpy settings

_RECORD_FROM = os.environ.get("BENCH_RECORD_FROM")


@pytest.fixture(scope="module")
def vcr_config():
    config = {"filter_headers": ["authorization"], "allow_playback_repeats": False}
    if os.environ.get("BENCH_VCR_MATCH_BODY"):
        config["match_on"] = ("method", "scheme", "host", "port", "path", "query", "body")
    if _RECORD_FROM:
        # Recording from the simulator: store the URI the real API would have had, so the
        # replay (client on api.openai.com) matches without ever connecting.
        def to_api(request):
            request.uri = request.uri.replace(_RECORD_FROM, "__API_BASE__", 1)
            if "host" in request.headers:
                request.headers["host"] = "api.openai.com"
            return request

        config["before_record_request"] = to_api
    return config
"""

VCR_TEST = """
import os

import agent
import pytest

TURNS = __TURNS__
#: Recording points the client at the simulator; replay at the real API (never reached).
BASE_URL = os.environ.get("BENCH_RECORD_FROM") or "__API_BASE__"


@pytest.mark.vcr
@pytest.mark.parametrize("case", range(__TESTS__))
def test_agent(case):
    with agent.make_client(BASE_URL) as client:
        assert agent.run(client, case, TURNS) == agent.FINAL_TEXT
"""

RWS_TEST = """
import agent
import pytest

TURNS = __TURNS__


@pytest.mark.rws_transports("http")
@pytest.mark.parametrize("case", range(__TESTS__))
def test_agent(rws, case):
    with agent.make_client(rws.base_url) as client:
        assert agent.run(client, case, TURNS) == agent.FINAL_TEXT
"""

FLOOR_CONFTEST = r'''

# --------------------------------------------------------------------------- the floor

import re
from pathlib import Path

import httpx2
import yaml

_ANSWERS = {}


def _load_answers():
    # The vcrpy cassettes, parsed once at conftest import: outside every test's time.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for path in (Path(__file__).parent / "cassettes" / "test_bench").glob("*.yaml"):
        case = int(re.search(r"\[(\d+)\]", path.name).group(1))
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
        _ANSWERS[case] = [
            (
                interaction["response"]["status"]["code"],
                interaction["response"]["headers"]["content-type"][0],
                interaction["response"]["body"]["string"].encode("utf-8"),
            )
            for interaction in data["interactions"]
        ]


_load_answers()


@pytest.fixture
def replay_floor(request, monkeypatch):
    """The least a replay can do: answer the k-th request with the k-th recorded body."""
    answers = iter(_ANSWERS[request.node.callspec.params["case"]])

    def handle_request(self, http_request):
        http_request.read()
        status, content_type, body = next(answers)
        return httpx2.Response(status, headers={"content-type": content_type}, content=body, request=http_request)

    monkeypatch.setattr(httpx2.HTTPTransport, "handle_request", handle_request)
'''

FLOOR_TEST = """
import agent
import pytest

TURNS = __TURNS__


@pytest.mark.parametrize("case", range(__TESTS__))
def test_agent(replay_floor, case):
    with agent.make_client("__API_BASE__") as client:
        assert agent.run(client, case, TURNS) == agent.FINAL_TEXT
"""

#: Keeps the temporary project from picking up any outer configuration.
PYTEST_INI = "[pytest]\nfilterwarnings =\n    ignore::DeprecationWarning\n"


def _fill(template: str, **values: Any) -> str:
    text = textwrap.dedent(template).lstrip("\n")
    for key, value in values.items():
        text = text.replace(f"__{key}__", str(value))
    return text


def write_project(root: Path, kind: str, tests: int, turns: int) -> Path:
    root.mkdir(parents=True)
    (root / "pytest.ini").write_text(PYTEST_INI, encoding="utf-8")
    # The same instructions and tools as the replay benchmark's workload.
    source = _fill(AGENT_PY, FINAL_TEXT=repr(FINAL_TEXT), INSTRUCTIONS=repr(INSTRUCTIONS), TOOLS=repr(TOOLS))
    (root / "agent.py").write_text(source, encoding="utf-8")
    conftest = _fill(CONFTEST_COMMON)
    if kind == "vcrpy":
        conftest += _fill(VCR_CONFTEST, API_BASE=API_BASE)
        test = _fill(VCR_TEST, TURNS=turns, TESTS=tests, API_BASE=API_BASE)
    elif kind == FLOOR:
        conftest += _fill(FLOOR_CONFTEST)
        test = _fill(FLOOR_TEST, TURNS=turns, TESTS=tests, API_BASE=API_BASE)
    else:
        test = _fill(RWS_TEST, TURNS=turns, TESTS=tests)
    (root / "conftest.py").write_text(conftest, encoding="utf-8")
    (root / "test_bench.py").write_text(test, encoding="utf-8")
    return root


# --------------------------------------------------------------------------- running pytest


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_WEBSOCKET_BASE_URL",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "PYTEST_ADDOPTS",
        "PYTEST_PLUGINS",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
        "PYTHONDONTWRITEBYTECODE",
        "BENCH_RECORD_FROM",
        "BENCH_PROFILE_OUT",
        "BENCH_VCR_MATCH_BODY",
    ):
        env.pop(name, None)
    env["OPENAI_AGENTS_DISABLE_TRACING"] = "1"  # the agents SDK would export traces to the real API
    env["PYTHONHASHSEED"] = "0"
    env.update(extra or {})
    return env


def replay_args(kind: str) -> list[str]:
    if kind == "vcrpy":
        return ["--record-mode=none", "--block-network"]
    if kind == FLOOR:
        return ["--block-network"]
    # pytest-recording's guard in the rws project too, with loopback allowed (its server).
    return ["--block-network", "--allowed-hosts=127.0.0.1"]


@dataclass
class RunResult:
    kind: str
    wall_s: float
    #: start-up (spawn -> conftest imported), collection, test loop, shutdown (session finish ->
    #: plugins unconfigured, the rws server stop included), exit (interpreter teardown)
    split_s: dict[str, float]
    #: per test: {"setup": s, "call": s, "teardown": s}
    tests: dict[str, dict[str, float]]
    stdout_tail: str = ""
    #: The pytest process's peak resident memory (the controller's, under xdist).
    peak_rss_mb: float = 0.0

    def per_test(self) -> list[float]:
        return [sum(phases.values()) for phases in self.tests.values()]


def run_pytest(
    project: Path,
    kind: str,
    args: Sequence[str],
    *,
    expect_tests: int,
    extra_env: dict[str, str] | None = None,
) -> RunResult:
    timings = project / ".bench-timings.json"
    violations = project / ".bench-violations.txt"
    timings.unlink(missing_ok=True)
    violations.unlink(missing_ok=True)
    env = child_env(
        {"BENCH_TIMINGS_OUT": str(timings), "BENCH_VIOLATIONS_OUT": str(violations), **(extra_env or {})}
    )
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    started = time.time()
    t0 = time.perf_counter()
    proc = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )
    wall = time.perf_counter() - t0
    ended = started + wall
    output = proc.stdout + proc.stderr
    if violations.exists() and violations.read_text(encoding="utf-8").strip():
        raise BenchError(f"{kind}: non-loopback network access:\n{violations.read_text(encoding='utf-8')}")
    if proc.returncode != 0 or not timings.exists():
        raise BenchError(f"{kind}: pytest exited {proc.returncode} in {project}:\n{output[-6000:]}")
    data = json.loads(timings.read_text(encoding="utf-8"))
    tests: dict[str, dict[str, float]] = {}
    for nodeid, when, duration, outcome in data["reports"]:
        if outcome != "passed":
            raise BenchError(f"{kind}: {nodeid} {when} {outcome}:\n{output[-6000:]}")
        tests.setdefault(nodeid, {})[when] = duration
    if len(tests) != expect_tests or any(set(p) != set(PHASES) for p in tests.values()):
        raise BenchError(
            f"{kind}: expected {expect_tests} tests with 3 phases, got {len(tests)}:\n{output[-3000:]}"
        )
    marks = data["marks"]
    split = {
        "startup": marks["conftest"] - started,
        # Under xdist the controller collects nothing: its collection is part of the test loop.
        "collection": marks.get("collected", marks["conftest"]) - marks["conftest"],
        "tests": marks["finished"] - marks.get("collected", marks["conftest"]),
        "shutdown": marks["unconfigured"] - marks["finished"],
        "exit": ended - marks["unconfigured"],
    }
    return RunResult(kind, wall, split, tests, output[-400:], data.get("peak_rss_kb", 0) / 1024)


# --------------------------------------------------------------------------- recording


def record_cassettes(projects: dict[str, Path], tests: int, turns: int) -> dict[str, Any]:
    """Record both projects' cassettes from the simulator; check them; return their sizes."""
    with serve_simulator(agent_script(turns)) as sim:
        run_pytest(
            projects["vcrpy"],
            "vcrpy",
            ["--record-mode=once"],
            expect_tests=tests,
            extra_env={"BENCH_RECORD_FROM": sim.url},
        )
        run_pytest(
            projects["rws"],
            "rws",
            ["--rws-record-mode=once", f"--rws-upstream={sim.url}"],
            expect_tests=tests,
            extra_env={"OPENAI_API_KEY": "sk-test"},
        )
    yaml_files = sorted((projects["vcrpy"] / "cassettes").rglob("*.yaml"))
    json_files = sorted((projects["rws"] / "cassettes").rglob("*.json"))
    if len(yaml_files) != tests or len(json_files) != tests:
        raise BenchError(
            f"expected {tests} cassettes each, got {len(yaml_files)} YAML, {len(json_files)} JSON"
        )
    uri_pattern = re.compile(r"^\s*uri:\s*(\S+)\s*$", re.MULTILINE)
    for path in yaml_files:
        text = path.read_text(encoding="utf-8")
        uris = uri_pattern.findall(text)
        if len(uris) != turns or set(uris) != {f"{API_BASE}/responses"}:
            raise BenchError(f"{path}: expected {turns} interactions on {API_BASE}/responses, got {uris}")
        if "127.0.0.1" in text or "sk-x" in text:
            raise BenchError(f"{path}: the loopback address or the key leaked into the cassette")
    for path in json_files:
        document = json.loads(path.read_text(encoding="utf-8"))
        if len(document["turns"]) != turns:
            raise BenchError(f"{path}: expected {turns} turns, got {len(document['turns'])}")
    if FLOOR in projects:  # the floor replays the vcrpy cassettes' bodies
        shutil.copytree(projects["vcrpy"] / "cassettes", projects[FLOOR] / "cassettes")
    return {
        "vcrpy_cassette_bytes_median": statistics.median(p.stat().st_size for p in yaml_files),
        "rws_cassette_bytes_median": statistics.median(p.stat().st_size for p in json_files),
    }


# --------------------------------------------------------------------------- statistics


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def bootstrap_ratio_ci(
    rounds: Sequence[tuple[list[float], list[float]]], samples: int = 2000, seed: int = 1
) -> tuple[float, float]:
    """95% interval of median(rws)/median(vcrpy), resampling whole rounds, then tests within them."""
    rng = random.Random(seed)
    ratios = []
    for _ in range(samples):
        chosen = [rounds[rng.randrange(len(rounds))] for _ in rounds]
        vcr = [rng.choice(r[0]) for r in chosen for _ in r[0]]
        rws = [rng.choice(r[1]) for r in chosen for _ in r[1]]
        ratios.append(statistics.median(rws) / statistics.median(vcr))
    return quantile(ratios, 0.025), quantile(ratios, 0.975)


def case_of(nodeid: str) -> int:
    """The test's case number from its node id (``test_agent[3]``, ``test_agent[http-3]``)."""
    match = re.search(r"\[(?:\w+-)?(\d+)(?:-\w+)?\]$", nodeid)
    if match is None:
        raise BenchError(f"no case number in {nodeid}")
    return int(match.group(1))


@dataclass
class Block:
    """All measured runs for one turn count."""

    turns: int
    kinds: tuple[str, ...] = PROJECTS
    runs: dict[str, list[RunResult]] = field(default_factory=dict)
    cassettes: dict[str, Any] = field(default_factory=dict)

    def per_test(self, kind: str) -> list[float]:
        return [t for run in self.runs[kind] for t in run.per_test()]

    def phase(self, kind: str, phase: str) -> list[float]:
        return [p[phase] for run in self.runs[kind] for p in run.tests.values()]

    def summary(self, kind: str) -> dict[str, Any]:
        per_test = self.per_test(kind)
        runs = self.runs[kind]
        return {
            "per_test_ms": {
                "median": 1e3 * statistics.median(per_test),
                "p10": 1e3 * quantile(per_test, 0.1),
                "p90": 1e3 * quantile(per_test, 0.9),
                "mean": 1e3 * statistics.fmean(per_test),
                "max": 1e3 * max(per_test),
            },
            "phase_median_ms": {ph: 1e3 * statistics.median(self.phase(kind, ph)) for ph in PHASES},
            "wall_s": {
                "median": statistics.median(r.wall_s for r in runs),
                "min": min(r.wall_s for r in runs),
                "max": max(r.wall_s for r in runs),
            },
            "split_median_s": {
                part: statistics.median(r.split_s[part] for r in runs) for part in runs[0].split_s
            },
            "sum_of_tests_median_s": statistics.median(sum(r.per_test()) for r in runs),
        }

    def comparison(self, kind: str = "rws", baseline: str = "vcrpy") -> dict[str, Any]:
        """``kind`` against ``baseline`` (rws/vcrpy by default)."""
        vcr, rws = self.summary(baseline), self.summary(kind)
        paired_rounds = list(zip(self.runs[baseline], self.runs[kind], strict=True))
        per_round = [
            statistics.median(b.per_test()) / statistics.median(a.per_test()) for a, b in paired_rounds
        ]
        # The same test index in the same round: equal traffic, so a direct pair.
        per_test_pairs = []
        for a, b in paired_rounds:
            vcr_by_case = {case_of(nodeid): sum(p.values()) for nodeid, p in a.tests.items()}
            for nodeid, phases in b.tests.items():
                per_test_pairs.append(sum(phases.values()) / vcr_by_case[case_of(nodeid)])
        low, high = bootstrap_ratio_ci([(a.per_test(), b.per_test()) for a, b in paired_rounds])
        return {
            "per_test_median_ratio": rws["per_test_ms"]["median"] / vcr["per_test_ms"]["median"],
            "per_test_median_ratio_ci95": [low, high],
            "per_round_ratio": {
                "median": statistics.median(per_round),
                "min": min(per_round),
                "max": max(per_round),
            },
            "paired_test_ratio": {
                "p25": quantile(per_test_pairs, 0.25),
                "median": statistics.median(per_test_pairs),
                "p75": quantile(per_test_pairs, 0.75),
            },
            "phase_ratio": {
                ph: rws["phase_median_ms"][ph] / vcr["phase_median_ms"][ph]
                if vcr["phase_median_ms"][ph]
                else float("nan")
                for ph in PHASES
            },
            "wall_median_ratio": rws["wall_s"]["median"] / vcr["wall_s"]["median"],
            "test_loop_ratio": rws["split_median_s"]["tests"] / vcr["split_median_s"]["tests"],
            "target": TARGET_RATIO,
            "meets_target": rws["per_test_ms"]["median"] / vcr["per_test_ms"]["median"] <= TARGET_RATIO,
        }


# --------------------------------------------------------------------------- profiling


AREAS = (
    ("yaml", ("/yaml/", "_yaml")),
    ("vcrpy", ("/vcr/",)),
    ("pytest-recording", ("/pytest_recording/",)),
    ("rws", ("/pytest_responses_ws/",)),
    ("uvicorn/h11", ("/uvicorn/", "/h11/")),
    ("httpx2/httpcore2", ("/httpx2/", "/httpcore2/", "/httpx/", "/httpcore/")),
    ("openai", ("/openai/",)),
    ("pydantic", ("/pydantic/", "/pydantic_core/")),
    ("respx", ("/respx/",)),
    ("pytest/pluggy", ("/_pytest/", "/pluggy/", "/pytest/")),
    ("asyncio", ("/asyncio/",)),
    ("json", ("/json/",)),
    ("ssl", ("/ssl.py", "truststore")),
)


def _area(filename: str, function: str) -> str:
    if filename == "~":  # builtins
        if "socket" in function or "select" in function or "poll" in function or "recv" in function:
            return "socket/select (waits)"
        if "ssl" in function.lower():
            return "ssl"
        if "json" in function:
            return "json"
        if "yaml" in function:
            return "yaml"
        return "builtins"
    for name, needles in AREAS:
        if any(needle in filename for needle in needles):
            return name
    return "other"


def summarize_profile(path: Path, tests: int, top: int = 12) -> dict[str, Any]:
    stats = pstats.Stats(str(path))
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    areas: dict[str, float] = {}
    rows = []
    total = 0.0
    for (filename, line, function), (_cc, _nc, own, cumulative, _callers) in raw.items():
        total += own
        area = _area(filename, function)
        areas[area] = areas.get(area, 0.0) + own
        rows.append((own, cumulative, f"{Path(filename).name}:{line}({function})", area))
    rows.sort(reverse=True)
    scale = 1e3 / max(tests, 1)
    cumulative_rows = sorted(
        (
            (cum, f"{Path(fn).name}:{ln}({func})")
            for (fn, ln, func), (_cc, _nc, _own, cum, _callers) in raw.items()
            if any(mark in fn for mark in ("/vcr/", "/pytest_recording/", "/pytest_responses_ws/", "/yaml/"))
        ),
        reverse=True,
    )
    return {
        "total_own_ms_per_test": total * scale,
        "areas_ms_per_test": {k: v * scale for k, v in sorted(areas.items(), key=lambda kv: -kv[1])},
        "top_own_ms_per_test": [
            [name, own * scale, cum * scale, area] for own, cum, name, area in rows[:top]
        ],
        "top_plugin_cumulative_ms_per_test": [[name, cum * scale] for cum, name in cumulative_rows[:top]],
    }


def profile_projects(projects: dict[str, Path], tests: int, directory: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for kind in projects:
        out = directory / kind
        out.mkdir(parents=True, exist_ok=True)
        run_pytest(
            projects[kind],
            kind,
            replay_args(kind),
            expect_tests=tests,
            extra_env={"BENCH_PROFILE_OUT": str(out)},
        )
        profiled = json.loads((out / "profiled.json").read_text(encoding="utf-8"))["profiled_tests"]
        results[kind] = {"main_thread": summarize_profile(out / "main.pstats", profiled)}
        threads = sorted(out.glob("thread*.pstats"))
        if threads:
            # The server thread runs from the first test on (start-up included): per test over all tests.
            results[kind]["server_thread"] = summarize_profile(threads[0], tests)
    return results


def print_profile(profiles: dict[str, Any]) -> None:
    print("\nprofile (cProfile, ~2x inflated; own time per test in ms; compare shares, not totals):")
    for kind, parts in profiles.items():
        for part, summary in parts.items():
            print(f"  {kind} {part}: total own {summary['total_own_ms_per_test']:.2f} ms/test")
            areas = ", ".join(f"{k} {v:.2f}" for k, v in summary["areas_ms_per_test"].items() if v >= 0.05)
            print(f"    by area: {areas}")
            for name, own, cum, area in summary["top_own_ms_per_test"][:8]:
                print(f"    own {own:7.3f}  cum {cum:7.3f}  {name}  [{area}]")
            plugin = summary["top_plugin_cumulative_ms_per_test"][:6]
            if plugin:
                print("    plugin/yaml cumulative: " + "; ".join(f"{n} {c:.2f}" for n, c in plugin))


# --------------------------------------------------------------------------- main


def machine() -> dict[str, Any]:
    packages = {}
    for name in ("pytest", "openai", "httpx2", "vcrpy", "pytest-recording", "PyYAML", "pytest-responses-ws"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    try:
        import yaml

        packages["yaml_cloader"] = bool(getattr(yaml, "__with_libyaml__", False))
    except ImportError:
        pass
    import pytest_responses_ws

    return {
        # Children import the same package (PYTHONPATH is passed on): pin a snapshot with it.
        "rws_package": str(Path(pytest_responses_ws.__file__).parent),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "packages": packages,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=40, help="tests per project (default 40)")
    parser.add_argument("--turns", default="5,20", help="comma-separated turn counts (default 5,20)")
    parser.add_argument("--rounds", type=int, default=5, help="measured runs per project (default 5)")
    parser.add_argument("--json", type=Path, help="write configuration, samples and results here")
    parser.add_argument("--quick", action="store_true", help="smoke run: 8 tests, 5 turns, 2 rounds (< 60 s)")
    parser.add_argument("--profile", action="store_true", help="after measuring, profile one run of each")
    parser.add_argument(
        "--vcr-match-body",
        action="store_true",
        help="vcrpy also matches on the request body (match_on + body); default: vcrpy's defaults",
    )
    parser.add_argument(
        "--no-floor",
        dest="floor",
        action="store_false",
        help="skip the floor project (the SDK alone behind a minimal in-process replay)",
    )
    parser.add_argument("--keep", type=Path, help="generate the projects here and keep them")
    parser.add_argument("--fail-above", type=float, help="exit 1 if a per-test median ratio is above this")
    args = parser.parse_args(argv)
    if args.quick:
        args.tests, args.turns, args.rounds = 8, "5", 2
    args.turn_counts = [int(t) for t in str(args.turns).split(",") if t.strip()]
    if args.tests < 1 or args.rounds < 1 or any(t < 1 for t in args.turn_counts):
        parser.error("--tests, --rounds and every --turns value must be 1 or more")
    return args


def print_block(block: Block, tests: int) -> dict[str, Any]:
    summaries = {kind: block.summary(kind) for kind in block.kinds}
    comparison = block.comparison()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\n{block.turns} turns x {tests} tests  (cassette median: vcrpy YAML "
        f"{block.cassettes['vcrpy_cassette_bytes_median'] / 1024:.0f} KiB, rws JSON "
        f"{block.cassettes['rws_cassette_bytes_median'] / 1024:.0f} KiB; load average now {load:.2f})"
    )
    header = (
        f"{'project':8} {'per-test med':>12} {'p10':>7} {'p90':>7} {'mean':>7} | {'setup':>6} {'call':>7} "
        f"{'tdown':>6} | {'wall med':>8} {'startup':>7} {'collect':>7} {'tests':>6} {'shutdn':>6} {'exit':>5}"
    )
    print(header)
    for kind in block.kinds:
        s = summaries[kind]
        pt, ph, sp = s["per_test_ms"], s["phase_median_ms"], s["split_median_s"]
        print(
            f"{kind:8} {pt['median']:10.2f}ms {pt['p10']:7.2f} {pt['p90']:7.2f} {pt['mean']:7.2f} | "
            f"{ph['setup']:6.2f} {ph['call']:7.2f} {ph['teardown']:6.2f} | {s['wall_s']['median']:7.2f}s "
            f"{sp['startup']:7.2f} {sp['collection']:7.2f} {sp['tests']:6.2f} {sp['shutdown']:6.2f} "
            f"{sp['exit']:5.2f}"
        )
    c = comparison
    low, high = c["per_test_median_ratio_ci95"]
    verdict = "meets" if c["meets_target"] else "MISSES"
    print(
        f"rws/vcrpy per-test median {c['per_test_median_ratio']:.3f} [95% CI {low:.3f}, {high:.3f}] "
        f"({verdict} the {TARGET_RATIO}x target); per round {c['per_round_ratio']['min']:.3f}.."
        f"{c['per_round_ratio']['max']:.3f}; same-test pairs p25..p75 {c['paired_test_ratio']['p25']:.3f}.."
        f"{c['paired_test_ratio']['p75']:.3f}"
    )
    print(
        f"  phases: setup {c['phase_ratio']['setup']:.2f}x, call {c['phase_ratio']['call']:.2f}x, "
        f"teardown {c['phase_ratio']['teardown']:.2f}x; test loop {c['test_loop_ratio']:.3f}x; "
        f"whole process wall {c['wall_median_ratio']:.3f}x"
    )
    printed: dict[str, Any] = {"summaries": summaries, "comparison": comparison, "loadavg_after": load}
    if FLOOR in block.kinds:
        floor = block.comparison(FLOOR)
        printed["floor_comparison"] = floor
        vcr_ms = summaries["vcrpy"]["per_test_ms"]["median"]
        floor_ms = summaries[FLOOR]["per_test_ms"]["median"]
        rws_ms = summaries["rws"]["per_test_ms"]["median"]
        vcr_added, rws_added = vcr_ms - floor_ms, rws_ms - floor_ms
        added_ratio = rws_added / vcr_added if vcr_added > 0 else float("nan")
        printed["added_cost"] = {"vcrpy_ms": vcr_added, "rws_ms": rws_added, "ratio": added_ratio}
        print(
            f"floor/vcrpy per-test median {floor['per_test_median_ratio']:.3f}: the SDK alone is "
            f"{floor_ms:.2f} ms of a test; on top of it vcrpy adds {vcr_added:+.2f} ms, "
            f"rws {rws_added:+.2f} ms: rws/vcrpy added cost {added_ratio:.2f} "
            f"({'meets' if added_ratio <= ADDED_COST_TARGET else 'MISSES'} the {ADDED_COST_TARGET}x target)"
        )
    wall = c["wall_median_ratio"]
    print(
        f"whole-process wall rws/vcrpy {wall:.3f} ({'meets' if wall <= WALL_TARGET else 'MISSES'} the {WALL_TARGET}x target)"
    )
    return printed


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    print(
        f"bench_vs_vcrpy: {args.tests} tests x turns {args.turn_counts}, {args.rounds} rounds; "
        f"python {info['python']}, {info['cpus']} CPUs, load {info['loadavg']}"
    )
    print("  " + ", ".join(f"{k} {v}" for k, v in info["packages"].items()))
    print(f"  pytest_responses_ws from {info['rws_package']}")
    if args.vcr_match_body:
        print("  vcrpy match_on includes body")
    base = args.keep or Path(tempfile.mkdtemp(prefix="rws-bench-vcr-"))
    if args.keep and base.exists():
        shutil.rmtree(base)
    results: dict[str, Any] = {
        "config": vars(args) | {"json": str(args.json), "keep": str(args.keep)},
        "machine": info,
    }
    results["blocks"] = {}
    failed = False
    started = time.perf_counter()
    try:
        for turns in args.turn_counts:
            root = base / f"turns{turns}"
            kinds = (*PROJECTS, FLOOR) if args.floor else PROJECTS
            projects = {kind: write_project(root / kind, kind, args.tests, turns) for kind in kinds}
            block = Block(turns, kinds, {kind: [] for kind in kinds})
            t0 = time.perf_counter()
            block.cassettes = record_cassettes(projects, args.tests, turns)
            print(
                f"\n[{turns} turns] recorded {2 * args.tests} cassettes in {time.perf_counter() - t0:.1f} s",
                end="",
            )
            extra = {"BENCH_VCR_MATCH_BODY": "1"} if args.vcr_match_body else {}
            for kind in kinds:  # warm-up: bytecode caches, OS file cache
                run_pytest(projects[kind], kind, replay_args(kind), expect_tests=args.tests, extra_env=extra)
            for index in range(args.rounds):
                order = kinds if index % 2 == 0 else kinds[::-1]
                for kind in order:
                    result = run_pytest(
                        projects[kind], kind, replay_args(kind), expect_tests=args.tests, extra_env=extra
                    )
                    block.runs[kind].append(result)
                print(".", end="", flush=True)
            print()
            printed = print_block(block, args.tests)
            entry: dict[str, Any] = {
                "cassettes": block.cassettes,
                **printed,
                "samples": {
                    kind: [
                        {"wall_s": r.wall_s, "split_s": r.split_s, "tests": r.tests} for r in block.runs[kind]
                    ]
                    for kind in kinds
                },
            }
            if args.profile:
                entry["profile"] = profile_projects(projects, args.tests, root / "profile")
                print_profile(entry["profile"])
            results["blocks"][str(turns)] = entry
            if (
                args.fail_above is not None
                and printed["comparison"]["per_test_median_ratio"] > args.fail_above
            ):
                failed = True
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    results["elapsed_s"] = time.perf_counter() - started
    print(f"\ndone in {results['elapsed_s']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
        print(f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
