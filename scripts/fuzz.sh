#!/usr/bin/env bash
# Fuzzing beyond the fixed-seed runs of `cargo test` (docs/robustness.md).
#   ./scripts/fuzz.sh quick [SECONDS]          # random mutation runs, every target, SECONDS each (default 60)
#   ./scripts/fuzz.sh guided TARGET SECONDS    # coverage-guided libFuzzer run (cargo fuzz) of trace_reader, cpu or cpu_diff
#   ./scripts/fuzz.sh merge TARGET             # merge fuzz/new/TARGET into fuzz/corpus/TARGET, minimised
# quick prints its seed (SAMSARA_FUZZ_SEED=N repeats it) and saves a failing
# input into fuzz/regressions/<target>/, which `cargo test` replays from then on.
# guided installs cargo-fuzz if missing; it reads fuzz/corpus/TARGET, writes the
# inputs it finds interesting into fuzz/new/TARGET (not committed: merge them)
# and crashes into fuzz/artifacts/TARGET/ (minimise one with `cargo fuzz tmin`,
# fix it, then add it to fuzz/regressions/TARGET/). Run long ones under nice.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    sed -n '2,5p' "$0" >&2
    exit 2
}

max_len() {
    case "$1" in
    trace_reader) echo 65536 ;;
    cpu | cpu_diff) echo 8192 ;;
    *) usage ;;
    esac
}

case "${1:-}" in
quick)
    seconds=${2:-60}
    SAMSARA_FUZZ_SECONDS=$seconds exec cargo test --release -p samsara-fuzzing --test corpus \
        -- --ignored --nocapture random_mutation_run
    ;;
guided)
    [ $# -eq 3 ] || usage
    target=$2 seconds=$3
    len=$(max_len "$target")
    extra=()
    # The trace reader must refuse a claimed size before allocating it.
    [ "$target" = trace_reader ] && extra=(-malloc_limit_mb=1024)
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
    cd fuzz
    mkdir -p "new/$target"
    # --sanitizer none: libFuzzer's coverage flags are stable, so no nightly.
    # Fork mode and -ignore_*: a finding is saved and the run goes on.
    exec cargo fuzz run --sanitizer none -O "$target" "new/$target" "corpus/$target" -- \
        -max_len="$len" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 "${extra[@]}" \
        -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1
    ;;
merge)
    [ $# -eq 2 ] || usage
    target=$2
    max_len "$target" >/dev/null
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
    cd fuzz
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    mkdir "$work/all" "$work/small" "$work/min"
    # Everything merged on libFuzzer's full features; then the inputs of at
    # most 8 KiB merged again on edges alone, which keeps the corpus small.
    cargo fuzz run --sanitizer none -O "$target" "$work/all" "corpus/$target" "new/$target" -- -merge=1
    find "$work/all" -type f -size -8193c -exec cp {} "$work/small/" \;
    cargo fuzz run --sanitizer none -O "$target" "$work/min" "$work/small" -- -merge=1 -use_counters=0
    rm -rf "corpus/$target"
    cp -r "$work/min" "corpus/$target"
    echo "fuzz/corpus/$target: $(find "corpus/$target" -type f | wc -l) inputs, $(du -sb "corpus/$target" | cut -f1) bytes"
    ;;
*) usage ;;
esac
