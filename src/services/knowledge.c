/* arbiter.v1.Knowledge: the upstream KnowledgeDatabaseClient (UPSTREAM.md
 * §2.2) as a method table over migrations/0003_knowledge.sql. Every method
 * is a table entry; none needs a hand-written handler.
 *
 * Tenant scoping is the database's alone, as in AgentRegistry: the pool
 * sets app.current_tenant for the call's transaction, tenant_id defaults
 * from it and forced row-level security hides every other tenant's rows.
 *
 * What upstream left to the client or faked, the database computes here:
 * content hashes and the inserted/duplicate split (knowledge_store_results),
 * a response's totals and averages (from the results its sources name, in
 * the same statement that stores it), provider health figures (one upsert)
 * and the cache hit rate (counter rows bumped by GetCached). Errors are
 * statuses, never a silent null.
 *
 * Enums are bound and stored by their short names ('PENDING'); an absent
 * value or sub-message binds NULL, so defaults live in SQL (COALESCE). */
#include "knowledge.pb-c.h"
#include "services/services.h"
#include "services/svc_table.h"

/* One KnowledgeQuery, columns named after the fields. */
#define QUERY_COLS                                                                                 \
    "id, query_text, query_type, requester_id, priority, max_results, relevance_threshold, "       \
    "timeout_ms, context::text AS context_json, tags, status, error_message, created_at, "         \
    "processed_at"

#define RESULT_COLS                                                                                \
    "id, query_id, title, content, url, source_type, relevance_score, credibility_score, "         \
    "quality, provider, content_hash, published_at, retrieved_at"

/* A response's sources in the caller's order (the primary key serves it). */
#define RESPONSE_COLS                                                                              \
    "r.id, r.query_id, r.summary, r.confidence, ARRAY(SELECT s.result_id"                          \
    " FROM knowledge_response_sources s WHERE s.tenant_id = r.tenant_id"                           \
    " AND s.response_id = r.id ORDER BY s.ord) AS source_result_ids, r.providers_queried, "        \
    "r.total_results, r.average_relevance, r.average_credibility, r.cache_used, "                  \
    "r.processing_time_ms, r.created_at"

/* The request counts read as 0 once their window has passed. */
#define PROVIDER_COLS                                                                              \
    "name, available, response_time_ms, error_rate, CASE WHEN minute_start >="                     \
    " date_trunc('minute', now()) THEN requests_this_minute ELSE 0 END AS requests_this_minute,"   \
    " CASE WHEN hour_start >= date_trunc('hour', now()) THEN requests_this_hour ELSE 0 END"        \
    " AS requests_this_hour, last_checked_at, last_error, total_requests, total_failures,"         \
    " consecutive_failures"

#define ENTRY_COLS                                                                                 \
    "key, cache_type, content::text AS content_json, expires_at, access_count, size_bytes"

#define MAX_UUID "'ffffffff-ffff-ffff-ffff-ffffffffffff'"
#define INT64_MAX_D 9e18

/* ---- queries ------------------------------------------------------------- */

/* 0 in priority, max_results, relevance_threshold and timeout_ms means the
 * default (proto3 has no presence for scalars). */
static const char store_query_sql[] =
    "INSERT INTO knowledge_queries (id, query_text, query_type, requester_id, priority,"
    " max_results, relevance_threshold, timeout_ms, context, tags)"
    " VALUES (COALESCE(NULLIF($1, '')::uuid, gen_random_uuid()), $2, $3, $4,"
    " COALESCE(NULLIF($5::int4, 0), 5), COALESCE(NULLIF($6::int4, 0), 10),"
    " COALESCE(NULLIF($7::float8, 0), 0.5), COALESCE(NULLIF($8::int4, 0), 30000),"
    " COALESCE(NULLIF($9, '')::jsonb, '{}'), $10::text[])"
    " RETURNING " QUERY_COLS;

static const char get_query_sql[] =
    "SELECT " QUERY_COLS " FROM knowledge_queries WHERE id = $1::uuid";

/* prev_status = status, status = new: the transition foreign key refuses
 * any move that is not forward (23503, FAILED_PRECONDITION). A concurrent
 * move waits for the row lock and is then checked against the new status. */
