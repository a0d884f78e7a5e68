#!/bin/bash
# KnowledgeGraph through arbiterd (issue 10): VectorSearch, Traverse (2
# hops), HybridSearch and FindPath latency one at a time (h2load -c 1 -m 1)
# and with 100 concurrent calls (h2load -c 10 -m 10, checking that none
# fails), the same SQL as the same pipelined tenant transaction through
# pgbench (the physical limit), loading 10,000 entities of 768 dimensions
# through UpsertEntities, the arbiter_vector extension against the
# plain-SQL functions at 10,000 and 1,000 entities, and EXPLAIN (ANALYZE,
# BUFFERS) of every search's statements (auto_explain, nested statements).
#
#   bench/knowledge_graph.sh [--duration S] [--rounds N] [--pool-max N] [--tenants N]
#                            [--build DIR]
#
# Data: tenant t1 gets 10,000 entities (768 random dimensions, name and
# content text) through UpsertEntities and 50,000 relationships through
# UpsertRelationships; tenants t2..t10 the same amounts through SQL. A
# second database, migrated with arbiter.vector=sql (the plain-SQL vector
# functions), and the first both get tenants side10k and side1k with the
# same data, for the side-by-side. shared_buffers is 1 GB (the test
# cluster's 16 MB would measure the kernel's page cache).
#
# Builds a release arbiterd and arbiter_vector into --build (default
# /tmp/build-bench-kg), installs the extension (root), starts a cluster
# with tests/pg/with-postgres.sh and prints one report. Needs h2load,
# pgbench and /usr/bin/python3 with grpcio.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
duration=${BENCH_DURATION:-10}
rounds=${BENCH_ROUNDS:-3}
pool_max=${BENCH_POOL_MAX:-4}
tenants=${BENCH_TENANTS:-10}
build=${BENCH_BUILD:-/tmp/build-bench-kg}
inner=0
while [ $# -gt 0 ]; do
    case "$1" in
    --duration) duration=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --pool-max) pool_max=$2; shift 2 ;;
    --tenants) tenants=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --inner) inner=1; shift ;;
    *) echo "usage: $0 [--duration S] [--rounds N] [--pool-max N] [--tenants N] [--build DIR]" >&2
       exit 2 ;;
    esac
done
export BENCH_DURATION=$duration BENCH_ROUNDS=$rounds BENCH_POOL_MAX=$pool_max BENCH_BUILD=$build
export BENCH_TENANTS=$tenants

if [ "$inner" = 0 ]; then
    for tool in h2load pgbench; do
        command -v "$tool" >/dev/null || { echo "knowledge_graph.sh: $tool is missing" >&2; exit 1; }
    done
    if [ ! -f "$build/build.ninja" ]; then
        meson setup "$build" "$root" --buildtype=release -Dtests=false >/dev/null
    fi
    ninja -C "$build" >/dev/null
    "$root/ext/arbiter_vector/install.sh" "$build"
    exec "$root/tests/pg/with-postgres.sh" --migrate "$build/src/arbiterd" -- "$0" --inner
fi

# ---- inside the cluster ------------------------------------------------
work=$(mktemp -d /tmp/kg-bench.XXXXXX)
chmod 0755 "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
PSQL="psql -X -q -A -t -v ON_ERROR_STOP=1"
export ARBITER_PY_STUBS=$BENCH_BUILD/clients/python/gen
arbiterd=$BENCH_BUILD/src/arbiterd
conn() { echo "$1" | sed "s/dbname=[^ ]*/dbname=$2/"; }
sql_owner=$(conn "$ARBITER_TEST_OWNER_URL" arbiter_sql)
sql_app=$(conn "$ARBITER_TEST_DATABASE_URL" arbiter_sql)
say() { echo "$(date +%T) $*" >&2; }

say "shared_buffers = 1GB, restarting PostgreSQL"
$PSQL "$ARBITER_TEST_SUPERUSER_URL" -c "ALTER SYSTEM SET shared_buffers = '1GB'"
"$ARBITER_TEST_PG_CTL" restart -w -m fast >/dev/null

