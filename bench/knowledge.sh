#!/bin/bash
# Knowledge through arbiterd against the physical limit, pgbench running the
# same SQL as the same one-round-trip pipelined tenant transaction (the
# pool's settings statement, the method's statement, one Sync) with as many
# connections as --pool-max, in the same run on the same throwaway cluster:
#
#   1. GetCached, every call a hit (h2load: one body, one key), against
#      pgbench running get_cached_sql;
#   2. StoreResults of 100 new results per call (bench/knowledge_driver.py,
#      grpc.aio: every call needs new contents, which h2load cannot send),
#      against pgbench running store_results_sql.
#
#   bench/knowledge.sh [--pool-max N] [--duration S] [--rounds N] [--build DIR]
#
# The SQL is read from src/services/knowledge.c (bench/knowledge_sql.py).
# pgbench cannot vary a text parameter per transaction, so its
# StoreResults statement differs in one place: the contents parameter is
# (SELECT array_agg(c || ' ' || :salt ORDER BY o) FROM unnest(:contents)
# WITH ORDINALITY ...) with a random :salt, 100 concatenations next to 100
# row inserts; the driver appends a unique suffix in Python instead.
# Each method is one phase of interleaved rounds (ABBA order) and the
# median round is reported, so that background load on the shared machine
# hits both sides. Checks: every
# call answered OK (Admin.GetServerInfo), every GetCached was a hit (the
# miss counters stay 0), every StoreResults result was inserted (no
# duplicates).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
pool_max=${BENCH_POOL_MAX:-4}
duration=${BENCH_DURATION:-10}
rounds=${BENCH_ROUNDS:-3}
build=${BENCH_BUILD:-/tmp/build-bench-knowledge}
inner=0
while [ $# -gt 0 ]; do
    case "$1" in
    --pool-max) pool_max=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --inner) inner=1; shift ;;
    *) echo "usage: $0 [--pool-max N] [--duration S] [--rounds N] [--build DIR]" >&2; exit 2 ;;
    esac
done
export BENCH_POOL_MAX=$pool_max BENCH_DURATION=$duration BENCH_ROUNDS=$rounds BENCH_BUILD=$build

if [ "$inner" = 0 ]; then
    for tool in h2load pgbench cpp; do
        command -v "$tool" >/dev/null || { echo "knowledge.sh: $tool is missing" >&2; exit 1; }
    done
    if [ ! -f "$build/build.ninja" ]; then
        meson setup "$build" "$root" --buildtype=release -Dtests=false >/dev/null
    fi
    ninja -C "$build" >/dev/null
    exec "$root/tests/pg/with-postgres.sh" --migrate "$build/src/arbiterd" -- "$0" --inner
fi

# ---- inside the cluster ------------------------------------------------
work=$(mktemp -d /tmp/knowledge-bench.XXXXXX)
chmod 0755 "$work"
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
PSQL="psql -X -q -A -t -v ON_ERROR_STOP=1"
export ARBITER_PY_STUBS=$BENCH_BUILD/clients/python/gen
arbiterd=$BENCH_BUILD/src/arbiterd
n=$BENCH_POOL_MAX

echo "seeding 10 tenants, 10,000 cache entries each..." >&2
$PSQL "$ARBITER_TEST_OWNER_URL" >/dev/null <<'SQL'
INSERT INTO tenants (id, name) SELECT 't' || i, 'tenant ' || i FROM generate_series(1, 10) i;
DO $$
DECLARE i int;
BEGIN
    FOR i IN 1..10 LOOP
        PERFORM set_config('app.current_tenant', 't' || i, true);
        INSERT INTO knowledge_cache (key, content, expires_at)
            SELECT 'key-' || g, jsonb_build_object('answer', repeat('x', 200), 'n', g),
                   now() + interval '1 day'
            FROM generate_series(1, 10000) g;
        INSERT INTO knowledge_queries (query_text, query_type)
            SELECT 'bench query ' || g, 'FACTUAL' FROM generate_series(1, 100) g;
    END LOOP;
END
$$;
SQL
$PSQL "$ARBITER_TEST_SUPERUSER_URL" -c "VACUUM ANALYZE" >/dev/null
query_id=$($PSQL "$ARBITER_TEST_OWNER_URL" \
    -c "BEGIN; SELECT set_config('app.current_tenant', 't1', true) IS NULL;
        SELECT id FROM knowledge_queries WHERE query_text = 'bench query 1'; COMMIT;" | tail -n 1)
[ -n "$query_id" ] || { echo "knowledge.sh: seeding failed" >&2; exit 1; }

# The 100 base results (about 400 characters of content each), as JSON for
# the driver and as array literals for pgbench; and the GetCached body: one
# gRPC message (flag 0, 4-byte length) holding GetCachedRequest{key}.
/usr/bin/python3 - "$work" <<'PY'
import json, random, struct, sys
work = sys.argv[1]
rnd = random.Random(7)
vocab = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(3, 10)))
         for _ in range(3000)]
