#!/usr/bin/env bash
# Set up a fresh machine and run the main job on the bundled default guest:
# the 4-hart parallel sum.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
echo "== samsara run guests/build/parsum.elf --harts 4"
./target/release/samsara run guests/build/parsum.elf --harts 4