say "the plain-SQL database (arbiter.vector=sql)"
$PSQL "$ARBITER_TEST_SUPERUSER_URL" -c "CREATE DATABASE arbiter_sql OWNER arbiter_owner"
$PSQL "$(conn "$ARBITER_TEST_SUPERUSER_URL" arbiter_sql)" -c "ALTER SCHEMA public OWNER TO arbiter_owner"
PGOPTIONS="-c arbiter.vector=sql" "$arbiterd" migrate --migrate-database-url "$sql_owner" >/dev/null
impl=$($PSQL "$ARBITER_TEST_OWNER_URL" -c "SELECT arbiter_vector_impl()")
impl_sql=$($PSQL "$sql_owner" -c "SELECT arbiter_vector_impl()")

# seed TENANT N R [setseed]: N entities of 768 random dimensions and R
# relationships (random ends, 20 % bidirectional), through SQL as the owner
# acting as the tenant (the owner is subject to the policies too).
seed_sql() { # url tenant n r seed
    $PSQL "$1" -v t="$2" -v n="$3" -v r="$4" -v s="$5" >/dev/null <<'SQL'
INSERT INTO tenants (id, name) VALUES (:'t', :'t') ON CONFLICT DO NOTHING;
BEGIN;
SELECT set_config('app.current_tenant', :'t', true), setseed(:s);
INSERT INTO kg_entities (entity_type, name, content, embedding, confidence)
SELECT (ARRAY['AGENT','CAPABILITY','DOCUMENT','CONCEPT'])[1 + g % 4], 'entity-' || g,
       'entity ' || g || ' about '
       || (ARRAY['graphs','vectors','agents','search','tenants','queues','caches','proofs'])[1 + g % 8]
       || ' and ' || (ARRAY['latency','recall','safety','scale','cost'])[1 + g % 5],
       arbiter_normalize((SELECT array_agg((random() - 0.5)::real)
                          FROM generate_series(1, 768) WHERE g > 0)),
       0.5 + random() / 2
FROM generate_series(1, :n) AS g;
INSERT INTO kg_relationships (source_id, target_id, relationship_type, confidence, strength,
                              bidirectional)
SELECT s.id, t.id, (ARRAY['uses','knows','part_of'])[1 + p.x % 3], 0.5 + random() / 2, random(),
       random() < 0.2
FROM (SELECT x, 1 + floor(random() * :n)::int AS a, 1 + floor(random() * :n)::int AS b
      FROM generate_series(1, :r) AS x) AS p
JOIN kg_entities AS s ON s.name = 'entity-' || p.a
JOIN kg_entities AS t ON t.name = 'entity-' || p.b
WHERE p.a <> p.b
ON CONFLICT DO NOTHING;
COMMIT;
SQL
}

say "seeding t2..t$BENCH_TENANTS (10,000 entities and 50,000 relationships each)"
for i in $(seq 2 "$BENCH_TENANTS"); do seed_sql "$ARBITER_TEST_OWNER_URL" "t$i" 10000 50000 "0.$i"; done
# copy_tenant T: tenant T of the first database, rows and ids unchanged, into
# the plain-SQL one (generating them there runs the SQL normalisation per
# row: minutes). COPY FROM is refused on tables with row-level security,
# hence the staging tables.
copy_tenant() {
    # (\copy takes one line)
    $PSQL "$ARBITER_TEST_SUPERUSER_URL" -c "\copy (SELECT id, entity_type, name, content, embedding, confidence FROM kg_entities WHERE tenant_id = '$1') TO '$work/$1.ent'"
    $PSQL "$ARBITER_TEST_SUPERUSER_URL" -c "\copy (SELECT id, source_id, target_id, relationship_type, confidence, strength, bidirectional FROM kg_relationships WHERE tenant_id = '$1') TO '$work/$1.rel'"
    $PSQL "$sql_owner" >/dev/null <<SQL
INSERT INTO tenants (id, name) VALUES ('$1', '$1');
CREATE TABLE stage_e (id uuid, entity_type text, name text, content text, embedding real[],
                      confidence float8);
CREATE TABLE stage_r (id uuid, source_id uuid, target_id uuid, relationship_type text,
                      confidence float8, strength float8, bidirectional boolean);
\copy stage_e FROM '$work/$1.ent'
\copy stage_r FROM '$work/$1.rel'
BEGIN;
SELECT set_config('app.current_tenant', '$1', true);
INSERT INTO kg_entities (id, entity_type, name, content, embedding, confidence)
SELECT * FROM stage_e;
INSERT INTO kg_relationships (id, source_id, target_id, relationship_type, confidence, strength,
                              bidirectional)
SELECT * FROM stage_r;
COMMIT;
DROP TABLE stage_e, stage_r;
SQL
}

