"""openai-python 2.x (on httpx, not httpx2): a hard-coded client is routed with ``redirect=True``
and refused without it, with respx installed and without it.

openai 2.x is installed once into a cached temporary folder (``pip install --no-deps``; its
other requirements are this environment's), and the runs use it through ``PYTHONPATH`` in a
subprocess. Where it cannot be installed (no registry), the test is skipped saying so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pytest_responses_ws.sim import Script, serve_simulator

from support.project import Project

OPENAI_2 = "openai==2.54.0"
#: Bound on installing it (a few seconds from a registry, once per machine).
INSTALL_TIMEOUT_S = 180

HARD_CODED = """
import sys
import openai
import pytest

# A module-level client with the real API's URL, as libraries have them.
CLIENT = openai.OpenAI(base_url="https://api.openai.com/v1", api_key="fake-key-openai2-0123456789", max_retries=0)


@pytest.fixture(params=["with respx", "without respx"])
def respx(request, monkeypatch):
    # respx is a requirement of the plugin: "without respx" blocks its import for the test.
    if request.param == "without respx":
        monkeypatch.setitem(sys.modules, "respx", None)
    return request.param


def ask():
    assert openai.__version__.startswith("2."), openai.__version__
    return CLIENT.responses.create(model="gpt-5.2", input="Weather?").output_text


# respx first: the rws fixture installs the routing, with or without it.
@pytest.mark.rws_cassette("hard_coded", redirect=True)
@pytest.mark.rws_transports("http")
def test_routed(respx, rws):
    assert ask() == "Mild."


@pytest.mark.rws_cassette("hard_coded")
@pytest.mark.rws_transports("http")
def test_refused(respx, rws):
    with pytest.raises(openai.BadRequestError, match="rws_unrouted_request"):
        ask()
"""


@pytest.fixture(scope="session")
def openai_2() -> Path:
    folder = (
        Path(tempfile.gettempdir())
        / f"rws-{OPENAI_2.replace('==', '-')}-py{sys.version_info[0]}{sys.version_info[1]}"
    )
    if not (folder / "openai" / "__init__.py").is_file():
        # Installed beside it and renamed into place: a run cut short, or another checkout's
        # run at the same time, never leaves a half-installed folder where the check looks.
        staging = folder.with_name(f"{folder.name}.{os.getpid()}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--no-deps",
                    "--target",
                    str(staging),
                    OPENAI_2,
                    "distro",
                ],
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            shutil.rmtree(staging, ignore_errors=True)
            pytest.skip(f"{OPENAI_2} could not be installed within {INSTALL_TIMEOUT_S} s")
        if done.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            pytest.skip(
                f"{OPENAI_2} could not be installed (no package registry?): {done.stderr.strip()[-200:]}"
            )
        try:
            staging.rename(folder)
        except OSError:  # another run put it there first
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def test_openai_2_hard_coded_client_is_routed_or_refused_with_and_without_respx(
    project: Project, openai_2: Path
) -> None:
    project.write("test_hard_coded", HARD_CODED)
    project.monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(openai_2), os.environ.get("PYTHONPATH", "")])
    )

    def run(*args: str) -> pytest.RunResult:
        return project.pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", *args)

    with serve_simulator(Script.tool_loop(0, final_text="Mild.")) as sim:
        recorded = run("--rws-record-mode=once", f"--rws-upstream={sim.url}", "-k", "routed and not without")
        recorded.assert_outcomes(passed=1, deselected=3)
        assert len(sim.simulator.requests) == 1
    result = run("-v")
    # Routed to the mount and replayed; refused in-process (the test expects the 400), and the
    # refusal fails the test saying how to route it: with and without respx.
    result.assert_outcomes(passed=2, failed=2)
    for respx in ("with respx", "without respx"):
        result.stdout.fnmatch_lines(
            [f"*test_routed?{respx}-http? PASSED*", f"*test_refused?{respx}-http? FAILED*"]
        )
    failures = result.stdout.str().split("= FAILURES =")[1]
    assert failures.count("https://api.openai.com/v1/responses") >= 2 and "redirect=True" in failures
