#!/usr/bin/env bash
# Install the Node example's packages (examples/node: openai-node and ws, pinned by its
# package-lock.json) from the npm registry. Without node and npm, or without the registry,
# it says so and leaves the example's tests to skip with that reason; it never fails the job.
set -uo pipefail
HERE="${BASH_SOURCE[0]%/*}"
[ "$HERE" = "${BASH_SOURCE[0]}" ] && HERE=.
NODE_DIR="$(cd "$HERE/../examples/node" && pwd)"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "setup-node-example: node or npm not found; the Node example will be skipped" >&2
  exit 0
fi
# Installed from this lock file already: nothing to do.
if [ "$NODE_DIR/node_modules/.package-lock.json" -nt "$NODE_DIR/package-lock.json" ]; then
  exit 0
fi
# npm ci installs exactly what the lock file pins; bounded in time.
if ! timeout 300 npm ci --prefix "$NODE_DIR" --no-audit --no-fund --loglevel=error >&2; then
  echo "setup-node-example: npm ci failed (no registry?); the Node example will be skipped" >&2
fi
exit 0
