#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs redis-server/redis-tools from Debian's
# packages when missing, then runs every test of the workspace against real servers.
# This is the README's test command and what .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."
sh scripts/ensure-redis.sh
cargo test --workspace --locked "$@"
