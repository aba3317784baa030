#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs redis-server/redis-tools from Debian's
# packages when missing and fetches Redis 6.2, Valkey 8.1, Valkey 9.1 and Redis 8.0 (scripts/fetch-servers.sh),
# runs every test of the workspace against real Redis 7.0 servers, then the engine, snapshot and
# PAC end-to-end test binaries again on each other server (PSOR_TEST_SERVER=…; the cross-version
# tests run once, in the first run), then fuzzes the snapshot decoder for PSOR_FUZZ_SECONDS
# (default 30; 0 skips it). This is the README's test command and what .ci/run calls. It ends
# with one line `tests: N passed, N failed`, counting every run.
#
# PSOR_TEST_SERVER=NAME runs the whole suite on that one server instead (redis-7.0, redis-6.2,
# valkey-8.1, valkey-9.1, redis-8.0), and nothing else. PSOR_TEST_SERVERS="redis-6.2 …" picks the other
# servers of the default run (empty: none). Extra arguments go to every `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
sh scripts/ensure-redis.sh
bash scripts/fetch-servers.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
if [ -n "${PSOR_TEST_SERVER:-}" ]; then
    echo "== the whole suite on $PSOR_TEST_SERVER"
    cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee -a "$log" || status=$?
else
    echo "== the whole suite on redis-7.0"
    PSOR_TEST_SERVER=redis-7.0 cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee -a "$log" || status=$?
    # The end-to-end binaries: everything that moves, exports, imports or manages a PSOR.
    e2e=()
    for f in tests/tests/engine_*.rs tests/tests/snapshot_*.rs tests/tests/pac_*.rs; do
        e2e+=(--test "$(basename "$f" .rs)")
    done
    # Redis 8.0 (Debian trixie's .deb) is optional: fetch-servers.sh skips it when apt cannot
    # reach trixie, and so does this loop.
    others="redis-6.2 valkey-8.1 valkey-9.1"
    if [ -x "${PSOR_SERVERS_DIR:-$HOME/.cache/psor-servers}/redis-8.0/redis-server" ]; then
        others="$others redis-8.0"
    fi
    for server in ${PSOR_TEST_SERVERS-$others}; do
        echo "== engine, snapshot and PAC tests on $server"
        start=$(date +%s)
        PSOR_TEST_SERVER=$server cargo test -p psor-tests --locked --no-fail-fast "${e2e[@]}" "$@" 2>&1 \
            | tee -a "$log" || status=$?
        echo "== $server: $(($(date +%s) - start)) s"
    done
fi
if [ "$status" -eq 0 ] && [ "${PSOR_FUZZ_SECONDS:-30}" != 0 ]; then
    # The .psnap decoder under libFuzzer, bounded in time (installs cargo-fuzz when missing).
    bash formats/fuzz/run.sh "${PSOR_FUZZ_SECONDS:-30}" || status=$?
fi
passed=$(grep -oE 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -oE '[0-9]+ failed;' "$log" | awk '{s+=$1} END {print s+0}')
echo "tests: $passed passed, $failed failed"
exit "$status"
