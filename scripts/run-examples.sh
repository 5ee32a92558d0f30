#!/usr/bin/env bash
# The main job: the example agent suite replays its committed cassettes over HTTP and
# WebSocket mode, offline. Extra arguments go to pytest.
EXTRAS=examples
source "$(dirname "$0")/_venv.sh"
mkdir -p build
exec pytest examples -p no:cacheprovider \
  --rws-report=build/rws-report.json --rws-report-html=build/rws-report.html "$@"
