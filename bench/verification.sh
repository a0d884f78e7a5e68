#!/bin/bash
# Verification.SaveResult (20 evidence items and one method result) and
# Verification.GetResult through arbiterd against the physical limit:
# pgbench running the same SQL (read from the method table) as the same
# one-round-trip pipelined tenant transaction (settings + statements + one
# Sync), with as many connections as --pool-max, in the same run on the same
# throwaway cluster, in interleaved rounds (median reported).
#
#   bench/verification.sh [--pool-max N] [--duration S] [--rounds R] [--build DIR]
#                         [--profile PERF_DATA]
#
# SaveResults that name one request queue on that request's row lock (by
# design: it orders the request's results), so neither side may send all
# its calls to one request. h2load repeats one body; the arbiterd side is
# therefore bench/verification_load (libarbiter), which names the next of
# 64 requests of tenant t1 in every call, round robin. pgbench cannot vary
# a uuid parameter within one script without another round trip or other
# SQL, so it runs as N processes of one connection each (N = --pool-max),
# each on a request of its own, and their rates are summed. --profile
# records the server's CPU profile (perf record -g) during the first
# round's -c 4 -m 16 runs into PERF_DATA.save and PERF_DATA.get.
#
# Builds a release arbiterd into --build (default
# /tmp/build-bench-verification), starts a cluster with
# tests/pg/with-postgres.sh, migrates, seeds 10 tenants x 1,000 requests
# with one result of 20 evidence items each, and prints one result table.
# Needs pgbench and /usr/bin/python3.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
pool_max=${BENCH_POOL_MAX:-4}
duration=${BENCH_DURATION:-10}
rounds=${BENCH_ROUNDS:-3}
build=${BENCH_BUILD:-/tmp/build-bench-verification}
profile=${BENCH_PROFILE:-}
inner=0
while [ $# -gt 0 ]; do
    case "$1" in
    --pool-max) pool_max=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --profile) profile=$(realpath "$2"); shift 2 ;;
    --inner) inner=1; shift ;;
    *) echo "usage: $0 [--pool-max N] [--duration S] [--rounds R] [--build DIR]" \
            "[--profile PERF_DATA]" >&2; exit 2 ;;
    esac
done
export BENCH_POOL_MAX=$pool_max BENCH_DURATION=$duration BENCH_ROUNDS=$rounds
export BENCH_BUILD=$build BENCH_PROFILE=$profile

if [ "$inner" = 0 ]; then
    command -v pgbench >/dev/null || { echo "verification.sh: pgbench is missing" >&2; exit 1; }
    if [ ! -f "$build/build.ninja" ]; then
        meson setup "$build" "$root" --buildtype=release -Dtests=false >/dev/null
    fi
    ninja -C "$build" >/dev/null
    exec "$root/tests/pg/with-postgres.sh" --migrate "$build/src/arbiterd" -- "$0" --inner
fi

# ---- inside the cluster ------------------------------------------------
work=$(mktemp -d /tmp/verification-bench.XXXXXX)
chmod 0755 "$work"
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
PSQL="psql -X -q -A -t -v ON_ERROR_STOP=1"
arbiterd=$BENCH_BUILD/src/arbiterd
load=$BENCH_BUILD/bench/verification_load
nids=64

echo "seeding 10 tenants x 1,000 requests, each with a result of 20 evidence items..." >&2
$PSQL "$ARBITER_TEST_OWNER_URL" >/dev/null <<'SQL'
INSERT INTO tenants (id, name) SELECT 't' || i, 'tenant ' || i FROM generate_series(1, 10) i;
DO $$
DECLARE i int;
BEGIN
    FOR i IN 1..10 LOOP
        -- the owner is subject to the forced policies too: act as each tenant
        PERFORM set_config('app.current_tenant', 't' || i, true);
        INSERT INTO verification_requests (content, source, verification_types, cache_key,
                                           status, result_count, completed_at)
            SELECT 'claim ' || g, 'seed', '{fact}',
                   verification_cache_key('claim ' || g, 'seed', '{fact}'), 'COMPLETED', 1, now()
            FROM generate_series(1, 1000) g;
        INSERT INTO verification_results (request_id, seq, verdict, confidence)
            SELECT id, 1, 'VERIFIED_TRUE', 0.8 FROM verification_requests;
        INSERT INTO verification_evidence (result_id, ord, source, content, strength,
                                           credibility, relevance, supports, method,
                                           content_hash)
            SELECT r.id, k, 'source-' || (k % 5), 'evidence ' || k, 0.5, 0.75, 0.25, k % 2 = 0,
                   'fact-check', encode(sha256(convert_to('evidence ' || k, 'UTF8')), 'hex')
            FROM verification_results r, generate_series(1, 20) k;
        INSERT INTO verification_method_results (result_id, ord, method, verdict, confidence,
                                                 processing_time_ms, evidence_count)
            SELECT id, 1, 'fact-check', 'VERIFIED_TRUE', 0.9, 12, 20 FROM verification_results;
    END LOOP;
