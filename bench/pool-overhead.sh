#!/bin/sh
# The pool's own overhead: the same trivial tenant-scoped transaction run by
# pgbench (the physical limit: one connection per client, no gRPC) and by
# arbiterd (gRPC over the Unix socket, then the pool), in one run, on one
# throwaway PostgreSQL 15 cluster from tests/pg/with-postgres.sh.
#
#   bench/pool-overhead.sh        builds a release arbiterd in $BUILD
#                                 (default /tmp/arbiterd-bench-pool)
#   ARBITERD=/path/to/arbiterd bench/pool-overhead.sh
#
# Environment: CONNS (pool size = pgbench clients, default 4 = 2 x cores),
# SECS (seconds per measurement, default 10), H2_CLIENTS and H2_STREAMS
# (h2load connections and streams per connection, default 4 and 16).
#
# Both sides run the identical segment in one round trip, prepared:
#   set_config of app.current_tenant/user/session and statement_timeout,
#   then SELECT of the four settings, then one Sync (pgbench: -M prepared
#   with \startpipeline ... \endpipeline; arbiterd: Testing/DbProbe
#   CURRENT_SETTINGS, which is exactly that segment).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
CONNS=${CONNS:-4}
SECS=${SECS:-10}
H2_CLIENTS=${H2_CLIENTS:-4}
H2_STREAMS=${H2_STREAMS:-16}

if [ "${1:-}" != "--inner" ]; then
    if [ -z "${ARBITERD:-}" ]; then
        BUILD=${BUILD:-/tmp/arbiterd-bench-pool}
        if [ ! -f "$BUILD/build.ninja" ]; then
            meson setup "$BUILD" "$src" -Dbuildtype=release -Dtests=false >/dev/null
        fi
        ninja -C "$BUILD" src/arbiterd >/dev/null
        ARBITERD=$BUILD/src/arbiterd
    fi
    command -v h2load >/dev/null || { echo "h2load not found (apt-get install nghttp2-client)"; exit 1; }
    export ARBITERD CONNS SECS H2_CLIENTS H2_STREAMS
    exec "$src/tests/pg/with-postgres.sh" --migrate "$ARBITERD" "$0" --inner
fi

# --- inside the cluster's environment ---
PG_BIN=$ARBITER_TEST_PG_BIN
tmp=$(mktemp -d /tmp/arbiterd-poolbench.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

commits() {
    "$PG_BIN/psql" -X -At "$ARBITER_TEST_SUPERUSER_URL" -c \
        "SELECT xact_commit || ' ' || xact_rollback FROM pg_stat_database WHERE datname = 'arbiter'" 
}

cat > "$tmp/segment.sql" <<'SQL'
\set t random(1, 1000)
\startpipeline
SELECT current_setting('app.current_tenant', true), set_config('app.current_tenant', :t::text, true), set_config('app.current_user', '', true), set_config('app.current_session', '', true), set_config('statement_timeout', '30000', true);
SELECT current_setting('app.current_tenant', true), current_setting('app.current_user', true), current_setting('app.current_session', true), current_setting('statement_timeout');
\endpipeline
SQL

echo "== pgbench -M prepared, $CONNS connections, ${SECS}s"
"$PG_BIN/pgbench" -n -M prepared -c "$CONNS" -j "$CONNS" -T "$SECS" -f "$tmp/segment.sql" \
    "$ARBITER_TEST_DATABASE_URL" > "$tmp/pgbench.out" 2>&1 || { cat "$tmp/pgbench.out"; exit 1; }
grep -E "^(number of failed|latency average|tps)" "$tmp/pgbench.out"
pg_tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$tmp/pgbench.out")

sock=$tmp/arbiterd.sock
"$ARBITERD" serve --socket "$sock" --log-level error --enable-test-service \
    --database-url "$ARBITER_TEST_DATABASE_URL" --pool-min "$CONNS" --pool-max "$CONNS" &
pid=$!
i=0
while [ ! -S "$sock" ]; do
    i=$((i + 1))
    [ $i -gt 100 ] && { echo "arbiterd did not start"; exit 1; }
    sleep 0.05
done
sleep 0.3 # let the pool fill
# DbProbeRequest{kind=CURRENT_SETTINGS} is the empty message: a 5-byte prefix.
printf '\000\000\000\000\000' > "$tmp/body"
url=http://localhost/arbiter.v1.Testing/DbProbe
h2() {
    h2load -B "unix:$sock" -d "$tmp/body" -H 'content-type: application/grpc' \
        -H 'te: trailers' -H 'x-tenant-id: bench-tenant' "$@" "$url"
}
h2 -c 1 -m 1 -n 2000 > /dev/null # warm-up: every connection prepares its statements
before=$(commits)
echo "== arbiterd DbProbe via h2load -c $H2_CLIENTS -m $H2_STREAMS, pool $CONNS, ${SECS}s"
h2 -c "$H2_CLIENTS" -m "$H2_STREAMS" -D "$SECS" > "$tmp/h2load.out" 2>&1 ||
    { cat "$tmp/h2load.out"; exit 1; }
# Backends flush their statistics when they exit: stop arbiterd first.
kill "$pid" && wait "$pid" || true
pid=
sleep 0.5
after=$(commits)
grep -E "^(finished in|requests:|status codes:|time for request:)" "$tmp/h2load.out"
rpc_rps=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' "$tmp/h2load.out")
done_reqs=$(sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' "$tmp/h2load.out")
# Every answered call must have committed its own transaction (no
# grpc-status errors hiding behind HTTP 200).
set -- $before $after
echo "database: $(( $3 - $1 )) commits, $(( $4 - $2 )) rollbacks for $done_reqs answered calls"

echo
awk -v p="$pg_tps" -v r="$rpc_rps" -v c="$CONNS" 'BEGIN {
    printf "%-44s %12s\n", "tenant-scoped one-round-trip segment", "per second";
    printf "%-44s %12.0f\n", "pgbench -M prepared (" c " connections)", p;
    printf "%-44s %12.0f\n", "arbiterd gRPC + pool (pool " c ")", r;
    printf "%-44s %12.2f\n", "ratio arbiterd / pgbench", r / p;
}'
