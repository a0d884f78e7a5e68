#!/bin/bash
# The Orchestrator's full cycle (EnqueueTask -> DequeueTasks -> CompleteTask)
# through arbiterd with 4 workers (bench/orchestrator_bench.c on libarbiter),
# each with 4 cycles in flight on its connection (as getagent.sh's h2load
# -c 4 -m 16) and, for comparison, strictly sequential; against pgbench
# running the same three statements as the same pipelined tenant
# transactions (settings + statement + Sync, one round trip each) with 4
# clients, in interleaved rounds on one throwaway cluster; the median round
# is reported. Both sides are counted in tasks completed per second. Each round then measures latencies: enqueue -> event of
# a WatchQueue stream while one worker cycles, and enqueue -> answer of a
# waiting long poll.
#
#   bench/orchestrator.sh [--duration S] [--rounds N] [--workers N] [--build DIR]
#
# Builds a release arbiterd into --build (default /tmp/build-bench-orchestrator),
# starts a cluster with tests/pg/with-postgres.sh, migrates, and prints one
# table. Needs pgbench. The pgbench statements are read from the sources
# (src/db/conn.c, src/services/orchestrator.c), so they stay the server's;
# the one difference: pgbench cannot carry the dequeued id and token to the
# next pipeline (no \gset in pipeline mode), so its CompleteTask statement
# finds its client's leased task itself (an index probe of the few LEASED
# rows, leased_by = the client).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
duration=${BENCH_DURATION:-10}
rounds=${BENCH_ROUNDS:-3}
workers=${BENCH_WORKERS:-4}
build=${BENCH_BUILD:-/tmp/build-bench-orchestrator}
inner=0
while [ $# -gt 0 ]; do
    case "$1" in
    --duration) duration=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --inner) inner=1; shift ;;
    *) echo "usage: $0 [--duration S] [--rounds N] [--workers N] [--build DIR]" >&2; exit 2 ;;
    esac
done
export BENCH_DURATION=$duration BENCH_ROUNDS=$rounds BENCH_WORKERS=$workers BENCH_BUILD=$build

if [ "$inner" = 0 ]; then
    command -v pgbench >/dev/null || { echo "orchestrator.sh: pgbench is missing" >&2; exit 1; }
    if [ ! -f "$build/build.ninja" ]; then
        meson setup "$build" "$root" --buildtype=release -Dtests=false >/dev/null
    fi
    ninja -C "$build" >/dev/null
    exec "$root/tests/pg/with-postgres.sh" --migrate "$build/src/arbiterd" -- "$0" --inner
fi

# ---- inside the cluster ------------------------------------------------
work=$(mktemp -d /tmp/orchestrator-bench.XXXXXX)
chmod 0755 "$work"
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
PSQL="psql -X -q -A -t -v ON_ERROR_STOP=1"
arbiterd=$BENCH_BUILD/src/arbiterd
driver=$BENCH_BUILD/bench/orchestrator-bench
n=$BENCH_WORKERS

# arbiterd and pgbench share one tenant (so they share its index and its
# dead rows, as they share the cluster); the latency runs use tenants of
# their own. A queue table turns over fast: the cluster vacuums every 10 s
# instead of every minute, as the README recommends for a busy queue, and
# the table's own thresholds (migrations/0007) do the rest.
$PSQL "$ARBITER_TEST_OWNER_URL" >/dev/null <<'SQL'
INSERT INTO tenants (id, name) VALUES ('bench', 'throughput'), ('watch', 'WatchQueue latency'),
                                      ('poll', 'long-poll latency');
SQL
$PSQL "$ARBITER_TEST_SUPERUSER_URL" -c "ALTER SYSTEM SET autovacuum_naptime = '10s'" \
    -c "SELECT pg_reload_conf()" >/dev/null

# The statements, from the sources (C string literals, macros expanded).
/usr/bin/python3 - "$root" "$work" <<'PY'
import re, sys
root, work = sys.argv[1], sys.argv[2]
svc = open(root + "/src/services/orchestrator.c").read()
conn = open(root + "/src/db/conn.c").read()