END
$$;
SQL
$PSQL "$ARBITER_TEST_SUPERUSER_URL" -c "VACUUM ANALYZE" >/dev/null
$PSQL "$ARBITER_TEST_OWNER_URL" -c "BEGIN; SELECT set_config('app.current_tenant', 't1', true)
    IS NULL; SELECT id FROM verification_requests ORDER BY id LIMIT $nids; COMMIT;" |
    tail -n "$nids" >"$work/ids"
[ "$(wc -l <"$work/ids")" = "$nids" ] || { echo "verification.sh: seeding failed" >&2; exit 1; }

# pgbench: per connection one script with the statements the pool
# pipelines for the call (the settings statement of src/db/conn.c, the
# method's statements, one Sync), $n replaced by pgbench variables holding
# what the server binds for the driver's requests (JSON as svc_json writes
# it: every field, in .proto order).
/usr/bin/python3 "$here/verification_sql.py" "$BENCH_BUILD" SaveResult GetResult \
    >"$work/sql.json"
/usr/bin/python3 - "$work" "$BENCH_POOL_MAX" <<'PY'
import json, re, sys
work, nids = sys.argv[1], int(sys.argv[2])
stmts = json.load(open(work + "/sql.json"))
sources = ["encyclopedia", "news", "paper", "forum", "registry"]
evidence = [dict(id="", source=sources[i % 5], content="evidence %d for the benchmark claim" % i,
                 strength=0.5, credibility=0.75, relevance=0.25, supports=i % 2 == 0,
                 method="fact-check", content_hash="", observed_at=None) for i in range(20)]
methods = [dict(method="fact-check", verdict="VERIFIED_TRUE", confidence=0.9,
                processing_time_ms=12, evidence_count=20, error_message="")]
values = {  # request path -> (pgbench variable, value)
    "result.request_id": ("id", None), "request_id": ("id", None),
    "result.id": ("rid", ""), "result.verdict": ("verdict", "VERIFIED_TRUE"),
    "result.confidence": ("confidence", "0.80000000000000004"),
    "result.processing_time_ms": ("ptime", "100"), "result.reasoning": ("reasoning", "{bench}"),
    "result.evidence": ("evidence", json.dumps(evidence, separators=(",", ":"))),
    "result.method_results": ("methods", json.dumps(methods, separators=(",", ":"))),
}
settings = ("SELECT current_setting('app.current_tenant', true),"
            " set_config('app.current_tenant', :tenant, true),"
            " set_config('app.current_user', '', true), set_config('app.current_session', '', true),"
            " set_config('statement_timeout', '30000', true);")
for method, short in (("SaveResult", "save"), ("GetResult", "get")):
    for k in range(nids):
        lines = ["\\startpipeline", settings]
        for st in stmts[method]:
            def var(m, st=st):
                name, value = values[st["params"][int(m.group(1)) - 1]]
                if value == "":  # pgbench has no empty variables: the literal
                    return "''"
                return ":" + (name + str(k) if name == "id" else name)
            lines.append(re.sub(r"\$(\d+)", var, st["sql"]) + ";")
        lines.append("\\endpipeline")
        open("%s/%s_%d.pgbench" % (work, short, k), "w").write("\n".join(lines) + "\n")
with open(work + "/vars", "w") as f:
    for name, value in {v[0]: v[1] for v in values.values() if v[1] is not None}.items():
        if value:
            f.write("%s=%s\n" % (name, value))
PY
pgvars=(-D tenant=t1)
while IFS= read -r kv; do pgvars+=(-D "$kv"); done <"$work/vars"
k=0
while IFS= read -r id; do pgvars+=(-D "id$k=$id"); k=$((k + 1)); done <"$work/ids"

start_server() { # pool_max
    "$arbiterd" serve --socket "$work/arbiterd.sock" --database-url "$ARBITER_TEST_DATABASE_URL" \
        --pool-min "$1" --pool-max "$1" --log-level error &
    server_pid=$!
    for _ in $(seq 100); do
        [ -S "$work/arbiterd.sock" ] && return 0
        sleep 0.05
    done
    echo "verification.sh: arbiterd did not start" >&2
    exit 1
}
stop_server() {
    kill "$server_pid"; wait "$server_pid" || true; server_pid=
}
drive() { # method connections streams seconds out
    "$load" "$work/arbiterd.sock" t1 "$1" "$work/ids" "$4" "$2" "$3" >"$5" ||
        { cat "$5" >&2; exit 1; }
}
pgbench_run() { # short out: N processes of one connection, one request each
    local pids=() k
    for k in $(seq 0 $((BENCH_POOL_MAX - 1))); do
        pgbench -n -M prepared -c 1 -j 1 -T "$BENCH_DURATION" "${pgvars[@]}" \
            -f "$work/$1_$k.pgbench" "$ARBITER_TEST_DATABASE_URL" >"$2.$k" 2>&1 &
        pids+=($!)
    done
    for k in "${!pids[@]}"; do
        wait "${pids[$k]}" || { cat "$2.$k" >&2; exit 1; }
    done
    # one line like pgbench's: the summed rate, the mean latency
    cat "$2".* | awk '/^tps = / {t += $3} /^latency average = / {l += $4; n++}
        END {printf "tps = %f\nlatency average = %f ms\n", t, l / n}' >"$2"
}
rate() { awk '{for (i = 1; i < NF; i++) if ($i == "rate") print $(i + 1)}' "$1"; }
field() { awk -v f="$2" '{for (i = 1; i < NF; i++) if ($i == f) print $(i + 1)}' "$1"; }
tps() { awk '/^tps = / {print $3}' "$1"; }
pglat() { awk '/^latency average = / {print $4}' "$1"; }
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR + 1) / 2)]}'; }
med() { # file-pattern extractor: median over rounds
    local pat=$1 fn=$2 r
    for r in $(seq "$BENCH_ROUNDS"); do "$fn" "$work/${pat/R/$r}" ${3:+"$3"}; done | median
}

