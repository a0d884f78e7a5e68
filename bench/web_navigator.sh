#!/bin/bash
# WebNavigator through arbiterd against the physical limit: pgbench running
# the same SQL as the same one-round-trip pipelined tenant transaction
# (tenant settings + the method's statement + one Sync), with as many
# connections as --pool-max, on the same throwaway cluster, in interleaved
# rounds (median reported). Three workloads:
#
#   hot      AcquireRateLimit on one domain: every call queues on one row lock
#   domains  AcquireRateLimit on 1,000 domains, chosen at random per call
#   claim    ClaimNodes (max 10, lease 10 min) by 4 concurrent claimers
#            walking a fresh 40,000-node frontier (one traversal per run)
#
# arbiterd is driven by bench/web_navigator_driver (libarbiter; h2load
# cannot vary the request per call): 4 connections x 16 streams for the
# rate limits, 4 x 1 (four claimers) for ClaimNodes.
#
#   bench/web_navigator.sh [--pool-max N] [--duration S] [--rounds R]
#                          [--claims N] [--build DIR]
#
# Builds a release arbiterd and the driver into --build (default
# /tmp/build-bench-web-<checksum of the checkout's path>), starts a cluster with tests/pg/with-postgres.sh,
# migrates, seeds, and prints one result table. Needs pgbench and cc (the
# statements are read from src/services/web_navigator.c through the C
# preprocessor, so pgbench runs exactly what the server runs).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
pool_max=${BENCH_POOL_MAX:-4}
duration=${BENCH_DURATION:-10}
rounds=${BENCH_ROUNDS:-3}
claims=${BENCH_CLAIMS:-4000}
# One release build per checkout: a build directory configured for another
# checkout would quietly benchmark that checkout's code.
build=${BENCH_BUILD:-/tmp/build-bench-web-$(printf %s "$root" | cksum | cut -d' ' -f1)}
inner=0
while [ $# -gt 0 ]; do
    case "$1" in
    --pool-max) pool_max=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --claims) claims=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --inner) inner=1; shift ;;
    *) echo "usage: $0 [--pool-max N] [--duration S] [--rounds R] [--claims N] [--build DIR]" >&2
       exit 2 ;;
    esac
done
export BENCH_POOL_MAX=$pool_max BENCH_DURATION=$duration BENCH_ROUNDS=$rounds
export BENCH_CLAIMS=$claims BENCH_BUILD=$build

if [ "$inner" = 0 ]; then
    command -v pgbench >/dev/null || { echo "web_navigator.sh: pgbench is missing" >&2; exit 1; }
    if [ ! -f "$build/build.ninja" ]; then
        meson setup "$build" "$root" --buildtype=release -Dtests=false >/dev/null
    fi
    ninja -C "$build" >/dev/null
    exec "$root/tests/pg/with-postgres.sh" --migrate "$build/src/arbiterd" -- "$0" --inner
fi

# ---- inside the cluster ------------------------------------------------
work=$(mktemp -d /tmp/web-bench.XXXXXX)
chmod 0755 "$work"
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
PSQL="psql -X -q -A -t -v ON_ERROR_STOP=1"
arbiterd=$BENCH_BUILD/src/arbiterd
driver=$BENCH_BUILD/bench/web_navigator_driver
n=$BENCH_POOL_MAX
max=10
lease=600000
nodes=$((BENCH_CLAIMS * max + 1000))

# The SQL of a method table constant (static const char NAME[]), macros
# expanded by the C preprocessor, its $n parameters renamed to pgbench
# variables (given in order).
sql_of() { # name var...
    grep -v '^#include' "$root/src/services/web_navigator.c" | cc -E -P -x c - |
        /usr/bin/python3 "$work/sql_of.py" "$@"
}
cat >"$work/sql_of.py" <<'PY'
import re, sys
name, names = sys.argv[1], sys.argv[2:]
m = re.search(r"static const char " + name + r"\[\] =(.*?);\n", sys.stdin.read(), re.S)
sql = "".join(p.encode().decode("unicode_escape")
              for p in re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1)))
