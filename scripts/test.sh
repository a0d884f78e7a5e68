#!/bin/sh
# Sets up and runs the whole test suite: installs what is missing, builds
# with -Werror, runs every meson test (unit tests, then the integration
# tests, each against its own throwaway PostgreSQL, the real arbiterd and
# real clients), then the unit tests and the out-of-memory test (with a
# database) again under AddressSanitizer + UBSan.
# usage: scripts/test.sh [extra meson test args]
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh

scripts/setup-deps.sh

setup() { # builddir, options...
    meson_setup "$@"
    step "var/log/$1.ninja.log" ninja -C "$1"
}

setup build -Dwerror=true
ext/arbiter_vector/install.sh build # the knowledge graph's vector functions (root only)
status=0
meson test -C build --print-errorlogs --num-processes 2 "$@" || status=1

setup build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false
# UBSan only prints by default; a report must fail the test.
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C build-asan --suite unit --suite oom --print-errorlogs || status=1

# One plain summary line over both runs.
/usr/bin/python3 - build/meson-logs/testlog.json build-asan/meson-logs/testlog.json <<'PY'
import json, sys
counts = {"OK": 0, "FAIL": 0, "SKIP": 0, "TIMEOUT": 0, "ERROR": 0, "UNEXPECTEDPASS": 0, "EXPECTEDFAIL": 0}
for path in sys.argv[1:]:
    try:
        with open(path) as f:
            for line in f:
                r = json.loads(line).get("result", "ERROR")
                counts[r] = counts.get(r, 0) + 1
    except FileNotFoundError:
        counts["ERROR"] += 1
failed = counts["FAIL"] + counts["TIMEOUT"] + counts["ERROR"] + counts["UNEXPECTEDPASS"]
print("%d passed, %d failed, %d skipped" % (counts["OK"] + counts["EXPECTEDFAIL"], failed, counts["SKIP"]))
PY
exit $status
