#!/usr/bin/env bash
# Build samsara, samsara-bench and the guests, then run samsara-bench (by
# default the machine suite, beside qemu-system-riscv64 when it is installed).
#   ./scripts/bench.sh                      # = samsara-bench --suite machine
#   ./scripts/bench.sh --repeats 5 --json   # arguments go to samsara-bench
#   ./scripts/bench.sh --suite record       # record/replay cost, every workload (~10 min)
#   ./scripts/bench.sh --suite parsec       # PARSEC-like, bench size, charts (~30 min)
# The record and parsec suites also write Markdown, CSV, JSON and (parsec)
# SVG charts into --charts DIR (default bench-results/). See docs/benchmarks.md.
# Figures are only meaningful on an otherwise idle host: the table's
# "busy elsewhere" column says how much other processes took.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/build-guests.sh
cargo build --release --bin samsara --bin samsara-bench
exec ./target/release/samsara-bench "$@"