def words(k):
    return " ".join(rnd.choice(vocab) for _ in range(k))
base = {
    "titles": ["%s %d" % (words(6), i) for i in range(100)],
    "contents": [words(60) for _ in range(100)],
    "urls": ["https://example.org/%d" % i for i in range(100)],
    "source_types": [rnd.choice(["WEB", "ACADEMIC", "NEWS", "DOCUMENTATION"]) for _ in range(100)],
    "relevances": [round(rnd.random(), 3) for _ in range(100)],
    "credibilities": [round(rnd.random(), 3) for _ in range(100)],
    "qualities": [rnd.choice(["HIGH", "MEDIUM", "LOW"]) for _ in range(100)],
    "providers": [rnd.choice(["google", "bing", "arxiv"]) for _ in range(100)],
}
json.dump(base, open(work + "/base.json", "w"))
def literal(xs):
    return "{" + ",".join('"%s"' % str(x).replace("\\", "\\\\").replace('"', '\\"')
                          for x in xs) + "}"
for k, v in base.items():
    open("%s/%s.lit" % (work, k), "w").write(literal(v))
open(work + "/nulls.lit", "w").write("{" + ",".join(["NULL"] * 100) + "}")
key = b"key-500"
pb = b"\x0a" + bytes([len(key)]) + key
open(work + "/getcached.bin", "wb").write(b"\x00" + struct.pack(">I", len(pb)) + pb)
PY

# pgbench scripts: the pool's settings statement, the method's statement
# with $n as pgbench variables, one Sync.
settings="SELECT current_setting('app.current_tenant', true), set_config('app.current_tenant', :tenant, true), set_config('app.current_user', '', true), set_config('app.current_session', '', true), set_config('statement_timeout', '30000', true);"
pgsql() { # name var-for-$1 var-for-$2 ...: the statement with $n replaced
    /usr/bin/python3 - "$here" "$@" <<'PY'
import re, sys
sys.path.insert(0, sys.argv[1])
import knowledge_sql
sql = knowledge_sql.statements()[sys.argv[2]]
names = sys.argv[3:]
print(re.sub(r"\$(\d+)(::\w+(\[\])?)?",
             lambda m: names[int(m.group(1)) - 1] if names[int(m.group(1)) - 1].startswith("(")
             else ":" + names[int(m.group(1)) - 1] + (m.group(2) or ""), sql))
PY
}
{
    echo '\startpipeline'
    echo "$settings"
    echo "$(pgsql get_cached_sql key);"
    echo '\endpipeline'
} >"$work/getcached.pgbench"
salted="(SELECT array_agg(c || ' ' || :salt ORDER BY o) FROM unnest(:contents::text[]) WITH ORDINALITY AS u(c, o))"
{
    echo '\set salt random(1, 1000000000000000)'
    echo '\startpipeline'
    echo "$settings"
    echo "$(pgsql store_results_sql query titles "$salted" urls source_types relevances \
        credibilities qualities providers published retrieved);"
    echo '\endpipeline'
} >"$work/storeresults.pgbench"

