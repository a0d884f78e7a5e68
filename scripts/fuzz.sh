#!/bin/sh
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs each for a
# bounded time on top of its committed seed corpus; fails on any crash,
# leak, sanitizer report or timeout. New inputs go to a scratch copy of the
# corpus, never into the checkout.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60, all)
#
# The build goes to build-fuzz/. Prints one line per target:
# "fuzz <target>: <runs> runs in <s> s, ok" (or FAILED), and exits 1 if any
# target failed. tests/fuzz/README.md says how to run them for hours.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh

secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-"frame headers server map ctl"}

scripts/setup-deps.sh

if [ ! -f build-fuzz/build.ninja ]; then
    step var/log/build-fuzz.setup.log env CC=clang meson setup build-fuzz -Dfuzzing=true
fi
step var/log/build-fuzz.ninja.log ninja -C build-fuzz \
    $(for t in $targets; do printf 'tests/fuzz/fuzz_%s ' "$t"; done)

status=0
for t in $targets; do
    work=$(mktemp -d "${TMPDIR:-/tmp}/arbiterd-fuzz-$t.XXXXXX")
    cp -r "tests/fuzz/corpus/$t/." "$work/"
    log=var/log/fuzz-$t.log
    if ASAN_OPTIONS=detect_leaks=1 "build-fuzz/tests/fuzz/fuzz_$t" -max_total_time="$secs" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/" \
        "$work" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        echo "fuzz $t: ${runs:-?} runs in $secs s, ok"
    else
        echo "fuzz $t: FAILED (log $log; the input is in $work):"
        grep -E "ERROR|SUMMARY|Test unit written" "$log" | head -n 5
        status=1
        continue
    fi
    rm -rf "$work"
done
exit "$status"
