#!/bin/bash
# The plans of every Knowledge statement, as the server runs them: the SQL
# comes from src/services/knowledge.c (bench/knowledge_sql.py), prepared
# with the types PostgreSQL infers (as the pool prepares it) and executed
# with the generic plan forced (what a prepared statement settles on after
# its first executions), as the app role inside a tenant, on a throwaway
# cluster seeded with 4 tenants x (20,000 queries, 20,000 results, 1,000
# responses, 20 providers, 5,000 cache entries). auto_explain prints every
# plan, the statements inside knowledge_store_results() included; writes
# are rolled back.
#
#   bench/knowledge-explain.sh [--build DIR]     (default build dir: ./build)
#
# The migration's index comments quote these plans.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${BENCH_BUILD:-$root/build}
if [ "${1:-}" = --build ]; then build=$2; shift 2; fi
if [ "${1:-}" != --inner ]; then
    export BENCH_BUILD=$build
    exec "$root/tests/pg/with-postgres.sh" --migrate "$build/src/arbiterd" -- "$0" --inner
fi

PSQL="psql -X -q -A -t -v ON_ERROR_STOP=1"
echo "seeding..." >&2
$PSQL "$ARBITER_TEST_OWNER_URL" >/dev/null <<'SQL'
INSERT INTO tenants SELECT 't' || i, 'tenant ' || i FROM generate_series(1, 4) i;
DO $$
DECLARE i int;
BEGIN
    FOR i IN 1..4 LOOP
        PERFORM set_config('app.current_tenant', 't' || i, true);
        INSERT INTO knowledge_queries (query_text, query_type, tags, status, prev_status,
                                       created_at)
            SELECT 'query ' || g, 'FACTUAL', ARRAY['tag' || (g % 50), 'all'],
                   (ARRAY['COMPLETED', 'COMPLETED', 'COMPLETED', 'COMPLETED', 'COMPLETED',
                          'COMPLETED', 'COMPLETED', 'FAILED', 'PROCESSING', 'PENDING'])[1 + g % 10],
                   CASE WHEN g % 10 = 9 THEN NULL WHEN g % 10 = 8 THEN 'PENDING'
                        ELSE 'PROCESSING' END,
                   now() - g * interval '1 second'
            FROM generate_series(1, 20000) g;
        PERFORM knowledge_store_results(q.id,
            ARRAY(SELECT 'title ' || g FROM generate_series(1, 20) g),
            ARRAY(SELECT 'content word' || (g * 7 % 1000) || ' rare' || q.n || ' of ' || q.id
                         || ' ' || g FROM generate_series(1, 20) g),
            array_fill(''::text, ARRAY[20]), array_fill('WEB'::text, ARRAY[20]),
            ARRAY(SELECT random() FROM generate_series(1, 20)), array_fill(0.5::float8, ARRAY[20]),
            array_fill('HIGH'::text, ARRAY[20]), array_fill('p'::text, ARRAY[20]),
            array_fill(NULL::timestamptz, ARRAY[20]), array_fill(NULL::timestamptz, ARRAY[20]))
        FROM (SELECT id, row_number() OVER () AS n FROM knowledge_queries
              ORDER BY created_at LIMIT 1000) q;
        WITH r AS (INSERT INTO knowledge_responses (query_id, summary, confidence,
                                                    total_results, average_relevance,
                                                    average_credibility)
                   SELECT DISTINCT query_id, 's', 0.5, 5, 0.5, 0.5 FROM search_results
                   RETURNING id, query_id)
        INSERT INTO knowledge_response_sources (response_id, result_id, ord)
            SELECT r.id, s.id, row_number() OVER (PARTITION BY r.id)
            FROM r JOIN LATERAL (SELECT id FROM search_results sr
                                 WHERE sr.query_id = r.query_id LIMIT 5) s ON true;
        INSERT INTO search_provider_health (name) SELECT 'provider' || g
            FROM generate_series(1, 20) g;
        INSERT INTO knowledge_cache (key, content, expires_at)
            SELECT 'key' || g, '{"a": 1}', now() + (g % 10 - 3) * interval '1 hour'
            FROM generate_series(1, 5000) g;
        INSERT INTO knowledge_cache_counters (shard, hits, misses)
            SELECT g, 10, 5 FROM generate_series(0, 15) g;
    END LOOP;