def literals(text):
    return "".join(m.replace('\\"', '"') for m in re.findall(r'"((?:[^"\\]|\\.)*)"', text))

cols = re.findall(r'COL\(p, "(\w+)"\)', re.search(r"#define TASK_COLS_AS\(p\)((?:.*\\\n)*.*\n)",
                                                 svc).group(1))
def task_cols(prefix):
    return ", ".join('%s AS "%s%s"' % (c, prefix, c) for c in cols)

def expand(text):
    """String literals and the column macros, in order."""
    out = []
    for lit, mac in re.findall(r'"((?:[^"\\]|\\.)*)"|(TASK_COLS_AS\("task\."\)|TASK_COLS)', text):
        out.append(lit.replace('\\"', '"') if not mac else
                   task_cols("task." if "task." in mac else ""))
    return "".join(out)

def method_sql(name):
    body = re.search(r'\.name = "%s",.*?\.stmts = \{\{(.*?),\s*SVC_PARAMS' % name, svc, re.S)
    return expand(body.group(1))

settings = literals(re.search(r"#define SETTINGS_SQL((?:.*\\\n)*.*\n)", conn).group(1))
dequeue = expand(re.search(r"static const char dequeue_sql\[\] =(.*?);", svc, re.S).group(1))
enqueue = method_sql("EnqueueTask")
complete = method_sql("CompleteTask")
assert "orchestrator_complete($1::uuid, $2::uuid, $3)" in complete, complete
complete = complete.replace(
    "orchestrator_complete($1::uuid, $2::uuid, $3)",
    "(SELECT id AS _id, lease_token AS _tok FROM tasks WHERE status = 'LEASED'"
    " AND leased_by = :client_id LIMIT 1) AS l, LATERAL orchestrator_complete(l._id, l._tok, '')")

def params(sql, names):
    for i, v in reversed(list(enumerate(names, 1))):
        sql = sql.replace("$%d" % i, v)
    return sql

settings = params(settings, [":tenant", "''", "''", ":timeout"])
with open(work + "/cycle.pgbench", "w") as f:
    for stmt in (params(enqueue, [":task"]),
                 params(dequeue, [":client_id", ":types", ":max", ":lease"]),
                 complete):
        f.write("\\startpipeline\n%s;\n%s;\n\\endpipeline\n" % (settings, stmt))
PY
task='{"id": "", "task_type": "bench", "priority": 0, "payload_json": "{\"n\": 1}", "max_attempts": 0, "timeout_ms": 0, "run_after": null, "idempotency_key": "", "budget_max_files": 0, "budget_max_loc": 0}'
$PSQL "$ARBITER_TEST_SUPERUSER_URL" -c "VACUUM ANALYZE" >/dev/null

start_server() {
    "$arbiterd" serve --socket "$work/arbiterd.sock" --database-url "$ARBITER_TEST_DATABASE_URL" \
        --pool-min "$n" --pool-max "$n" --log-level error &
    server_pid=$!
    for _ in $(seq 100); do
        [ -S "$work/arbiterd.sock" ] && return 0
        sleep 0.05
    done
    echo "orchestrator.sh: arbiterd did not start" >&2
    exit 1
}
stop_server() {
    kill "$server_pid"; wait "$server_pid" || true; server_pid=
}
value() { awk -v k="$1" '$1 == k {print $2}' "$2"; }
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR + 1) / 2)]}'; }
pg_rate() { awk '/^tps = / {printf "%.0f", $3}' "$1"; }

completed() {
    $PSQL "$ARBITER_TEST_SUPERUSER_URL" \
        -c "SELECT count(*) FROM tasks WHERE tenant_id = 'bench' AND status = 'COMPLETED'"
}

