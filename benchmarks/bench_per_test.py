"""What a test pays for using ``rws``, and what a session pays for loading the plugin (issue 9).

Run: ``python benchmarks/bench_per_test.py [--tests N] [--runs N]``.

A throwaway project holds four kinds of test, N of each, in separate modules:

* ``plain``: a test that uses no fixture;
* ``fixture``: a test that takes ``rws`` and sends nothing;
* ``replay``: a test that replays a one-turn cassette with a stdlib HTTP client (``http.client``:
  no SDK, so no SDK cost either way);
* ``sdk``: the same turn through the openai SDK's sync client (``rws.openai_client()``).

Each kind runs in its own pytest process (``-p no:cacheprovider``, no xdist), interleaved over
``--runs`` rounds. Per test, the time is pytest's own ``report.duration`` of setup, call and
teardown added up; a kind's figure is the median over its tests and rounds. The cost of using
``rws`` is the ``fixture`` kind's median minus the ``plain`` kind's. For the session, each run
prints how long its first test took (its set-up starts the server and, for ``sdk``, warms the
SDK), whether ``openai`` was imported by the end, and the process's peak RSS.

The plugin's import cost on a run that never uses it is the whole-process wall time of
``pytest --collect-only -q test_plain.py`` with the plugin against the same with
``-p no:responses_ws``; time those two commands side by side with any tool that runs
commands in turn (for example ``hyperfine``), after ``python -m compileall`` of the
package (the machine this was written on sets PYTHONDONTWRITEBYTECODE).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

CONFTEST = """
import json, os, resource, sys, time

import pytest

_durations = {}


def pytest_runtest_logreport(report):
    _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session):
    out = {
        "durations": _durations,
        "openai_imported": "openai" in sys.modules,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    with open(os.environ["RWS_BENCH_OUT"], "w") as handle:
        json.dump(out, handle)
"""

TESTS = {
    "plain": "def test_{i}():\n    pass\n",
    "fixture": "def test_{i}(rws):\n    pass\n",
    "replay": textwrap.dedent(
        """
        @pytest.mark.rws_cassette("one_turn")
        @pytest.mark.rws_transports("http")
        def test_{i}(rws):
            assert one_turn(rws.base_url) == 200
        """
    ),
    "sdk": textwrap.dedent(
        """
        @pytest.mark.rws_cassette("one_turn")
        @pytest.mark.rws_transports("http")
        def test_{i}(rws):
            response = rws.openai_client().responses.create(model="gpt-5.2", input="Weather in Paris?")
            assert response.output_text
        """
    ),
}

HEADER = textwrap.dedent(
    """
    import http.client, json
    from urllib.parse import urlsplit

    import pytest


    def one_turn(base_url):
        parts = urlsplit(base_url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        body = json.dumps({"model": "gpt-5.2", "input": "Weather in Paris?"})
        connection.request("POST", parts.path + "/responses", body, {"content-type": "application/json"})
        answer = connection.getresponse()
        answer.read()
        connection.close()
        return answer.status
    """
)


def _one_turn_cassette() -> str:
    from pytest_responses_ws.cassette.codec import encode_cassette
    from pytest_responses_ws.cassette.model import Cassette, RecordedWith, Turn

    message = {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "Sunny in Paris.", "annotations": []}],
    }
    response = {
        "id": "resp_1",
        "object": "response",
        "status": "completed",
        "model": "gpt-5.2",
        "output": [message],
    }
    # A plain JSON answer, as both clients ask for one.
    turn = Turn(
        request={"model": "gpt-5.2", "input": "Weather in Paris?"}, events=(), transport="http", body=response
    )
    return encode_cassette(Cassette((turn,), RecordedWith("bench", "http"), "2026-12-01T00:00:00Z"))


def _project(folder: Path, tests: int) -> None:
    (folder / "conftest.py").write_text(CONFTEST)
    (folder / "pytest.ini").write_text("[pytest]\n")
    for kind, template in TESTS.items():
        source = HEADER + "".join("\n\n" + template.format(i=i) for i in range(tests))
        (folder / f"test_{kind}.py").write_text(source)
        cassette = folder / "cassettes" / f"test_{kind}" / "one_turn.json"
        cassette.parent.mkdir(parents=True, exist_ok=True)
        cassette.write_text(_one_turn_cassette())


def _run(folder: Path, kind: str) -> dict[str, object]:
    out = folder / f"{kind}.json"
    # A clean environment (no OPENAI_* variables); PYTHONPATH passes through to compare checkouts.
    env = {"RWS_BENCH_OUT": str(out), "PATH": os.defpath, "OPENAI_AGENTS_DISABLE_TRACING": "1"}
    env.update(
        {name: os.environ[name] for name in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE") if name in os.environ}
    )
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        f"test_{kind}.py",
    ]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=200, help="tests of each kind (default 200)")
    parser.add_argument("--runs", type=int, default=5, help="rounds of the four runs (default 5)")
    args = parser.parse_args(argv)
    per_test: dict[str, list[float]] = {kind: [] for kind in TESTS}
    first: dict[str, list[float]] = {kind: [] for kind in TESTS}
    imported: dict[str, set[bool]] = {kind: set() for kind in TESTS}
    rss: dict[str, list[float]] = {kind: [] for kind in TESTS}
    with tempfile.TemporaryDirectory() as folder:
        _project(Path(folder), args.tests)
        for _ in range(args.runs):
            for kind in TESTS:
                result = _run(Path(folder), kind)
                durations = list(result["durations"].values())  # type: ignore[union-attr]
                first[kind].append(durations[0])
                per_test[kind].extend(durations[1:])
                imported[kind].add(bool(result["openai_imported"]))
                rss[kind].append(float(result["peak_rss_mb"]))  # type: ignore[arg-type]
    plain = statistics.median(per_test["plain"])
    print(f"{args.tests} tests of each kind, {args.runs} runs; per test: setup + call + teardown")
    print(
        f"{'kind':<8} {'per test ms':>12} {'over plain ms':>14} {'first test ms':>14} {'openai imported':>16} {'peak RSS MB':>12}"
    )
    for kind in TESTS:
        median = statistics.median(per_test[kind])
        print(
            f"{kind:<8} {median * 1e3:>12.2f} {(median - plain) * 1e3:>14.2f} "
            f"{statistics.median(first[kind]) * 1e3:>14.1f} {'/'.join(map(str, sorted(imported[kind]))):>16} "
            f"{statistics.median(rss[kind]):>12.0f}"
        )


if __name__ == "__main__":
    main()
