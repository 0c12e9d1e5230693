#!/usr/bin/env bash
# Build every bundled guest (guests/build/*.elf) with the RISC-V cross compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s -C guests -j"$(nproc)"
