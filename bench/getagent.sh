#!/bin/bash
# AgentRegistry.GetAgent through arbiterd (h2load) against the physical
# limit: pgbench running the same SQL as the same one-round-trip pipelined
# tenant transaction, with as many connections as --pool-max, in the same
# run on the same throwaway cluster. Then a load run: 1,000 concurrent
# streams over 100 connections with --pool-max 8, checking that no call
# fails (HTTP status from h2load, grpc-status from Admin.GetServerInfo) and
# that PostgreSQL never sees more than 8 connections of the app role.
#
#   bench/getagent.sh [--pool-max N] [--duration S] [--build DIR] [--no-load-run]
#                     [--compare OTHER_ARBITERD] [--profile PERF_DATA]
#
# --compare runs a second arbiterd binary (an older build, say) in every
# round too, interleaved, so both are measured on the same data and load.
# --profile records the server's CPU profile (perf record -e cpu-clock -g)
# during the first round's -c 4 -m 16 run into PERF_DATA.
#
# Builds a release arbiterd into --build (default /tmp/build-bench-release),
# starts a cluster with tests/pg/with-postgres.sh, migrates, seeds 10,000
# agents across 10 tenants, and prints one result table. Needs h2load,
# pgbench and /usr/bin/python3 with grpcio (for the Admin counters).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
pool_max=${BENCH_POOL_MAX:-4}
duration=${BENCH_DURATION:-10}
build=${BENCH_BUILD:-/tmp/build-bench-release}
load_run=${BENCH_LOAD:-1}
compare=${BENCH_COMPARE:-}
profile=${BENCH_PROFILE:-}
inner=0
while [ $# -gt 0 ]; do
    case "$1" in
    --pool-max) pool_max=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --no-load-run) load_run=0; shift ;;
    --compare) compare=$2; shift 2 ;;
    --profile) profile=$(realpath "$2"); shift 2 ;;
    --inner) inner=1; shift ;;
    *) echo "usage: $0 [--pool-max N] [--duration S] [--build DIR] [--no-load-run]" >&2; exit 2 ;;
    esac
done
export BENCH_POOL_MAX=$pool_max BENCH_DURATION=$duration BENCH_BUILD=$build BENCH_LOAD=$load_run
export BENCH_COMPARE=$compare BENCH_PROFILE=$profile

if [ "$inner" = 0 ]; then
    for tool in h2load pgbench; do
        command -v "$tool" >/dev/null || { echo "getagent.sh: $tool is missing" >&2; exit 1; }
    done
    if [ ! -f "$build/build.ninja" ]; then
        meson setup "$build" "$root" --buildtype=release -Dtests=false >/dev/null
    fi
    ninja -C "$build" >/dev/null
    exec "$root/tests/pg/with-postgres.sh" --migrate "$build/src/arbiterd" -- "$0" --inner
fi

# ---- inside the cluster ------------------------------------------------
work=$(mktemp -d /tmp/getagent-bench.XXXXXX)
chmod 0755 "$work"
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
PSQL="psql -X -q -A -t -v ON_ERROR_STOP=1"
stubs=$BENCH_BUILD/clients/python/gen
arbiterd=$BENCH_BUILD/src/arbiterd

echo "seeding 10,000 agents across 10 tenants..." >&2
$PSQL "$ARBITER_TEST_OWNER_URL" >/dev/null <<'SQL'
INSERT INTO tenants (id, name) SELECT 't' || i, 'tenant ' || i FROM generate_series(1, 10) i;
DO $$
DECLARE i int;
BEGIN
    FOR i IN 1..10 LOOP
        -- the owner is subject to the forced policies too: act as each tenant
        PERFORM set_config('app.current_tenant', 't' || i, true);
        INSERT INTO agents (name, model_family, last_active_at)
            SELECT 'agent-' || g, 'family-' || (g % 5), now() - g * interval '1 second'
            FROM generate_series(1, 1000) g;
        INSERT INTO agent_capabilities (agent_id, kind, value, ord)
            SELECT id, 'task_type', 'task-' || (abs(hashtext(id::text)) % 20), 1 FROM agents;
        INSERT INTO agent_capabilities (agent_id, kind, value, ord)
            SELECT id, 'language', 'lang-' || (abs(hashtext(id::text || 'l')) % 10), 1 FROM agents;
        INSERT INTO agent_performance (agent_id, success_rate) SELECT id, random() FROM agents;
        INSERT INTO agent_load (agent_id, active_tasks) SELECT id, (random() * 12)::int FROM agents;
    END LOOP;