say "seeding side10k and side1k, and copying them into the plain-SQL database"
seed_sql "$ARBITER_TEST_OWNER_URL" side10k 10000 50000 0.5
seed_sql "$ARBITER_TEST_OWNER_URL" side1k 1000 5000 0.25
copy_tenant side10k
copy_tenant side1k

start_server() { # name database-url
    "$arbiterd" serve --socket "$work/$1.sock" --database-url "$2" \
        --pool-min "$BENCH_POOL_MAX" --pool-max "$BENCH_POOL_MAX" --log-level error &
    pids+=($!)
    for _ in $(seq 100); do
        [ -S "$work/$1.sock" ] && return 0
        sleep 0.05
    done
    echo "knowledge_graph.sh: arbiterd did not start" >&2
    exit 1
}
start_server ext "$ARBITER_TEST_DATABASE_URL"
start_server sql "$sql_app"

say "loading t1 through UpsertEntities and UpsertRelationships"
/usr/bin/python3 "$here/knowledge_graph_driver.py" load "unix://$work/ext.sock" t1 \
    >"$work/load.out"
cat "$work/load.out" >&2
$PSQL "$ARBITER_TEST_SUPERUSER_URL" -c "VACUUM ANALYZE" >/dev/null
$PSQL "$(conn "$ARBITER_TEST_SUPERUSER_URL" arbiter_sql)" -c "VACUUM ANALYZE" >/dev/null

# gRPC request bodies for h2load and the same SQL and values for pgbench.
/usr/bin/python3 "$here/knowledge_graph_driver.py" bodies "unix://$work/ext.sock" t1 "$work" \
    "$root/src/services/knowledge_graph.c"

h2() { # socket method body c m log extra...
    local sock=$1 method=$2 body=$3 c=$4 m=$5 log=$6; shift 6
    h2load -B "unix:$sock" -c "$c" -m "$m" -t 1 \
        -H 'content-type: application/grpc' -H 'te: trailers' -H "x-tenant-id: $TENANT" \
        -d "$body" --log-file="$log" "$@" \
        "http://localhost/arbiter.v1.KnowledgeGraph/$method"
}
# p50 p95 p99 in ms of column |col| (microseconds) of the given files.
percentiles() { # col files...
    local col=$1; shift
    cat "$@" | awk -v c="$col" '{print $c}' | sort -n |
        awk '{v[NR]=$1} END {if (NR == 0) {print "- - -"; exit}
            split("0.50 0.95 0.99", q, " ")
            for (i = 1; i <= 3; i++) {k = int(NR * q[i]); if (k < 1) k = 1; printf "%.1f ", v[k] / 1000}
            print ""}'
}
not_ok() { # socket: calls not answered OK so far
    /usr/bin/python3 "$here/knowledge_graph_driver.py" notok "unix://$1"
}

TENANT=t1
results=$work/results
: >"$results"
declare -A ext_pg
for m in VectorSearch Traverse HybridSearch FindPath; do
    for r in $(seq "$BENCH_ROUNDS"); do
        h2 "$work/ext.sock" "$m" "$work/$m.bin" 1 1 "$work/$m.c1.$r.log" -D "$BENCH_DURATION" \
            >"$work/$m.c1.$r.out"
        mapfile -t defs <"$work/$m.pgdefs"
        (cd "$work" && mkdir -p "pg.$m.$r" && cd "pg.$m.$r" &&
            pgbench -n -M prepared -c 1 -j 1 -T "$BENCH_DURATION" -l "${defs[@]}" \
                -f "../$m.pgbench" "$ARBITER_TEST_DATABASE_URL" >"../pg.$m.$r.out" 2>&1) ||
            { cat "$work/pg.$m.$r.out" >&2; exit 1; }
    done
    read -r p50 p95 p99 <<<"$(percentiles 3 "$work/$m".c1.*.log)"
    read -r g50 g95 g99 <<<"$(percentiles 3 "$work"/pg."$m".*/pgbench_log.*)"
    n=$(cat "$work/$m".c1.*.log | wc -l)
    echo "$m c1 $p50 $p95 $p99 $n $g50 $g95 $g99" >>"$results"
    say "$m one at a time: p50 $p50 p95 $p95 p99 $p99 ms ($n calls); pgbench p50 $g50 p95 $g95"