start_server
"$driver" "$work/arbiterd.sock" bench cycle 2 "$n" 1 >/dev/null # warm up: prepare statements
for r in $(seq "$BENCH_ROUNDS"); do
    "$driver" "$work/arbiterd.sock" bench cycle "$BENCH_DURATION" "$n" 1 >"$work/seq.$r"
    "$driver" "$work/arbiterd.sock" bench cycle "$BENCH_DURATION" "$n" 4 >"$work/arb.$r"
    "$driver" "$work/arbiterd.sock" watch cycle "$BENCH_DURATION" 1 1 watch >"$work/watch.$r"
    "$driver" "$work/arbiterd.sock" poll poll 200 >"$work/poll.$r"
    before=$(completed)
    (cd "$work" && mkdir -p "pg.$r" && cd "pg.$r" &&
        pgbench -n -M prepared -c "$n" -j 2 -T "$BENCH_DURATION" \
            -D tenant=bench -D timeout=30000 -D types='{}' -D max=1 -D lease=30000 \
            -D task="$task" -f ../cycle.pgbench "$ARBITER_TEST_DATABASE_URL" \
            >"../pgbench.$r.out" 2>&1) || { cat "$work/pgbench.$r.out" >&2; exit 1; }
    # pgbench counts a script run whose dequeue found nothing as a cycle too;
    # what compares with arbiterd's completed tasks is the tasks it completed
    echo "pg_rate $(( ($(completed) - before) / BENCH_DURATION ))" >"$work/pgrate.$r"
    echo "round $r: arbiterd $(value cycle_rate "$work/arb.$r") (4 in flight per worker)," \
        "$(value cycle_rate "$work/seq.$r") (1 in flight) tasks/s;" \
        "pgbench $(value pg_rate "$work/pgrate.$r") tasks/s ($(pg_rate "$work/pgbench.$r.out") tps)" >&2
done
stop_server
errors=$(cat "$work"/seq.* "$work"/arb.* "$work"/watch.* "$work"/poll.* |
    awk '$1 == "errors" {s += $2} END {print s}')
med() { for r in $(seq "$BENCH_ROUNDS"); do value "$1" "$work/$2.$r"; done | median; }
arb=$(med cycle_rate arb)
seq1=$(med cycle_rate seq)
pg=$(med pg_rate pgrate)
pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", (b > 0 ? 100 * a / b : 0)}'; }
printf '\nOrchestrator full cycle (EnqueueTask, DequeueTasks, CompleteTask), median of %d\n' \
    "$BENCH_ROUNDS"
printf 'interleaved rounds of %s s, %d workers, %d PostgreSQL connections\n' "$BENCH_DURATION" "$n" "$n"
printf '%-50s %10s %10s %10s %8s\n' "" "tasks/s" "p50 ms" "p99 ms" "of pg"
printf '%-50s %10.0f %10s %10s %7s%%\n' "arbiterd, $n workers x 4 cycles in flight" "$arb" \
    "$(med cycle_p50_ms arb)" "$(med cycle_p99_ms arb)" "$(pct "$arb" "$pg")"
printf '%-50s %10.0f %10s %10s %7s%%\n' "arbiterd, $n workers x 1 (strictly sequential)" "$seq1" \
    "$(med cycle_p50_ms seq)" "$(med cycle_p99_ms seq)" "$(pct "$seq1" "$pg")"
printf '%-50s %10.0f\n' "pgbench -c $n (-M prepared, the same 3 pipelines)" "$pg"
printf 'target: arbiterd >= 60 %% of pgbench; errors: %s\n' "$errors"
printf '\n%-50s %10s %10s %10s\n' "latency, median of the rounds" "p50 ms" "p99 ms" "max ms"
printf '%-50s %10s %10s %10s\n' "enqueue -> WatchQueue event (1 worker cycling)" \
    "$(med watch_p50_ms watch)" "$(med watch_p99_ms watch)" "$(med watch_max_ms watch)"
printf '%-50s %10s %10s %10s\n' "enqueue -> waiting long poll (idle)" "$(med poll_p50_ms poll)" \
    "$(med poll_p99_ms poll)" "$(med poll_max_ms poll)"
echo "target: WatchQueue p99 <= 20 ms"
[ "$errors" = 0 ]