static const char update_status_sql[] =
    "UPDATE knowledge_queries SET prev_status = status, status = $2,"
    " error_message = CASE WHEN $3 = '' THEN error_message ELSE $3 END,"
    " processed_at = CASE WHEN $2 IN ('COMPLETED', 'FAILED') THEN now() ELSE processed_at END"
    " WHERE id = $1::uuid RETURNING " QUERY_COLS;

/* The keyset positions of the pages (NULL on the first one). Each bound
 * is a scalar subquery, so that the planner sees the parameter of an
 * InitPlan: PostgreSQL 15 then uses the row comparison as an index
 * condition in the generic plan too, which it does not for a bare
 * COALESCE (every page would scan from the top of the index). */
#define AFTER_CREATED                                                                              \
    "((SELECT COALESCE($4::timestamptz, 'infinity')), (SELECT COALESCE($5::uuid, " MAX_UUID ")))"
#define AFTER_RELEVANCE                                                                            \
    "((SELECT COALESCE($4::float8, 'infinity')), (SELECT COALESCE($5::uuid, " MAX_UUID ")))"

/* Two branches, one per index, so that one (generic) plan serves both:
 * without a status the created_at index, with one the status index; a
 * one-time filter skips the other branch and Merge Append keeps the order.
 * A tag filters the rows of either scan. */
static const char list_queries_sql[] =
    "SELECT * FROM ((SELECT " QUERY_COLS " FROM knowledge_queries"
    " WHERE $1::text IS NULL AND ($2 = '' OR tags @> ARRAY[$2])"
    " AND (created_at, id) < " AFTER_CREATED " ORDER BY created_at DESC, id DESC LIMIT $3)"
    " UNION ALL (SELECT " QUERY_COLS " FROM knowledge_queries"
    " WHERE status = $1 AND ($2 = '' OR tags @> ARRAY[$2])"
    " AND (created_at, id) < " AFTER_CREATED " ORDER BY created_at DESC, id DESC LIMIT $3)"
    ") q ORDER BY created_at DESC, id DESC LIMIT $3";

/* ---- results and responses ----------------------------------------------- */

static const char store_results_sql[] =
    "SELECT inserted, duplicates, result_ids FROM knowledge_store_results($1::uuid,"
    " $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::float8[], $8::text[],"
    " $9::text[], $10::timestamptz[], $11::timestamptz[])";

static const char list_results_sql[] =
    "SELECT " RESULT_COLS " FROM search_results"
    " WHERE query_id = $1::uuid AND relevance_score >= $2::float8"
    " AND (relevance_score, id) < " AFTER_RELEVANCE
    " ORDER BY relevance_score DESC, id DESC LIMIT $3";

/* The tsquery is parsed once (a scalar subquery is an InitPlan), not per
 * row; why the match filters the tenant's rows rather than using the GIN
 * index is told in migrations/0003_knowledge.sql. */
#define TSQUERY "(SELECT websearch_to_tsquery('english', $1))"
static const char search_text_sql[] =
    "SELECT " RESULT_COLS " FROM search_results WHERE search_vector @@ " TSQUERY
    " ORDER BY ts_rank(search_vector, " TSQUERY ") DESC, id"
    " LIMIT COALESCE(NULLIF($2::int4, 0), 10)";

/* One statement: the averages come from the stored results the sources
 * name (a source that is not one fails the sources' foreign key), the
 * response and its sources are inserted, and the query moves to COMPLETED
 * (the transition foreign key refuses a FAILED one); all or nothing. */
