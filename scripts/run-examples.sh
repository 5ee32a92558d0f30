#!/usr/bin/env bash
# The main job: the example agent suite replays its committed cassettes over HTTP and
# WebSocket mode, offline. Extra arguments go to pytest.
EXTRAS=examples
source "$(dirname "$0")/_venv.sh"
exec pytest examples -p no:cacheprovider "$@"