END
$$;
SQL
$PSQL "$ARBITER_TEST_SUPERUSER_URL" -c "VACUUM ANALYZE" >/dev/null
agent_id=$($PSQL "$ARBITER_TEST_OWNER_URL" \
    -c "BEGIN; SELECT set_config('app.current_tenant', 't1', true) IS NULL;
        SELECT id FROM agents WHERE name = 'agent-500'; COMMIT;" | tail -n 1)
[ -n "$agent_id" ] || { echo "getagent.sh: seeding failed" >&2; exit 1; }

# The request body: one gRPC message (flag 0, 4-byte length) holding
# GetAgentRequest{id = agent_id} (field 1, length-delimited, 36 bytes).
/usr/bin/python3 - "$agent_id" "$work/body.bin" <<'PY'
import struct, sys
pb = b"\x0a" + bytes([len(sys.argv[1])]) + sys.argv[1].encode()
open(sys.argv[2], "wb").write(b"\x00" + struct.pack(">I", len(pb)) + pb)
PY

# pgbench: the same statements the pool pipelines for a GetAgent call:
# tenant settings, the handler's SELECT, one Sync (\endpipeline). The
# column list is read from the method table's AGENT_COLS (C string
# literals, concatenated and unescaped).
cols=$(/usr/bin/python3 - "$(dirname "$0")/../src/services/agent_registry.c" <<'PY'
import re, sys
src = open(sys.argv[1]).read()
block = re.search(r"#define AGENT_COLS((?:.*\\\n)*.*\n)", src).group(1)
print("".join(m.replace('\\"', '"') for m in re.findall(r'"((?:[^"\\]|\\.)*)"', block)))
PY
)
cat >"$work/getagent.pgbench" <<EOF
\\startpipeline
SELECT set_config('app.current_tenant', :tenant, true), set_config('statement_timeout', '30000', true);
SELECT $cols FROM agent_view WHERE id = :agent::uuid;
\\endpipeline
EOF

start_server() { # pool_max [binary]
    "${2:-$arbiterd}" serve --socket "$work/arbiterd.sock" --database-url "$ARBITER_TEST_DATABASE_URL" \
        --pool-min "$1" --pool-max "$1" --log-level error &
    server_pid=$!
    for _ in $(seq 100); do
        [ -S "$work/arbiterd.sock" ] && return 0
        sleep 0.05
    done
    echo "getagent.sh: arbiterd did not start" >&2
    exit 1
}
stop_server() {
    kill "$server_pid"; wait "$server_pid" || true; server_pid=
}

# p50 and p99 in ms of column |col| (microseconds) of the given files.
percentiles() { # col files...
    local col=$1; shift
    cat "$@" | awk -v c="$col" '{print $c}' | sort -n |
        awk '{v[NR]=$1} END {if (NR == 0) {print "- -"; exit}
            i50 = int(NR * 0.50); if (i50 < 1) i50 = 1
            i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
            printf "%.3f %.3f\n", v[i50] / 1000, v[i99] / 1000}'
}

admin_counts() { # prints "ok notok"
    ARBITER_PY_STUBS=$stubs /usr/bin/python3 - "unix://$work/arbiterd.sock" <<'PY'
import os, sys
sys.path.insert(0, os.environ["ARBITER_PY_STUBS"])
import grpc
from arbiter.v1 import admin_pb2, admin_pb2_grpc
info = admin_pb2_grpc.AdminStub(grpc.insecure_channel(sys.argv[1])).GetServerInfo(
    admin_pb2.GetServerInfoRequest())
ok = sum(s.count for s in info.calls_by_status if s.code == 0)
print(ok, info.calls_total - ok)
PY
}