static const char store_response_sql[] =
    "WITH src AS (SELECT DISTINCT ON (u.id) u.id, u.o"
    "  FROM unnest($5::uuid[]) WITH ORDINALITY AS u(id, o) ORDER BY u.id, u.o),"
    " agg AS (SELECT count(sr.id)::int4 AS n, COALESCE(avg(sr.relevance_score), 0) AS rel,"
    "  COALESCE(avg(sr.credibility_score), 0) AS cred"
    "  FROM src JOIN search_results sr ON sr.id = src.id),"
    " r AS (INSERT INTO knowledge_responses (id, query_id, summary, confidence,"
    "  providers_queried, total_results, average_relevance, average_credibility, cache_used,"
    "  processing_time_ms)"
    "  SELECT COALESCE(NULLIF($1, '')::uuid, gen_random_uuid()), $2::uuid, $3, $4::float8,"
    "  $6::text[], agg.n, agg.rel, agg.cred, $7::bool, $8::int8 FROM agg RETURNING *),"
    " s AS (INSERT INTO knowledge_response_sources (response_id, result_id, ord)"
    "  SELECT r.id, src.id, src.o FROM r, src),"
    " q AS (UPDATE knowledge_queries SET prev_status = status, status = 'COMPLETED',"
    "  processed_at = now() WHERE id = $2::uuid AND status <> 'COMPLETED')"
    " SELECT r.id, r.query_id, r.summary, r.confidence,"
    " (SELECT array_agg(src.id ORDER BY src.o) FROM src) AS source_result_ids,"
    " r.providers_queried, r.total_results, r.average_relevance, r.average_credibility,"
    " r.cache_used, r.processing_time_ms, r.created_at FROM r";

/* The latest response of a query. */
static const char get_response_sql[] =
    "SELECT " RESPONSE_COLS " FROM knowledge_responses r WHERE r.query_id = $1::uuid"
    " ORDER BY r.created_at DESC, r.id DESC LIMIT 1";

/* ---- provider health ----------------------------------------------------- */

/* One atomic upsert. response_time_ms and error_rate are exponentially
 * weighted moving averages with weight 0.2 for the new sample (the first
 * sample is taken as it is). The minute and hour counts restart at 1 when
 * the call's window is later than the stored one; a call whose transaction
 * began in an earlier window than a concurrent one that already rolled the
 * row over is not counted in the newer window (GREATEST keeps it). Three
 * consecutive failures make the provider unavailable, the next success
 * available again. Concurrent calls queue on the row lock and each
 * re-evaluates the SET on the newest row version: no count is lost. */
static const char record_request_sql[] =
    "INSERT INTO search_provider_health AS h (name, available, response_time_ms, error_rate,"
    " requests_this_minute, requests_this_hour, total_requests, total_failures,"
    " consecutive_failures, last_error)"
    " VALUES ($1, true, $3::float8, CASE WHEN $2::bool THEN 0 ELSE 1 END, 1, 1, 1,"
    " CASE WHEN $2::bool THEN 0 ELSE 1 END, CASE WHEN $2::bool THEN 0 ELSE 1 END,"
    " CASE WHEN $2::bool THEN '' ELSE $4 END)"
    " ON CONFLICT (tenant_id, name) DO UPDATE SET"
    " response_time_ms = 0.8 * h.response_time_ms + 0.2 * excluded.response_time_ms,"
    " error_rate = 0.8 * h.error_rate + 0.2 * excluded.error_rate,"
    " requests_this_minute = CASE WHEN excluded.minute_start > h.minute_start THEN 1"
    "  WHEN excluded.minute_start = h.minute_start THEN h.requests_this_minute + 1"
    "  ELSE h.requests_this_minute END,"
    " minute_start = GREATEST(h.minute_start, excluded.minute_start),"
    " requests_this_hour = CASE WHEN excluded.hour_start > h.hour_start THEN 1"
    "  WHEN excluded.hour_start = h.hour_start THEN h.requests_this_hour + 1"
    "  ELSE h.requests_this_hour END,"
    " hour_start = GREATEST(h.hour_start, excluded.hour_start),"
    " total_requests = h.total_requests + 1,"
    " total_failures = h.total_failures + excluded.total_failures,"
    " consecutive_failures = CASE WHEN $2::bool THEN 0 ELSE h.consecutive_failures + 1 END,"
    " available = CASE WHEN $2::bool THEN true WHEN h.consecutive_failures + 1 >= 3 THEN false"
    "  ELSE h.available END,"
    " last_checked_at = now(),"
    " last_error = CASE WHEN $2::bool THEN h.last_error ELSE excluded.last_error END"
    " RETURNING " PROVIDER_COLS;

