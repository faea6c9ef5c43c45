#!/usr/bin/env bash
# Kept for existing callers: installs Node.js 24 into .node24/ (see install-node.sh).
exec bash "$(dirname "$0")/install-node.sh" 24
