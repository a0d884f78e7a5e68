#!/bin/bash
# The README's Quick start and "First calls", exactly as written there, the
# way a new user runs them (CI runs this inside a brand-new Debian 12 root,
# see scripts/fresh-root.sh and .ci/run):
#
#   1. the Quick start's test command, to completion, then every libFuzzer
#      target for CI_FUZZ_SECONDS (60) on its committed corpus;
#   2. the Quick start's run command, in the background, until Health says
#      SERVING and the demo tenant is there;
#   3. every command of the "First calls" block, from a second shell, each
#      checked for its exit code and the answer the README shows;
#   4. Ctrl-C (SIGINT to the run command's process group): arbiterd and
#      PostgreSQL stop, the socket file is gone.
#
# Prints how long each part took and ends with one line
# "N passed, N failed, N skipped" (the test suite's counts plus one per
# check here). Exit code 0 only when everything passed.
set -u
cd "$(dirname "$0")/.."
mkdir -p var/log

passed=0
failed=0
skipped=0
check() { # NAME CMD...: one counted check
    local name=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
        echo "ci: ok   $name"
    else
        failed=$((failed + 1))
        echo "ci: FAIL $name"
    fi
}
elapsed() { echo $(($(date +%s) - $1)); }

# The lines of the first ```sh block after the heading $1, comments and
# blank lines dropped, continuation lines joined.
readme_block() {
    awk -v head="$1" '
        $0 == head { inside = 1; next }
        inside && /^```sh/ { code = 1; next }
        code && /^```/ { exit }
        code {
            line = $0
            sub(/^[ \t]+/, "", line)
            if (line ~ /^#/ || line == "") next
            if (cont != "") { line = cont " " line; cont = "" }
            if (line ~ /\\$/) { sub(/[ \t]*\\$/, "", line); cont = line; next }
            sub(/[ \t]+#.*$/, "", line)
            print line
        }' README.md
}

mapfile -t quick < <(readme_block "## Quick start")
run_cmd=${quick[0]:-}
test_cmd=${quick[1]:-}
check "README Quick start has the run and the test command" \
    test "${#quick[@]}" = 2 -a "$run_cmd" = "./scripts/run.sh" -a "$test_cmd" = "./scripts/test.sh"

# ---- 1. the test command ------------------------------------------------
t=$(date +%s)
echo "ci: \$ $test_cmd"
bash -c "$test_cmd" </dev/null 2>&1 | tee var/log/ci-test.out
test_rc=${PIPESTATUS[0]}
echo "ci: test command: exit $test_rc after $(elapsed "$t") s"
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' var/log/ci-test.out | tail -n 1)
if [ -n "$summary" ]; then
    read -r p _ f _ s _ <<<"$summary"
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
fi
check "test command exits 0 and prints its summary" test "$test_rc" = 0 -a -n "$summary"

# ---- 1b. the fuzz targets, each for a bounded time on its corpus ----------
t=$(date +%s)
fuzz_secs=${CI_FUZZ_SECONDS:-60}
echo "ci: \$ scripts/fuzz.sh $fuzz_secs"
scripts/fuzz.sh "$fuzz_secs" </dev/null 2>&1 | tee var/log/ci-fuzz.out
fuzzed=0
while read -r line; do
    fuzzed=$((fuzzed + 1))
    check "$line" test "${line%, ok}" != "$line"
done < <(grep -E '^fuzz [a-z]+: ' var/log/ci-fuzz.out)
check "every fuzz target ran" test "$fuzzed" = 5
echo "ci: fuzz: $(elapsed "$t") s"

# ---- 2. the run command -------------------------------------------------
t=$(date +%s)
echo "ci: \$ $run_cmd   (in the background)"
setsid bash -c "exec $run_cmd" </dev/null >var/log/ci-run.out 2>&1 &
run_pid=$!
ctl=build/clients/c/arbiterctl
serving() {
    grep -q 'arbiterd is serving on' var/log/ci-run.out 2>/dev/null &&
        "$ctl" call grpc.health.v1.Health.Check 2>/dev/null | grep -q '"SERVING"'
}
up=false
for _ in $(seq 1 600); do
    if serving; then
        up=true
        break
    fi
    kill -0 "$run_pid" 2>/dev/null || break
    sleep 0.5
done
check "run command serves (Health SERVING, tenant demo) within 300 s" $up
echo "ci: run command: serving after $(elapsed "$t") s"
$up || tail -n 40 var/log/ci-run.out

# ---- 3. First calls, from a second shell ----------------------------------
t=$(date +%s)
# What each call must answer, as the README shows it.
expect_for() {
    case "$1" in
    *RegisterAgent*) echo '"name": "a1"' ;;
    *ListAgents*) echo '"a1"' ;;
    *GetPoolStats*) echo '"database_reachable": true' ;;
    *" list"*) echo 'RegisterAgent(arbiter.v1.RegisterAgentRequest)' ;;
    *example.py*) echo 'unregistered' ;;
    *example.js*) echo 'unregistered' ;;
    *) echo '' ;;
    esac
}
calls=0
while IFS= read -r cmd; do
    calls=$((calls + 1))
    want=$(expect_for "$cmd")
    out=$(bash -c "$cmd" 2>&1)
    rc=$?
    echo "ci: \$ $cmd   -> exit $rc"
    echo "$out" | head -n 30 | sed 's/^/    /'
    if $up; then
        check "first call: $cmd" test "$rc" = 0 -a -n "$want" -a "${out#*"$want"}" != "$out"
    else
        skipped=$((skipped + 1))
    fi
done < <(readme_block "## First calls")
check "README First calls has the C, Python and Node commands" test "$calls" -ge 6
echo "ci: first calls: $(elapsed "$t") s"

# ---- 4. Ctrl-C ------------------------------------------------------------
t=$(date +%s)
kill -INT -- "-$run_pid" 2>/dev/null
stopped=false
for _ in $(seq 1 120); do
    if ! kill -0 "$run_pid" 2>/dev/null; then
        stopped=true
        break
    fi
    sleep 0.5
done
wait "$run_pid" 2>/dev/null
check "Ctrl-C stops the run command within 60 s" $stopped
check "arbiterd removed its socket file" test ! -e arbiterd.sock
check "PostgreSQL stopped" test ! -e var/pg/postmaster.pid -a ! -e /var/tmp/arbiterd-dev-pg/postmaster.pid
$stopped || kill -KILL -- "-$run_pid" 2>/dev/null
echo "ci: stop: $(elapsed "$t") s"
tail -n 5 var/log/ci-run.out | sed 's/^/    /'

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
