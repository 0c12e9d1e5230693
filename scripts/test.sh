#!/usr/bin/env bash
# Set up a fresh machine and run every test: Rust unit and integration tests
# (which run the bundled guests on samsara and, where QEMU is installed, on
# qemu-system-riscv64 too), formatting and lints.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
cargo fmt --all -- --check
# Release profile, like the tests: build scripts (softfloat) run once, not twice.
cargo clippy --workspace --all-targets --release -- -D warnings
cargo test --workspace --release
