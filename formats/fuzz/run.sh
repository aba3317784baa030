#!/usr/bin/env bash
# Fuzz the .psnap decoder for a bounded time (default 30 s) on the stable toolchain.
# cargo-fuzz needs nightly flags (-Zsanitizer=address); RUSTC_BOOTSTRAP=1 lets stable accept
# them, and the stable rust-std ships the ASan runtime. Needs: cargo install cargo-fuzz, a C++
# compiler (libFuzzer is built from source by libfuzzer-sys).
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-30}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p corpus/decode
# corpus/decode collects new inputs (ignored by git); seeds/ holds the golden file, read-only.
RUSTC_BOOTSTRAP=1 exec cargo fuzz run decode corpus/decode seeds -- -max_total_time="$secs"