print(re.sub(r"\$(\d+)", lambda v: ":" + names[int(v.group(1)) - 1], sql))
PY
settings="SELECT set_config('app.current_tenant', :tenant, true),"
settings="$settings set_config('app.current_user', '', true),"
settings="$settings set_config('app.current_session', '', true),"
settings="$settings set_config('statement_timeout', '30000', true);"
{
    echo '\set d random(1, :ndomains)'
    echo '\startpipeline'
    echo "$settings"
    echo "$(sql_of acquire_sql d maxreq window);"
    echo '\endpipeline'
} >"$work/acquire.pgbench"
{
    echo '\startpipeline'
    echo "$settings"
    echo "$(sql_of claim_sql trav max lease);"
    echo '\endpipeline'
} >"$work/claim.pgbench"

# One traversal per claim run (2 per round): a fresh frontier of $nodes
# nodes at depths 1-5, in breadth-first rank.
echo "seeding $((2 * BENCH_ROUNDS)) traversals of $nodes nodes..." >&2
$PSQL "$ARBITER_TEST_OWNER_URL" >/dev/null <<SQL
INSERT INTO tenants (id, name) VALUES ('t1', 'bench');
BEGIN;
SELECT set_config('app.current_tenant', 't1', true);
WITH t AS (INSERT INTO web_traversals (session_id, start_url, max_depth, max_pages, strategy,
                                       node_count)
           SELECT 'run-' || r, 'https://bench.example/' || r, 5, $nodes, 'BREADTH_FIRST', $nodes
           FROM generate_series(1, $((2 * BENCH_ROUNDS))) r RETURNING id, session_id)
INSERT INTO web_crawl_nodes (traversal_id, url, depth, rank)
SELECT t.id, 'https://bench.example/' || g, 1 + g % 5, 1 + g % 5
FROM t, generate_series(1, $nodes) g ORDER BY t.session_id, g;
COMMIT;
SQL
$PSQL "$ARBITER_TEST_SUPERUSER_URL" -c "VACUUM ANALYZE" >/dev/null
mapfile -t travs < <($PSQL "$ARBITER_TEST_OWNER_URL" -c "BEGIN;
    SELECT set_config('app.current_tenant', 't1', true) IS NULL;
    SELECT id FROM web_traversals ORDER BY session_id; COMMIT;" | tail -n "$((2 * BENCH_ROUNDS))")

start_server() {
    "$arbiterd" serve --socket "$work/arbiterd.sock" --database-url "$ARBITER_TEST_DATABASE_URL" \
        --pool-min "$n" --pool-max "$n" --log-level error &
    server_pid=$!
    for _ in $(seq 100); do
        [ -S "$work/arbiterd.sock" ] && return 0
        sleep 0.05
    done
    echo "web_navigator.sh: arbiterd did not start" >&2
    exit 1
}
stop_server() {
    kill "$server_pid"; wait "$server_pid" || true; server_pid=
}
drive() { # out connections streams limit mode args...
    local out=$1; shift
    "$driver" "$work/arbiterd.sock" t1 "$@" >"$out" ||
        { echo "web_navigator.sh: driver failed: $(cat "$out")" >&2; exit 1; }
}
bench_pg() { # out args...
    local out=$1; shift
    (cd "$work" && pgbench -n -M prepared -c "$n" -j 2 -D tenant=t1 "$@" \
        "$ARBITER_TEST_DATABASE_URL" >"$out" 2>&1) || { cat "$out" >&2; exit 1; }
}
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" "$2"; } # name file
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR + 1) / 2)]}'; }
pg_tps() { awk '/^tps = / {print $3}' "$1"; }
pg_lat() { awk '/^latency average = / {print $4}' "$1"; }

