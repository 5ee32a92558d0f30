#!/usr/bin/env bash
# The test command: lint, types, the test suite (with pytester plugin runs), docs build.
# Extra arguments go to pytest.
EXTRAS=test,examples
source "$(dirname "$0")/_venv.sh"
set -x
ruff check .
ruff format --check .
mypy
# One worker more than the cores: about a third of the suite's time is bounded waits (timeouts,
# paced streams, subprocesses starting), not CPU. RWS_TEST_WORKERS sets another count.
pytest -p no:cacheprovider -n "${RWS_TEST_WORKERS:-$(( $(nproc) + 1 ))}" "$@"
mkdocs build --strict --quiet --site-dir "$(mktemp -d)"
