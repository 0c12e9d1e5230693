#!/usr/bin/env bash
# Long recording (issue 6): records the endless `soak` guest for SECONDS
# (default 630, i.e. over ten minutes), stops it with SIGINT (the recorder
# then finishes the trace, footer included), replays and verifies it, and
# prints the trace rate and the peak RSS of record and of replay, with the
# RSS sampled every 2 s (replay: every second) to show whether memory stays flat.
#
#   scripts/long-recording.sh [SECONDS] [HARTS] [CHECK_EVERY]
#
# Not a test (too long for CI): a measurement, quoted in BENCHMARKS.md.
# OUT (default a fresh temporary directory) holds the trace and the logs.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-630}
harts=${2:-4}
check_every=${3:-4}
out=${OUT:-$(mktemp -d /tmp/long-recording.XXXXXX)}
mkdir -p "$out"

cargo build --release --bin samsara >&2
make -C guests build/soak.elf >&2
bin=./target/release/samsara
trace=$out/soak.trace

# sample PID LOG: appends "elapsed_s VmRSS_kB VmHWM_kB" every SAMPLE_EVERY s while PID
# lives; the last line holds the final high-water mark.
sample() {
    local pid=$1 log=$2 t0=$SECONDS
    : >"$log"
    while [ -r "/proc/$pid/status" ]; do
        local rss hwm
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        [ -n "$rss" ] && echo "$((SECONDS - t0)) $rss $hwm" >>"$log"
        sleep "${SAMPLE_EVERY:-10}"
    done
}

# summarize LOG WHAT: RSS at a quarter, half and end of the run, and the peak.
summarize() {
    local log=$1 what=$2
    awk -v what="$what" '
        NR == 1 { first = $2 }
        { rss[NR] = $2; t[NR] = $1; if ($3 > hwm) hwm = $3 }
        END {
            n = NR; q = int(n / 4); if (q < 1) q = 1
            printf "%s: %d samples; RSS at %ds %.1f MiB, at %ds %.1f MiB, at %ds %.1f MiB; peak (VmHWM) %.1f MiB\n",
                what, n, t[q], rss[q] / 1024, t[int(n / 2) + 1], rss[int(n / 2) + 1] / 1024, t[n], rss[n] / 1024, hwm / 1024
        }' "$log"
}

echo "long-recording: soak, $harts harts, check-every $check_every, $seconds s -> $trace" >&2
start=$(date +%s.%N)
"$bin" record --harts "$harts" --check-every "$check_every" -o "$trace" guests/build/soak.elf \
    >"$out/record.out" 2>&1 &
rec=$!
SAMPLE_EVERY=2 sample "$rec" "$out/record.rss" &
sampler=$!
sleep "$seconds"
kill -INT "$rec"
rc=0
wait "$rec" || rc=$?
wait "$sampler" || true
end=$(date +%s.%N)
# 130: stopped by SIGINT, trace finished (docs/record-replay.md).
if [ "$rc" -ne 130 ]; then
    echo "long-recording: record exited $rc, expected 130 (interrupted)" >&2
    tail -5 "$out/record.out" >&2
    exit 1
fi

"$bin" replay "$trace" >"$out/replay.out" 2>&1 &
rep=$!
SAMPLE_EVERY=1 sample "$rep" "$out/replay.rss" &
sampler=$!
rc=0
wait "$rep" || rc=$?
wait "$sampler" || true
if [ "$rc" -ne 0 ] || ! grep -q VERIFIED "$out/replay.out"; then
    echo "long-recording: replay exited $rc without verifying" >&2
    tail -5 "$out/replay.out" >&2
    exit 1
fi

bytes=$(stat -c %s "$trace")
wall=$(echo "$end - $start" | bc)
echo "long-recording: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(git rev-parse --short HEAD)"
grep '^samsara:' "$out/record.out" | sed 's/^/record: /'
grep '^samsara:' "$out/replay.out" | sed 's/^/replay: /'
printf 'trace: %d bytes in %.0f s of recording: %.0f bytes/s\n' "$bytes" "$wall" "$(echo "$bytes / $wall" | bc -l)"
summarize "$out/record.rss" "record RSS"
summarize "$out/replay.rss" "replay RSS"
echo "logs: $out"