/* As upstream: the caller's figures, the counts for the current windows;
 * the totals RecordProviderRequest keeps are left alone. */
static const char update_health_sql[] =
    "INSERT INTO search_provider_health AS h (name, available, response_time_ms, error_rate,"
    " requests_this_minute, requests_this_hour, last_checked_at, last_error)"
    " VALUES ($1, $2::bool, $3::float8, $4::float8, $5::int8, $6::int8,"
    " COALESCE($7::timestamptz, now()), $8)"
    " ON CONFLICT (tenant_id, name) DO UPDATE SET available = excluded.available,"
    " response_time_ms = excluded.response_time_ms, error_rate = excluded.error_rate,"
    " requests_this_minute = excluded.requests_this_minute, minute_start = excluded.minute_start,"
    " requests_this_hour = excluded.requests_this_hour, hour_start = excluded.hour_start,"
    " last_checked_at = excluded.last_checked_at, last_error = excluded.last_error"
    " RETURNING " PROVIDER_COLS;

static const char get_provider_sql[] =
    "SELECT " PROVIDER_COLS " FROM search_provider_health WHERE name = $1";

static const char list_providers_sql[] =
    "SELECT " PROVIDER_COLS " FROM search_provider_health ORDER BY name LIMIT 1000";

/* ---- cache --------------------------------------------------------------- */

/* One statement: a fresh entry is bumped and answered, and the call's
 * counter row (one of 16 per tenant, by backend) counts a hit or a miss. */
static const char get_cached_sql[] =
    "WITH hit AS (UPDATE knowledge_cache SET access_count = access_count + 1"
    "  WHERE key = $1 AND expires_at > now() RETURNING " ENTRY_COLS "),"
    " counted AS (INSERT INTO knowledge_cache_counters AS c (shard, hits, misses)"
    "  SELECT pg_backend_pid() % 16, count(*), 1 - count(*) FROM hit"
    "  ON CONFLICT (tenant_id, shard) DO UPDATE"
    "  SET hits = c.hits + excluded.hits, misses = c.misses + excluded.misses)"
    " SELECT hit.key IS NOT NULL AS hit, hit.key AS \"entry.key\","
    " hit.cache_type AS \"entry.cache_type\", hit.content_json AS \"entry.content_json\","
    " hit.expires_at AS \"entry.expires_at\", hit.access_count AS \"entry.access_count\","
    " hit.size_bytes AS \"entry.size_bytes\" FROM (SELECT) AS one LEFT JOIN hit ON true";

/* A put replaces the entry: new content, type and expiry, access count 0. */
static const char put_cached_sql[] =
    "INSERT INTO knowledge_cache AS c (key, cache_type, content, expires_at)"
    " VALUES ($1, COALESCE($2, 'QUERY_RESULT'), $3::jsonb,"
    " now() + $4::int8 * interval '1 millisecond')"
    " ON CONFLICT (tenant_id, key) DO UPDATE SET cache_type = excluded.cache_type,"
    " content = excluded.content, expires_at = excluded.expires_at, access_count = 0,"
    " created_at = now()"
    " RETURNING " ENTRY_COLS;

static const char clean_cache_sql[] = "DELETE FROM knowledge_cache WHERE expires_at <= now()";

static const char cache_stats_sql[] =
    "SELECT e.total_entries, e.total_size_bytes, k.hits, k.misses,"
    " CASE WHEN k.hits + k.misses = 0 THEN 0"
    "  ELSE k.hits::float8 / (k.hits + k.misses) END AS hit_rate, e.expired_entries"
    " FROM (SELECT count(*) AS total_entries, COALESCE(sum(size_bytes), 0)::int8"
    "  AS total_size_bytes, count(*) FILTER (WHERE expires_at <= now()) AS expired_entries"
    "  FROM knowledge_cache) e,"
    " (SELECT COALESCE(sum(hits), 0)::int8 AS hits, COALESCE(sum(misses), 0)::int8 AS misses"
    "  FROM knowledge_cache_counters) k";

/* ---- the table ----------------------------------------------------------- */

