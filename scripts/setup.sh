#!/usr/bin/env bash
# Install everything samsara needs on a fresh Debian machine, then build it
# (release, the product and benchmark build). `--no-release-build` stops
# before that build (the test suite builds with its own profile).
# Idempotent: packages already present are not reinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."

release_build=1
case "${1:-}" in
    --no-release-build) release_build=0 ;;
    "") ;;
    *) echo "usage: $0 [--no-release-build]" >&2; exit 2 ;;
esac

# procps: `kill -INT` in the crash-consistency test; mount (the disk-trouble
# test's tmpfs) is in every Debian install; iproute2: the standby test's
# network namespace and veth pair.
packages=(gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-misc device-tree-compiler cmake procps gdb-multiarch iproute2 chromium)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found; install Rust (rustup) first" >&2
    exit 1
fi

./scripts/build-guests.sh
if [ "$release_build" = 1 ]; then
    cargo build --release --bin samsara
fi

# Linux (`samsara run --linux`) needs OpenSBI, a kernel and an initramfs
# from Debian stable (~115 MB): fetched on demand, not here.
[ -s linux/build/Image ] ||
    echo "setup: for 'samsara run --linux' run scripts/setup-linux.sh (the Linux test does so itself)"
