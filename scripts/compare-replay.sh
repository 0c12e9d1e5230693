#!/usr/bin/env bash
# Replay speed of this checkout's samsara against another build of it, on
# the record suite's workloads (test size) at 1, 2 and 4 harts: each trace
# is recorded once, then replayed by both binaries in turn, REPEATS times;
# the table gives median replay wall times and their ratio (this / base).
#   ./scripts/compare-replay.sh BASE_SAMSARA [REPEATS]
# e.g. with the build of an older commit in another worktree:
#   git worktree add --detach /tmp/base 322d60e &&
#   (cd /tmp/base && ./scripts/build-guests.sh && cargo build --release --bin samsara)
#   ./scripts/compare-replay.sh /tmp/base/target/release/samsara 5
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: $0 BASE_SAMSARA [REPEATS]}
repeats=${2:-5}
[ -x "$base" ] || { echo "compare-replay: $base is not an executable" >&2; exit 2; }
./scripts/build-guests.sh >/dev/null
cargo build --release --bin samsara >/dev/null 2>&1
new=./target/release/samsara
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
truncate -s 1M "$work/disk.img"

# Seconds of a replay, from its summary line.
replay_secs() {
    "$1" replay "$2" 2>&1 >/dev/null | tee "$work/last.err" |
        sed -n 's/^samsara: replayed .* in \([0-9.]*\) s .*/\1/p'
    grep -q "VERIFIED" "$work/last.err" || { echo "compare-replay: $1 did not verify $2" >&2; cat "$work/last.err" >&2; exit 1; }
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

echo "base: $base ($("$base" --version 2>/dev/null || echo '?'))"
echo "this: $new ($(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes'))"
echo "host: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC'), $repeats replays each, alternating"
echo
printf '| %-14s | %5s | %12s | %12s | %10s |\n' workload harts "base s" "session s" "this/base"
printf '| %-14s | %5s | %12s | %12s | %10s |\n' --- ---: ---: ---: ---:
logsum=0; n=0
for w in parsum intbench racy_counter spin_contend dma_mix blackscholes bodytrack raytrace swaptions freqmine x264; do
    elf=guests/build/$w.elf
    [ -f "$elf" ] || elf=guests/build/$w-test.elf
    extra=()
    [ "$w" = dma_mix ] && extra=(--disk "$work/disk.img")
    for h in 1 2 4; do
        trace="$work/$w-$h.trace"
        "$new" record "$elf" --harts "$h" -o "$trace" -q "${extra[@]}" >/dev/null 2>&1 || true
        [ -s "$trace" ] || { echo "compare-replay: recording $w at $h harts failed" >&2; exit 1; }
        : >"$work/b"; : >"$work/n"
        for _ in $(seq "$repeats"); do
            replay_secs "$base" "$trace" >>"$work/b"
            replay_secs "$new" "$trace" >>"$work/n"
        done
        b=$(median <"$work/b"); s=$(median <"$work/n")
        r=$(awk -v a="$s" -v b="$b" 'BEGIN {printf "%.3f", a / b}')
        printf '| %-14s | %5s | %12.3f | %12.3f | %10s |\n' "$w" "$h" "$b" "$s" "$r"
        logsum=$(awk -v l="$logsum" -v r="$r" 'BEGIN {print l + log(r)}'); n=$((n + 1))
    done
done
echo
awk -v l="$logsum" -v n="$n" 'BEGIN {printf "geometric mean this/base over %d traces: %.3f\n", n, exp(l / n)}'