h2load_run() { # connections streams logfile extra-args...
    local c=$1 m=$2 log=$3; shift 3
    h2load -B "unix:$work/arbiterd.sock" -c "$c" -m "$m" -t 1 \
        -H 'content-type: application/grpc' -H 'te: trailers' -H 'x-tenant-id: t1' \
        -d "$work/body.bin" --log-file="$log" "$@" \
        http://localhost/arbiter.v1.AgentRegistry/GetAgent
}

# ---- 1. throughput: arbiterd vs pgbench ----------------------------------
# The machine is shared (2 cores): the runs are interleaved in rounds and
# the median round is reported, so that background load hits both sides.
rate() { awk '/^finished in/ {for (i=1;i<=NF;i++) if ($i ~ /req\/s/) print $(i-1)}' "$1"; }
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR + 1) / 2)]}'; }
n=$BENCH_POOL_MAX
rounds=3
start_server "$n"
h2load_run 4 16 /dev/null -D 2 >/dev/null # warm up: prepare statements on every connection
for r in $(seq $rounds); do
    perf_pid=
    if [ "$r" = 1 ] && [ -n "$BENCH_PROFILE" ]; then
        perf record -q -e cpu-clock -F 2000 -g -p "$server_pid" -o "$BENCH_PROFILE" \
            -- sleep "$BENCH_DURATION" 2>/dev/null &
        perf_pid=$!
    fi
    h2load_run 4 16 "$work/h2.$r.log" -D "$BENCH_DURATION" >"$work/h2.$r.out"
    [ -n "$perf_pid" ] && wait "$perf_pid"
    # as many calls in flight as pgbench has transactions: the latency view
    h2load_run "$n" 1 "$work/h2lat.$r.log" -D "$BENCH_DURATION" >"$work/h2lat.$r.out"
    if [ -n "$BENCH_COMPARE" ]; then
        stop_server
        start_server "$n" "$BENCH_COMPARE"
        h2load_run 4 16 /dev/null -D 2 >/dev/null
        h2load_run 4 16 "$work/cmp.$r.log" -D "$BENCH_DURATION" >"$work/cmp.$r.out"
        h2load_run "$n" 1 "$work/cmplat.$r.log" -D "$BENCH_DURATION" >"$work/cmplat.$r.out"
        stop_server
        start_server "$n"
        h2load_run 4 16 /dev/null -D 2 >/dev/null
    fi
    (cd "$work" && mkdir -p "pg.$r" && cd "pg.$r" &&
        pgbench -n -M prepared -c "$n" -j 2 -T "$BENCH_DURATION" -l \
            -D tenant=t1 -D agent="$agent_id" -f ../getagent.pgbench \
            "$ARBITER_TEST_DATABASE_URL" >"../pgbench.$r.out" 2>&1) ||
        { cat "$work/pgbench.$r.out" >&2; exit 1; }
    echo "round $r: arbiterd $(rate "$work/h2.$r.out") calls/s," \
        "pgbench $(awk '/^tps = / {print $3}' "$work/pgbench.$r.out") tps" >&2
done
stop_server
h2_rps=$(for r in $(seq $rounds); do rate "$work/h2.$r.out"; done | median)
lat_rps=$(for r in $(seq $rounds); do rate "$work/h2lat.$r.out"; done | median)
pg_tps=$(for r in $(seq $rounds); do awk '/^tps = / {print $3}' "$work/pgbench.$r.out"; done |
    median)
h2_ok=$(cat "$work"/h2.*.out | awk '/^status codes:/ {s += $3} END {print s}')
read -r h2_p50 h2_p99 <<<"$(percentiles 3 "$work"/h2.*.log)"
read -r lat_p50 lat_p99 <<<"$(percentiles 3 "$work"/h2lat.*.log)"
read -r pg_p50 pg_p99 <<<"$(percentiles 3 "$work"/pg.*/pgbench_log.*)"

ratio=$(awk -v a="$h2_rps" -v b="$pg_tps" 'BEGIN {printf "%.1f", (b > 0 ? 100 * a / b : 0)}')
printf '\nGetAgent, median of %d interleaved rounds of %s s, %d PostgreSQL connections,\n' \
    "$rounds" "$BENCH_DURATION" "$n"