start_server() {
    "$arbiterd" serve --socket "$work/arbiterd.sock" --database-url "$ARBITER_TEST_DATABASE_URL" \
        --pool-min "$n" --pool-max "$n" --log-level error &
    server_pid=$!
    for _ in $(seq 100); do
        [ -S "$work/arbiterd.sock" ] && return 0
        sleep 0.05
    done
    echo "knowledge.sh: arbiterd did not start" >&2
    exit 1
}
stop_server() {
    kill "$server_pid"; wait "$server_pid" || true; server_pid=
}
admin_counts() { # prints "ok cancelled other"
    /usr/bin/python3 - "unix://$work/arbiterd.sock" <<'PY'
import os, sys
sys.path.insert(0, os.environ["ARBITER_PY_STUBS"])
import grpc
from arbiter.v1 import admin_pb2, admin_pb2_grpc
info = admin_pb2_grpc.AdminStub(grpc.insecure_channel(sys.argv[1])).GetServerInfo(
    admin_pb2.GetServerInfoRequest())
ok = sum(s.count for s in info.calls_by_status if s.code == 0)
cancelled = sum(s.count for s in info.calls_by_status if s.code == 1)
print(ok, cancelled, info.calls_total - ok - cancelled)
PY
}
h2load_getcached() { # logfile duration
    h2load -B "unix:$work/arbiterd.sock" -c 4 -m 16 -t 1 \
        -H 'content-type: application/grpc' -H 'te: trailers' -H 'x-tenant-id: t1' \
        -d "$work/getcached.bin" --log-file="$1" -D "$2" \
        http://localhost/arbiter.v1.Knowledge/GetCached
}
pgbench_run() { # script dir duration vars...
    local script=$1 dir=$2 dur=$3; shift 3
    (mkdir -p "$work/$dir" && cd "$work/$dir" &&
        pgbench -n -M prepared -c "$n" -j 2 -T "$dur" -l -f "$work/$script" "$@" \
            "$ARBITER_TEST_DATABASE_URL" >out 2>&1) ||
        { cat "$work/$dir/out" >&2; exit 1; }
}
driver() { # duration
    /usr/bin/python3 "$here/knowledge_driver.py" "$work/arbiterd.sock" t1 "$query_id" \
        "$work/base.json" --duration "$1" --inflight 16 --channels 4
}
store_vars() {
    local v
    for v in titles contents urls source_types relevances credibilities qualities providers; do
        printf -- '-D\0%s=%s\0' "$v" "$(cat "$work/$v.lit")"
    done
    printf -- '-D\0published=%s\0-D\0retrieved=%s\0' "$(cat "$work/nulls.lit")" \
        "$(cat "$work/nulls.lit")"
}
rate() { awk '/^finished in/ {for (i=1;i<=NF;i++) if ($i ~ /req\/s/) print $(i-1)}' "$1"; }
tps() { awk '/^tps = / {print $3}' "$1"; }
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR + 1) / 2)]}'; }
percentiles() { # col files...: p50 p99 in ms of a column in microseconds
    local col=$1; shift
    cat "$@" | awk -v c="$col" '{print $c}' | sort -n |
        awk '{v[NR]=$1} END {if (NR == 0) {print "- -"; exit}
            i50 = int(NR * 0.50); if (i50 < 1) i50 = 1
            i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
            printf "%.3f %.3f\n", v[i50] / 1000, v[i99] / 1000}'
}
jget() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$@"; }

