#!/usr/bin/env bash
# Set up a fresh machine, then record and replay the bundled default guest
# (the 4-hart parallel sum): native run for reference, recording, verified
# parallel replay, and the overhead and log size.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
samsara=./target/release/samsara
guest=guests/build/parsum.elf
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trace=$work/parsum.trace

echo "== native: samsara run $guest --harts 4"
"$samsara" run "$guest" --harts 4 2>"$work/run.err"
cat "$work/run.err"
echo
echo "== record: samsara record $guest --harts 4 -o $trace"
"$samsara" record "$guest" --harts 4 -o "$trace" 2>"$work/record.err"
cat "$work/record.err"
echo
echo "== replay: samsara replay $trace"
"$samsara" replay "$trace"
echo
native_s=$(sed -n 's/.*wall \([0-9.]*\) s.*/\1/p' "$work/run.err")
record_s=$(sed -n 's/.* instructions in \([0-9.]*\) s .*/\1/p' "$work/record.err" | head -1)
bytes=$(sed -n 's/.*: \([0-9]*\) bytes, .*/\1/p' "$work/record.err")
awk -v n="$native_s" -v r="$record_s" -v b="$bytes" 'BEGIN {
    printf "== summary: 4 harts; native %.3f s, record %.3f s: recording overhead %.2fx; trace %d bytes\n", n, r, r / n, b }'

# Time travel: a racy guest whose result depends on the interleaving,
# recorded at 4 harts and debugged backwards in gdb (scripted here).
racy=guests/build/racy_counter.elf
mkdir -p target/demo
racy_trace=target/demo/racy_counter.trace
echo
echo "== record a data race: samsara record $racy --harts 4 -o $racy_trace"
"$samsara" record "$racy" --harts 4 -o "$racy_trace" 2>/dev/null | grep "racy="
echo "== find it on the replay: samsara analyze $racy_trace races timeline --html target/demo/racy_counter.html"
"$samsara" analyze "$racy_trace" races timeline --html target/demo/racy_counter.html 2>&1 |
    grep -E '^race:|^races:|^timeline: page|replay VERIFIED'
echo "== debug it backwards: samsara debug $racy_trace (continue; watch racy; reverse-continue x2)"
"$samsara" debug "$racy_trace" -- -batch -ex continue -ex "watch racy" \
    -ex reverse-continue -ex "info threads" -ex reverse-continue -ex "monitor when" 2>&1 |
    grep -v '^\[Inferior'
echo "== interactively: $samsara debug $racy_trace"
