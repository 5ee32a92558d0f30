"""A run that loads the plugin but never uses ``rws`` pays for a few small modules only.

The heavy parts (the server, the cassette codec and its decoder, matching, the reports, the
SDKs) are imported on first use. Checked in a subprocess, so this suite's own imports do not
count: its conftest writes the modules loaded by the end of the run.
"""

from __future__ import annotations

import json

from support.project import Project

RECORD_MODULES = """
import json, os, sys

def pytest_unconfigure(config):
    with open(os.environ["RWS_MODULES_OUT"], "w") as out:
        json.dump(sorted(sys.modules), out)
"""

#: Imported only once a test uses rws (or a report is asked for).
HEAVY = (
    "openai",
    "agents",
    "msgspec",
    "uvicorn",
    "websockets",
    "respx",
    "pytest_responses_ws.server",
    "pytest_responses_ws.cassette.codec",
    "pytest_responses_ws.core.match",
    "pytest_responses_ws.core.drift",
    "pytest_responses_ws.report.summary",
    "pytest_responses_ws.report.lifecycle",
    "pytest_responses_ws.handle",
)


def test_a_run_that_never_uses_rws_imports_none_of_the_heavy_parts(project: Project) -> None:
    project.write("conftest", RECORD_MODULES)
    project.write("test_plain", "def test_plain():\n    assert True\n")
    out = project.path / "modules.json"
    project.monkeypatch.setenv("RWS_MODULES_OUT", str(out))
    result = project.pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:respx"
    )
    result.assert_outcomes(passed=1)
    modules = json.loads(out.read_text(encoding="utf-8"))
    assert "pytest_responses_ws.plugin" in modules  # the plugin was loaded
    loaded = [name for name in modules if any(name == h or name.startswith(h + ".") for h in HEAVY)]
    assert loaded == [], loaded
