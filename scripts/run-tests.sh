#!/usr/bin/env bash
# The test command: lint, types, the test suite (with pytester plugin runs), docs build.
# Extra arguments go to pytest.
EXTRAS=test,examples
source "$(dirname "$0")/_venv.sh"
set -x
ruff check .
ruff format --check .
mypy
pytest -p no:cacheprovider -n 2 "$@"
mkdocs build --strict --quiet --site-dir "$(mktemp -d)"
