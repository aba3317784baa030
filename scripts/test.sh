#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs redis-server/redis-tools from Debian's
# packages when missing, runs every test of the workspace against real servers, then fuzzes
# the snapshot decoder for PSOR_FUZZ_SECONDS (default 30; 0 skips it). This is the README's
# test command and what .ci/run calls. It ends with one line `tests: N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
sh scripts/ensure-redis.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
if [ "$status" -eq 0 ] && [ "${PSOR_FUZZ_SECONDS:-30}" != 0 ]; then
    # The .psnap decoder under libFuzzer, bounded in time (installs cargo-fuzz when missing).
    bash formats/fuzz/run.sh "${PSOR_FUZZ_SECONDS:-30}" || status=$?
fi
passed=$(grep -oE 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -oE '[0-9]+ failed;' "$log" | awk '{s+=$1} END {print s+0}')
echo "tests: $passed passed, $failed failed"
exit "$status"