END
$$;
SQL
$PSQL "$ARBITER_TEST_SUPERUSER_URL" -c "VACUUM ANALYZE" >/dev/null

ids=$($PSQL "$ARBITER_TEST_OWNER_URL" <<'SQL' | tail -n 3
BEGIN;
SELECT set_config('app.current_tenant', 't2', true) IS NULL;
SELECT query_id FROM search_results LIMIT 1;
SELECT id FROM knowledge_queries WHERE status = 'PENDING' LIMIT 1;
SELECT id FROM search_results LIMIT 1;
COMMIT;
SQL
)
read -r q pending result <<<"$(echo $ids)"

# name|parameters (SQL expressions) of each execution
runs="
store_query_sql|'', 'a new question', 'FACTUAL', '', 0, 0, 0, 0, '', '{}'
get_query_sql|'$q'
update_status_sql|'$pending', 'PROCESSING', ''
list_queries_sql|NULL, '', 51, NULL, NULL
list_queries_sql|NULL, '', 51, now() - interval '1 hour', 'ffffffff-ffff-ffff-ffff-ffffffffffff'
list_queries_sql|'PENDING', '', 51, now() - interval '1 hour', 'ffffffff-ffff-ffff-ffff-ffffffffffff'
list_queries_sql|NULL, 'tag7', 51, NULL, NULL
store_results_sql|'$q', '{a,b}', '{\"new content\",\"content word7\"}', '{\"\",\"\"}', '{WEB,WEB}', '{0.5,0.5}', '{0.5,0.5}', '{HIGH,HIGH}', '{p,p}', '{NULL,NULL}', '{NULL,NULL}'
list_results_sql|'$q', 0, 6, '0.5', 'ffffffff-ffff-ffff-ffff-ffffffffffff'
search_text_sql|'word7', 10
search_text_sql|'rare17', 10
search_text_sql|'content', 10
store_response_sql|'', '$pending', 'an answer', 0.9, '{$result}', '{}', false, 0
get_response_sql|'$q'
record_request_sql|'provider3', true, 12.5, ''
update_health_sql|'provider4', true, 10, 0, 1, 1, NULL, ''
get_provider_sql|'provider5'
list_providers_sql|
get_cached_sql|'key5'
put_cached_sql|'key6', NULL, '{\"b\": 2}', 60000
clean_cache_sql|
cache_stats_sql|
"

{
    echo "LOAD 'auto_explain';"
    echo "SET auto_explain.log_min_duration = 0;"
    echo "SET auto_explain.log_nested_statements = on;"
    echo "SET auto_explain.log_analyze = on;"
    echo "SET auto_explain.log_timing = off;"
    echo "SET auto_explain.log_level = notice;"
    echo "SET plan_cache_mode = force_generic_plan;"
    echo "SET ROLE arbiter_app;"
    echo "BEGIN;"
    echo "SELECT set_config('app.current_tenant', 't2', true) IS NULL;"
    declare -A prepared=()
    while IFS='|' read -r name params; do
        [ -n "$name" ] || continue
        if [ -z "${prepared[$name]:-}" ]; then
            echo "PREPARE $name AS $("$here/knowledge_sql.py" "$name");"
            prepared[$name]=1
        fi
        echo "\\warn ==== $name ($params)"
        echo "SAVEPOINT s;"
        if [ -n "$params" ]; then echo "EXECUTE $name($params);"; else echo "EXECUTE $name;"; fi
        echo "ROLLBACK TO SAVEPOINT s;"
    done <<<"$runs"
    echo "ROLLBACK;"
} | psql -X -q -v ON_ERROR_STOP=1 "$ARBITER_TEST_SUPERUSER_URL" 2>&1 >/dev/null |
    sed -e 's/^NOTICE:  duration: [0-9.]* ms  plan:/plan:/' -e '/^Query Text:/d'
