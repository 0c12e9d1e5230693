#!/usr/bin/env bash
# Set up a fresh machine and run every test: Rust unit and integration tests
# (which run the bundled guests on samsara and, where QEMU is installed, on
# qemu-system-riscv64 too), formatting and lints.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh --no-release-build
cargo fmt --all -- --check
# The `ci` profile (Cargo.toml): optimised like release but without
# whole-program LTO, which each of the many test binaries would redo.
# Clippy with the same profile: build scripts (softfloat) run once.
cargo clippy --workspace --all-targets --profile ci -- -D warnings
# Property tests draw the same cases every run here (CI is deterministic);
# a plain `cargo test` draws new ones.
export PROPTEST_RNG_SEED=${PROPTEST_RNG_SEED:-20261207}
cargo test --workspace --profile ci