mapfile -d '' svars < <(store_vars)
load_before=$(cut -d ' ' -f 1-3 /proc/loadavg)
gc_arbiterd() { h2load_getcached "$work/h2.$1.log" "$BENCH_DURATION" >"$work/h2.$1.out"; }
gc_pgbench() { pgbench_run getcached.pgbench "pgc.$1" "$BENCH_DURATION" -D tenant=t1 -D key=key-500; }
sr_arbiterd() { driver "$BENCH_DURATION" >"$work/drv.$1.json"; }
sr_pgbench() {
    pgbench_run storeresults.pgbench "pgs.$1" "$BENCH_DURATION" -D tenant=t1 -D query="$query_id" \
        "${svars[@]}"
}
quiesce() { # let autovacuum and the checkpointer catch up between phases
    $PSQL "$ARBITER_TEST_SUPERUSER_URL" -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
}
start_server
read -r ok0 cancel0 bad0 <<<"$(admin_counts)"
# Warm up (prepare the statements on every connection), then one phase per
# method: the StoreResults runs leave work behind (autovacuum, dirty
# buffers) that must not land on one side of the GetCached comparison.
# Within a phase the order alternates (ABBA), so that drift in the
# machine's load hits both sides alike.
h2load_getcached /dev/null 2 >/dev/null
pgbench_run getcached.pgbench warm1 2 -D tenant=t1 -D key=key-500
quiesce
for r in $(seq "$BENCH_ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then gc_arbiterd "$r"; gc_pgbench "$r"; else gc_pgbench "$r"; gc_arbiterd "$r"; fi
    echo "GetCached round $r: arbiterd $(rate "$work/h2.$r.out")/s," \
        "pgbench $(tps "$work/pgc.$r/out") tps" >&2
done
driver 2 >/dev/null
pgbench_run storeresults.pgbench warm2 2 -D tenant=t1 -D query="$query_id" "${svars[@]}"
quiesce
for r in $(seq "$BENCH_ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then sr_arbiterd "$r"; sr_pgbench "$r"; else sr_pgbench "$r"; sr_arbiterd "$r"; fi
    echo "StoreResults round $r: arbiterd $(jget "$work/drv.$r.json" rate)/s," \
        "pgbench $(tps "$work/pgs.$r/out") tps" >&2
done
read -r ok1 cancel1 bad1 <<<"$(admin_counts)"
stop_server

# ---- checks ----------------------------------------------------------------
# h2load -D and the driver stop with calls in flight: those are CANCELLED
calls_bad=$((bad1 - bad0))
calls_ok=$((ok1 - ok0 - 1)) # minus the first GetServerInfo
calls_cancelled=$((cancel1 - cancel0))
misses=$($PSQL "$ARBITER_TEST_OWNER_URL" -c "BEGIN; SELECT set_config('app.current_tenant', 't1',
    true) IS NULL; SELECT COALESCE(sum(misses), 0) FROM knowledge_cache_counters; COMMIT;" | tail -n 1)
dups=0; errs=0
for r in $(seq "$BENCH_ROUNDS"); do
    dups=$((dups + $(jget "$work/drv.$r.json" duplicates)))
    errs=$((errs + $(jget "$work/drv.$r.json" errors)))
done
h2_fail=$(cat "$work"/h2.*.out | awk '/^requests:/ {s += $10 + $12} END {print s}')

# ---- report ----------------------------------------------------------------
gc_rps=$(for r in $(seq "$BENCH_ROUNDS"); do rate "$work/h2.$r.out"; done | median)
gc_tps=$(for r in $(seq "$BENCH_ROUNDS"); do tps "$work/pgc.$r/out"; done | median)
sr_rps=$(for r in $(seq "$BENCH_ROUNDS"); do jget "$work/drv.$r.json" rate; done | median)
sr_tps=$(for r in $(seq "$BENCH_ROUNDS"); do tps "$work/pgs.$r/out"; done | median)
sr_p50=$(for r in $(seq "$BENCH_ROUNDS"); do jget "$work/drv.$r.json" p50_ms; done | median)
sr_p99=$(for r in $(seq "$BENCH_ROUNDS"); do jget "$work/drv.$r.json" p99_ms; done | median)
read -r gc_p50 gc_p99 <<<"$(percentiles 3 "$work"/h2.*.log)"
read -r pgc_p50 pgc_p99 <<<"$(percentiles 3 "$work"/pgc.*/pgbench_log.*)"
read -r pgs_p50 pgs_p99 <<<"$(percentiles 3 "$work"/pgs.*/pgbench_log.*)"
pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", (b > 0 ? 100 * a / b : 0)}'; }

printf '\nMedian of %d interleaved rounds of %s s, %d PostgreSQL connections' \
    "$BENCH_ROUNDS" "$BENCH_DURATION" "$n"
printf ' (load average %s before, %s after)\n' "$load_before" "$(cut -d ' ' -f 1-3 /proc/loadavg)"
printf '%-46s %10s %9s %9s\n' "" "per s" "p50 ms" "p99 ms"
printf '%-46s %10.0f %9s %9s\n' "GetCached hit, arbiterd (h2load -c 4 -m 16)" "$gc_rps" \
    "$gc_p50" "$gc_p99"
printf '%-46s %10.0f %9s %9s\n' "GetCached hit, pgbench (-M prepared, pipelined)" "$gc_tps" \
    "$pgc_p50" "$pgc_p99"
printf '%-46s %10.1f %9s %9s\n' "StoreResults x100, arbiterd (driver, 16 in flight)" "$sr_rps" \
    "$sr_p50" "$sr_p99"
printf '%-46s %10.1f %9s %9s\n' "StoreResults x100, pgbench (-M prepared, pipelined)" \
    "$sr_tps" "$pgs_p50" "$pgs_p99"
printf 'GetCached: arbiterd / pgbench = %s %%; StoreResults: arbiterd / pgbench = %s %%' \
    "$(pct "$gc_rps" "$gc_tps")" "$(pct "$sr_rps" "$sr_tps")"
printf ' (target >= 70 %%)\n'
printf 'rounds: GetCached %s / %s; StoreResults %s / %s\n' \
    "$(for r in $(seq "$BENCH_ROUNDS"); do printf '%s ' "$(rate "$work/h2.$r.out")"; done)" \
    "$(for r in $(seq "$BENCH_ROUNDS"); do printf '%s ' "$(tps "$work/pgc.$r/out")"; done)" \
    "$(for r in $(seq "$BENCH_ROUNDS"); do printf '%s ' "$(jget "$work/drv.$r.json" rate)"; done)" \
    "$(for r in $(seq "$BENCH_ROUNDS"); do printf '%s ' "$(tps "$work/pgs.$r/out")"; done)"
printf 'checks: calls OK %s, cancelled at the end of a run %s, other %s; h2load failed %s;\n' \
    "$calls_ok" "$calls_cancelled" "$calls_bad" "$h2_fail"
printf '        cache misses %s, driver errors %s,' "$misses" "$errs"
printf ' duplicates %s\n' "$dups"
if [ "$calls_bad" -ne 0 ] || [ "$h2_fail" -ne 0 ] || [ "$misses" -ne 0 ] || [ "$errs" -ne 0 ] ||
    [ "$dups" -ne 0 ]; then
    echo "CHECKS FAILED" >&2
    exit 1
fi