# ---- interleaved rounds --------------------------------------------------
# The machine is shared (2 cores): every round runs each workload through
# arbiterd and through pgbench, back to back, so background load hits both.
start_server
drive /dev/null 4 16 2s acquire 1000 1000000 60000 # warm up: prepare on every connection
drive /dev/null 4 16 1s acquire 1 1000000 60000
drive /dev/null 4 1 100 claim "${travs[0]}" "$max" "$lease"
for r in $(seq "$BENCH_ROUNDS"); do
    D=$BENCH_DURATION
    drive "$work/hot.arb.$r" 4 16 "${D}s" acquire 1 1000000 60000
    bench_pg "$work/hot.pg.$r" -T "$D" -D ndomains=1 -D maxreq=1000000 -D window=60000 \
        -f acquire.pgbench
    drive "$work/dom.arb.$r" 4 16 "${D}s" acquire 1000 1000000 60000
    bench_pg "$work/dom.pg.$r" -T "$D" -D ndomains=1000 -D maxreq=1000000 -D window=60000 \
        -f acquire.pgbench
    drive "$work/claim.arb.$r" 4 1 "$BENCH_CLAIMS" claim "${travs[$((2 * r - 2))]}" "$max" "$lease"
    bench_pg "$work/claim.pg.$r" -t "$((BENCH_CLAIMS / n))" -D trav="${travs[$((2 * r - 1))]}" \
        -D max="$max" -D lease="$lease" -f claim.pgbench
    echo "round $r: hot $(field rate "$work/hot.arb.$r") / $(pg_tps "$work/hot.pg.$r")," \
        "domains $(field rate "$work/dom.arb.$r") / $(pg_tps "$work/dom.pg.$r")," \
        "claim $(field rate "$work/claim.arb.$r") / $(pg_tps "$work/claim.pg.$r")" >&2
done
stop_server

# Every claim run must have handed out max nodes per call (the frontier
# never ran dry), and no node twice: checked in the database.
claimed=$($PSQL "$ARBITER_TEST_OWNER_URL" -c "BEGIN;
    SELECT set_config('app.current_tenant', 't1', true) IS NULL;
    SELECT count(*) FILTER (WHERE claims > 1) || ' ' || count(*) FILTER (WHERE claims = 1)
    FROM web_crawl_nodes; COMMIT;" | tail -n 1)
read -r twice once <<<"$claimed"

printf '\nWebNavigator, median of %d interleaved rounds, %d PostgreSQL connections\n' \
    "$BENCH_ROUNDS" "$n"
printf '%-46s %10s %10s %10s %8s\n' "" "arbiterd/s" "pgbench/s" "ratio" "p50 ms"
row() { # label workload
    local a p lat
    a=$(for r in $(seq "$BENCH_ROUNDS"); do field rate "$work/$2.arb.$r"; done | median)
    p=$(for r in $(seq "$BENCH_ROUNDS"); do pg_tps "$work/$2.pg.$r"; done | median)
    lat=$(for r in $(seq "$BENCH_ROUNDS"); do field p50_ms "$work/$2.arb.$r"; done | median)
    printf '%-46s %10.0f %10.0f %9.1f%% %8s\n' "$1" "$a" "$p" \
        "$(awk -v a="$a" -v b="$p" 'BEGIN {print (b > 0 ? 100 * a / b : 0)}')" "$lat"
}
row "AcquireRateLimit, one hot domain (${D}s)" hot
row "AcquireRateLimit, 1,000 domains (${D}s)" dom
row "ClaimNodes max $max, 4 claimers ($BENCH_CLAIMS calls)" claim
pglat=$(for r in $(seq "$BENCH_ROUNDS"); do pg_lat "$work/claim.pg.$r"; done | median)
printf 'pgbench ClaimNodes latency average: %s ms; target: arbiterd >= 70 %% of pgbench\n' "$pglat"
printf 'nodes claimed once: %s, more than once: %s (expected %d and 0)\n' "$once" "$twice" \
    "$((2 * BENCH_ROUNDS * BENCH_CLAIMS * max + 100 * max))"
for r in $(seq "$BENCH_ROUNDS"); do
    for w in hot dom claim; do
        [ "$(field failed "$work/$w.arb.$r")" = 0 ] || { echo "FAILED CALLS in $w" >&2; exit 1; }
    done
done
[ "$twice" = 0 ] || { echo "A NODE WAS CLAIMED TWICE" >&2; exit 1; }
