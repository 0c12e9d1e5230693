#!/usr/bin/env bash
# The hot standby's long failover runs, outside CI (several minutes): the
# Linux key-value service (linux/init's samsara.kv, 4 harts, journaling to
# its virtio disk) with its primary SIGKILLed at 20 fixed-seed moments; each
# time the client fails over to the standby and must find every write it saw
# acknowledged, the guest must end as an uninterrupted run does, and the
# standby's trace must replay VERIFIED. (CI runs 3 of these moments, and the
# bare-metal service at 20 moments over loopback and 20 across network
# namespaces.) Needs root (network namespaces) and scripts/setup-linux.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh --no-release-build
./scripts/setup-linux.sh
cargo test --profile ci -p samsara --test standby -- --ignored --nocapture linux_service_soak
