#!/usr/bin/env bash
# dist/ must be exactly what `npm run bundle` builds from src/ (no change, nothing missing, nothing extra).
# Used by .ci/run and the CI and release workflows.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run bundle
if [ -n "$(git status --porcelain -- dist)" ]; then
  git status --porcelain -- dist
  git diff --stat -- dist
  echo "::error::dist/ differs from a fresh build of src/: run 'npm run bundle' and commit dist/." >&2
  exit 1
fi
echo "dist/ matches the sources."