printf '10,000 agents in 10 tenants\n'
printf '%-34s %12s %10s %10s\n' "" "calls/s" "p50 ms" "p99 ms"
printf '%-34s %12.0f %10s %10s\n' "arbiterd (h2load -c 4 -m 16)" "$h2_rps" "$h2_p50" "$h2_p99"
printf '%-34s %12.0f %10s %10s\n' "arbiterd (h2load -c $n -m 1)" "$lat_rps" "$lat_p50" "$lat_p99"
printf '%-34s %12.0f %10s %10s\n' "pgbench (-M prepared, pipelined)" "$pg_tps" "$pg_p50" "$pg_p99"
printf 'arbiterd / pgbench = %s %% (target >= 50 %%); h2load 2xx: %s\n' "$ratio" "$h2_ok"
if [ -n "$BENCH_COMPARE" ]; then
    cmp_rps=$(for r in $(seq $rounds); do rate "$work/cmp.$r.out"; done | median)
    cmplat_rps=$(for r in $(seq $rounds); do rate "$work/cmplat.$r.out"; done | median)
    read -r cmp_p50 cmp_p99 <<<"$(percentiles 3 "$work"/cmp.*.log)"
    read -r cmplat_p50 cmplat_p99 <<<"$(percentiles 3 "$work"/cmplat.*.log)"
    printf '\ncompared with %s, in the same rounds:\n' "$BENCH_COMPARE"
    printf '%-34s %12.0f %10s %10s\n' "other (h2load -c 4 -m 16)" "$cmp_rps" "$cmp_p50" "$cmp_p99"
    printf '%-34s %12.0f %10s %10s\n' "other (h2load -c $n -m 1)" "$cmplat_rps" "$cmplat_p50" \
        "$cmplat_p99"
    printf 'this / other = %s %% at -c 4 -m 16, %s %% at -c %s -m 1\n' \
        "$(awk -v a="$h2_rps" -v b="$cmp_rps" 'BEGIN {printf "%.1f", 100 * a / b}')" \
        "$(awk -v a="$lat_rps" -v b="$cmplat_rps" 'BEGIN {printf "%.1f", 100 * a / b}')" "$n"
fi

[ "$BENCH_LOAD" = 1 ] || exit 0

# ---- 2. load: 1,000 streams over 100 connections, --pool-max 8 -----------
start_server 8
read -r ok0 bad0 <<<"$(admin_counts)"
touch "$work/polling"
echo 0 >"$work/peak"
(
    peak=0
    while [ -e "$work/polling" ]; do
        c=$($PSQL "$ARBITER_TEST_SUPERUSER_URL" \
            -c "SELECT count(*) FROM pg_stat_activity WHERE usename = 'arbiter_app'")
        [ "$c" -gt "$peak" ] && peak=$c
        echo "$peak" >"$work/peak"
        sleep 0.1
    done
) &
poller=$!
h2load_run 100 10 /dev/null -n 100000 >"$work/load.out"
rm -f "$work/polling"
wait "$poller"
read -r ok1 bad1 <<<"$(admin_counts)"
stop_server
sent=$(awk '/^requests:/ {print $2}' "$work/load.out")
h2_2xx=$(awk '/^status codes:/ {print $3}' "$work/load.out")
h2_fail=$(awk '/^requests:/ {print $10 + $12}' "$work/load.out")
load_rps=$(rate "$work/load.out")
grpc_ok=$((ok1 - ok0 - 1)) # minus the first GetServerInfo itself
grpc_bad=$((bad1 - bad0))
peak=$(cat "$work/peak")
printf '\nLoad: h2load -c 100 -m 10 (1,000 concurrent streams), --pool-max 8\n'
printf 'requests %s, %s calls/s, HTTP 2xx %s, h2load failed/errored %s\n' \
    "$sent" "$load_rps" "$h2_2xx" "$h2_fail"
printf 'grpc-status OK %s, not OK %s; peak PostgreSQL connections of arbiter_app: %s\n' \
    "$grpc_ok" "$grpc_bad" "$peak"
if [ "$grpc_bad" -ne 0 ] || [ "$h2_fail" -ne 0 ] || [ "$peak" -gt 8 ] || [ "$grpc_ok" -ne "$sent" ]; then
    echo "LOAD RUN FAILED" >&2
    exit 1
fi
echo "load run: zero failed calls, never more than 8 connections"