# ---- rounds: arbiterd and pgbench, interleaved ------------------------------
# The machine is shared (2 cores): background load hits both sides alike.
n=$BENCH_POOL_MAX
start_server "$n"
drive SaveResult 4 16 2 /dev/null # warm up: prepare statements on every connection
drive GetResult 4 16 1 /dev/null
profile() { # suffix: records the server during the next BENCH_DURATION s (round 1)
    perf_pid=
    if [ "$r" = 1 ] && [ -n "$BENCH_PROFILE" ]; then
        perf record -q -e cpu-clock -F 2000 -g -p "$server_pid" -o "$BENCH_PROFILE.$1" \
            -- sleep "$BENCH_DURATION" 2>/dev/null &
        perf_pid=$!
    fi
}
for r in $(seq "$BENCH_ROUNDS"); do
    profile save
    drive SaveResult 4 16 "$BENCH_DURATION" "$work/save.$r"
    [ -n "$perf_pid" ] && wait "$perf_pid"
    drive SaveResult "$n" 1 "$BENCH_DURATION" "$work/savelat.$r"
    pgbench_run save "$work/pgsave.$r"
    profile get
    drive GetResult 4 16 "$BENCH_DURATION" "$work/get.$r"
    [ -n "$perf_pid" ] && wait "$perf_pid"
    drive GetResult "$n" 1 "$BENCH_DURATION" "$work/getlat.$r"
    pgbench_run get "$work/pgget.$r"
    echo "round $r: SaveResult $(rate "$work/save.$r")/s vs pgbench $(tps "$work/pgsave.$r"); " \
        "GetResult $(rate "$work/get.$r")/s vs pgbench $(tps "$work/pgget.$r")" >&2
done
stop_server

row() { # label file-pattern (R = round) [pg]
    if [ "${3:-}" = pg ]; then
        printf '%-38s %10.0f %10s %10s\n' "$1" "$(med "$2" tps)" "$(med "$2" pglat)" "-"
    else
        printf '%-38s %10.0f %10s %10s\n' "$1" "$(med "$2" rate)" "$(med "$2" field p50_ms)" \
            "$(med "$2" field p99_ms)"
    fi
}
ratio() { awk -v a="$(med "$1" rate)" -v b="$(med "$2" tps)" 'BEGIN {printf "%.1f", 100 * a / b}'; }
printf '\nVerification, median of %d interleaved rounds of %s s, %d PostgreSQL connections,\n' \
    "$BENCH_ROUNDS" "$BENCH_DURATION" "$n"
printf '10 tenants x 1,000 requests seeded; arbiterd: calls over 64 requests of one tenant,\n'
printf 'pgbench: %d processes of one connection, one request each (rates summed)\n' "$n"
printf '%-38s %10s %10s %10s\n' "" "calls/s" "p50 ms" "p99 ms"
row "SaveResult arbiterd (-c 4 -m 16)" save.R
row "SaveResult arbiterd (-c $n -m 1)" savelat.R
row "SaveResult pgbench (avg latency)" pgsave.R pg
row "GetResult arbiterd (-c 4 -m 16)" get.R
row "GetResult arbiterd (-c $n -m 1)" getlat.R
row "GetResult pgbench (avg latency)" pgget.R pg
printf 'SaveResult: arbiterd / pgbench = %s %%; GetResult: %s %% (target >= 70 %%)\n' \
    "$(ratio save.R pgsave.R)" "$(ratio get.R pgget.R)"
# The same ratio within each round (its runs are seconds apart, so drifting
# background load hits both sides alike): the spread shows the noise.
rounds_of() { # arbiterd-file pgbench-file
    local r out=""
    for r in $(seq "$BENCH_ROUNDS"); do
        out+=$(awk -v a="$(rate "$work/$1.$r")" -v b="$(tps "$work/$2.$r")" \
            'BEGIN {printf " %.1f", 100 * a / b}')
    done
    echo "$out"
}
printf 'per round (%%): SaveResult%s; GetResult%s\n' "$(rounds_of save pgsave)" \
    "$(rounds_of get pgget)"
