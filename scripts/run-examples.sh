#!/usr/bin/env bash
# The main job: the example agent suite replays its committed cassettes over HTTP and
# WebSocket mode, offline. Extra arguments go to pytest.
EXTRAS=examples
source "$(dirname "$0")/_venv.sh"
# The tests' time budgets are a developer machine's figures. This job runs on shared
# 2-core runners where the test process competes for the CPU, and a turn's overhead is
# CPU-bound client work that stretches with it: measured at up to ~2.5x under a CPU-bound
# neighbour (docs/performance.md). A scale set by the caller wins; exact limits never scale.
export RWS_BUDGET_SCALE="${RWS_BUDGET_SCALE:-3}"
# The Node example's packages (skipped, with the reason, where node or npm is missing).
bash scripts/setup-node-example.sh
mkdir -p build
exec pytest examples -p no:cacheprovider \
  --rws-report=build/rws-report.json --rws-report-html=build/rws-report.html "$@"