static const svc_method methods[] = {
    {
        .name = "StoreQuery",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(
            SVC_REQUIRED("query"), SVC_UUID_OPT("query.id"), SVC_LEN("query.query_text", 1, 10000),
            SVC_ENUM("query.query_type"), SVC_LEN("query.requester_id", 0, 255),
            SVC_RANGE("query.priority", 0, 10), SVC_RANGE("query.max_results", 0, 1000),
            SVC_RANGE("query.relevance_threshold", 0, 1), SVC_RANGE("query.timeout_ms", 0, 3600000),
            SVC_JSON_OBJECT("query.context_json"), SVC_ITEMS("query.tags", 64, 1, 255)),
        .stmts = {{store_query_sql,
                   SVC_PARAMS("query.id", "query.query_text", "query.query_type",
                              "query.requester_id", "query.priority", "query.max_results",
                              "query.relevance_threshold", "query.timeout_ms", "query.context_json",
                              "query.tags")}},
        .errors = SVC_ERRORS({RPC_ALREADY_EXISTS, "query.id: a query with this id already exists"}),
    },
    {
        .name = "GetQuery",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .checks = SVC_CHECKS(SVC_UUID("id")),
        .stmts = {{get_query_sql, SVC_PARAMS("id")}},
        .not_found = "query not found",
    },
    {
        .name = "ListQueries",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .checks = SVC_CHECKS(SVC_ENUM_OPT("status"), SVC_LEN("tag", 0, 255)),
        .stmts = {{list_queries_sql,
                   SVC_PARAMS("status", "tag", "@limit", "@after.1", "@after.2")}},
        .reply = SVC_PAGE,
        .field = "queries",
        .keys = SVC_KEYS("created_at", "id"),
    },
    {
        .name = "UpdateQueryStatus",
        .flags = SVC_TENANT,
        .checks =
            SVC_CHECKS(SVC_UUID("id"), SVC_ENUM("status"), SVC_LEN("error_message", 0, 10000)),
        .stmts = {{update_status_sql, SVC_PARAMS("id", "status", "error_message")}},
        .not_found = "query not found",
        .errors = SVC_ERRORS({RPC_FAILED_PRECONDITION,
                              "status: a query only moves forward (PENDING -> PROCESSING -> "
                              "COMPLETED or FAILED)"}),
    },
    {
        .name = "StoreResults",
        .flags = SVC_TENANT,
        .checks =
            SVC_CHECKS(SVC_UUID("query_id"), SVC_ITEMS("results", 1000, 0, 0),
                       SVC_LEN("results.title", 1, 1000), SVC_LEN("results.content", 1, 200000),
                       SVC_LEN("results.url", 0, 2048), SVC_ENUM("results.source_type"),
                       SVC_RANGE("results.relevance_score", 0, 1),
                       SVC_RANGE("results.credibility_score", 0, 1), SVC_ENUM("results.quality"),
                       SVC_LEN("results.provider", 0, 255)),
        .stmts = {{store_results_sql,
                   SVC_PARAMS("query_id", "results.title", "results.content", "results.url",
                              "results.source_type", "results.relevance_score",
                              "results.credibility_score", "results.quality", "results.provider",
                              "results.published_at", "results.retrieved_at")}},
        .errors = SVC_ERRORS({RPC_FAILED_PRECONDITION, "query_id: no such query"}),
    },
    {
        .name = "ListResults",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .checks = SVC_CHECKS(SVC_UUID("query_id"), SVC_RANGE("min_relevance", 0, 1)),
        .stmts = {{list_results_sql,
                   SVC_PARAMS("query_id", "min_relevance", "@limit", "@after.1", "@after.2")}},
        .reply = SVC_PAGE,
        .field = "results",
        .keys = SVC_KEYS("relevance_score", "id"),
    },
    {
        .name = "SearchResultsText",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .checks = SVC_CHECKS(SVC_LEN("text", 1, 1000), SVC_RANGE("limit", 0, 100)),
        .stmts = {{search_text_sql, SVC_PARAMS("text", "limit")}},
        .reply = SVC_ROWS,
        .field = "results",
    },
    {
        .name = "StoreResponse",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_REQUIRED("response"), SVC_UUID_OPT("response.id"),
                             SVC_UUID("response.query_id"), SVC_LEN("response.summary", 1, 100000),
                             SVC_RANGE("response.confidence", 0, 1),
                             SVC_ITEMS("response.source_result_ids", 1000, 36, 36),
                             SVC_ITEMS("response.providers_queried", 64, 1, 255),
                             SVC_RANGE("response.processing_time_ms", 0, INT64_MAX_D)),
        .stmts = {{store_response_sql,
                   SVC_PARAMS("response.id", "response.query_id", "response.summary",
                              "response.confidence", "response.source_result_ids",
                              "response.providers_queried", "response.cache_used",
                              "response.processing_time_ms")}},
        .errors =
            SVC_ERRORS({RPC_ALREADY_EXISTS, "response.id: a response with this id already exists"},
                       {RPC_FAILED_PRECONDITION,
                        "response.query_id: no such query, or it has FAILED; or "
                        "response.source_result_ids: not every id is a stored result"}),
    },
    {
        .name = "GetResponse",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .checks = SVC_CHECKS(SVC_UUID("query_id")),
        .stmts = {{get_response_sql, SVC_PARAMS("query_id")}},
        .not_found = "no response for this query",
    },
    {
        .name = "RecordProviderRequest",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_LEN("name", 1, 255), SVC_RANGE("latency_ms", 0, 1e12),
                             SVC_LEN("error", 0, 10000)),
        .stmts = {{record_request_sql, SVC_PARAMS("name", "success", "latency_ms", "error")}},
    },
    {
        .name = "UpdateProviderHealth",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_REQUIRED("health"), SVC_LEN("health.name", 1, 255),
                             SVC_RANGE("health.response_time_ms", 0, 1e12),
                             SVC_RANGE("health.error_rate", 0, 1),
                             SVC_RANGE("health.requests_this_minute", 0, INT64_MAX_D),
                             SVC_RANGE("health.requests_this_hour", 0, INT64_MAX_D),
                             SVC_LEN("health.last_error", 0, 10000)),
        .stmts = {{update_health_sql,
                   SVC_PARAMS("health.name", "health.available", "health.response_time_ms",
                              "health.error_rate", "health.requests_this_minute",
                              "health.requests_this_hour", "health.last_checked_at",
                              "health.last_error")}},
    },
    {
        .name = "GetProviderHealth",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .checks = SVC_CHECKS(SVC_LEN("name", 1, 255)),
        .stmts = {{get_provider_sql, SVC_PARAMS("name")}},
        .not_found = "provider not found",
    },
    {
        .name = "ListProviders",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .stmts = {{list_providers_sql, NULL}},
        .reply = SVC_ROWS,
        .field = "providers",
    },
    {
        /* Not read-only: a lookup bumps the entry's and the tenant's counters. */
        .name = "GetCached",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_LEN("key", 1, 255)),
        .stmts = {{get_cached_sql, SVC_PARAMS("key")}},
    },
    {
        .name = "PutCached",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_REQUIRED("entry"), SVC_LEN("entry.key", 1, 255),
                             SVC_ENUM_OPT("entry.cache_type"), SVC_REQUIRED("entry.content_json"),
                             SVC_JSON_OBJECT("entry.content_json"),
                             SVC_RANGE("ttl_ms", 1, 315360000000.0)),
        .stmts = {{put_cached_sql,
                   SVC_PARAMS("entry.key", "entry.cache_type", "entry.content_json", "ttl_ms")}},
    },
    {
        .name = "CleanExpiredCache",
        .flags = SVC_TENANT,
        .stmts = {{clean_cache_sql, NULL}},
        .reply = SVC_COUNT,
        .field = "removed",
    },
    {
        .name = "GetCacheStats",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .stmts = {{cache_stats_sql, NULL}},
    },
};

static int start(svc_env *env)
{
    return svc_table_register(env, &arbiter__v1__knowledge__descriptor, methods,
                              sizeof(methods) / sizeof(methods[0]));
}

const struct svc_service svc_knowledge = {.name = "Knowledge", .start = start};