done

for m in VectorSearch Traverse HybridSearch; do
    before=$(not_ok "$work/ext.sock")
    count=$([ "$m" = Traverse ] && echo 20000 || echo 1000)
    h2 "$work/ext.sock" "$m" "$work/$m.bin" 10 10 "$work/$m.c100.log" -n "$count" \
        >"$work/$m.c100.out"
    after=$(not_ok "$work/ext.sock")
    read -r p50 p95 p99 <<<"$(percentiles 3 "$work/$m.c100.log")"
    rps=$(awk '/^finished in/ {for (i=1;i<=NF;i++) if ($i ~ /req\/s/) print $(i-1)}' \
        "$work/$m.c100.out")
    echo "$m c100 $p50 $p95 $p99 $count $rps $((after - before))" >>"$results"
    say "$m 100 at once: p50 $p50 p95 $p95 p99 $p99 ms, $rps calls/s, not OK $((after - before))"
done

# Side by side: the same tenants in the extension's and the plain-SQL database.
for t in side10k side1k; do
    TENANT=$t
    /usr/bin/python3 "$here/knowledge_graph_driver.py" bodies "unix://$work/ext.sock" "$t" \
        "$work/$t" "$root/src/services/knowledge_graph.c"
    for srv in ext sql; do
        for m in VectorSearch HybridSearch; do
            n=$([ "$srv" = sql ] && [ "$t" = side10k ] && echo 5 || echo 30)
            h2 "$work/$srv.sock" "$m" "$work/$t/$m.bin" 1 1 "$work/side.$t.$srv.$m.log" \
                -n "$n" >/dev/null
            read -r p50 p95 _ <<<"$(percentiles 3 "$work/side.$t.$srv.$m.log")"
            echo "side $t $srv $m $p50 $p95 $n" >>"$results"
            say "side by side $t $srv $m: p50 $p50 p95 $p95 ms"
        done
    done
done

say "EXPLAIN (ANALYZE, BUFFERS) of the searches' statements"
/usr/bin/python3 "$here/knowledge_graph_driver.py" explain "$ARBITER_TEST_SUPERUSER_URL" t1 \
    "$work" >"$work/explain.txt" 2>&1 || true

# ---- the report ----------------------------------------------------------
load_s=$(awk '/^entities/ {print $2}' "$work/load.out")
rel_s=$(awk '/^relationships/ {print $2}' "$work/load.out")
printf '\nKnowledgeGraph, %s PostgreSQL connections, tenant t1 of %s (10,000 entities of 768\n' \
    "$BENCH_POOL_MAX" "$BENCH_TENANTS"
printf 'dimensions and 50,000 relationships each); vector functions: %s\n\n' "$impl"
printf 'loading: 10,000 entities through UpsertEntities (10 x 1,000) in %s s (target < 10 s);\n' \
    "$load_s"
printf '         50,000 relationships through UpsertRelationships (50 x 1,000) in %s s\n\n' "$rel_s"
printf '%-14s %-22s %8s %8s %8s %8s   %s\n' method run p50_ms p95_ms p99_ms calls \
    "pgbench p50/p95 ms"
awk '$2 == "c1" {printf "%-14s %-22s %8s %8s %8s %8s   %s / %s\n", $1, "one at a time", $3, $4,
    $5, $6, $7, $8}' "$results"
awk '$2 == "c100" {printf "%-14s %-22s %8s %8s %8s %8s   %s calls/s, not OK %s\n", $1,
    "100 concurrent", $3, $4, $5, $6, $7, $8}' "$results"
printf '\ntargets (p95): VectorSearch <= 40 ms with 100 concurrent, Traverse 2 hops <= 10 ms,\n'
printf 'HybridSearch <= 60 ms\n\n'
printf 'side by side, one at a time (p50 / p95 ms): %s against %s\n' "$impl" "$impl_sql"
awk '$1 == "side" {printf "%-8s %-4s %-14s %8s %8s  (%s calls)\n", $2, $3, $4, $5, $6, $7}' \
    "$results"
printf '\n'
cat "$work/explain.txt"
