/* arbiter.v1.Verification: the upstream VerificationDatabaseClient
 * (UPSTREAM.md §2.4) as a method table over migrations/0006_verification.sql.
 *
 * Every method needs x-tenant-id and is scoped by the database alone
 * (forced row-level security on every table), so no statement names a
 * tenant and another tenant's request or result is simply not found.
 *
 * What the schema decides, it decides once: the forward-only status rule
 * is a trigger (one rule for SaveRequest, UpdateRequestStatus and
 * SaveResult), value ranges are CHECK constraints named after the request
 * field (a bad evidence item fails the statement that writes it, and with
 * it the whole SaveResult), and the cache key is one SQL function. Here are
 * only the statements, the structural checks and the messages.
 *
 * No method needs a hand-written handler. */
#include "services/services.h"
#include "services/svc_table.h"
#include "verification.pb-c.h"

/* One VerificationRequest as every method answers it. */
#define REQUEST_COLS                                                                               \
    "id, content, source, verification_types, priority, timeout_ms,"                               \
    " metadata AS metadata_json, status, cache_key, created_at, started_at, completed_at,"         \
    " processing_time_ms, error_message, error_code"

/* One VerificationResult with its evidence and method results in the
 * order they were given, from verification_results r and the children's
 * arrays e and m (RESULT_CHILDREN); P prefixes every column ("result." for
 * a nested message). The children come back as one array per field
 * ("evidence.source" fills every Evidence's source), in the same statement
 * as their result, so one snapshot: a concurrent SaveResult cannot slip in
 * between a result and its evidence. (As JSON, json-c's parsing took half
 * of the server's CPU time in GetResult.) */
#define RESULT_COLS(P)                                                                             \
    "r.id AS \"" P "id\", r.request_id AS \"" P "request_id\", r.verdict AS \"" P "verdict\","     \
    " r.confidence AS \"" P "confidence\", r.reasoning AS \"" P "reasoning\","                     \
    " r.processing_time_ms AS \"" P "processing_time_ms\", r.created_at AS \"" P "created_at\","   \
    " e.id AS \"" P "evidence.id\", e.source AS \"" P "evidence.source\","                         \
    " e.content AS \"" P "evidence.content\", e.strength AS \"" P "evidence.strength\","           \
    " e.credibility AS \"" P "evidence.credibility\","                                             \
    " e.relevance AS \"" P "evidence.relevance\", e.supports AS \"" P "evidence.supports\","       \
    " e.method AS \"" P "evidence.method\", e.content_hash AS \"" P "evidence.content_hash\","     \
    " e.observed_at AS \"" P "evidence.observed_at\","                                             \
    " m.method AS \"" P "method_results.method\", m.verdict AS \"" P "method_results.verdict\","   \
    " m.confidence AS \"" P "method_results.confidence\","                                         \
    " m.processing_time_ms AS \"" P "method_results.processing_time_ms\","                         \
    " m.evidence_count AS \"" P "method_results.evidence_count\","                                 \
    " m.error_message AS \"" P "method_results.error_message\""

/* Joined after verification_results r: its children as arrays (NULL when
 * there are none). */
#define RESULT_CHILDREN                                                                            \
    " LEFT JOIN LATERAL (SELECT array_agg(x.id ORDER BY x.ord) AS id,"                             \
    "  array_agg(x.source ORDER BY x.ord) AS source,"                                              \
    "  array_agg(x.content ORDER BY x.ord) AS content,"                                            \
    "  array_agg(x.strength ORDER BY x.ord) AS strength,"                                          \
    "  array_agg(x.credibility ORDER BY x.ord) AS credibility,"                                    \
    "  array_agg(x.relevance ORDER BY x.ord) AS relevance,"                                        \
    "  array_agg(x.supports ORDER BY x.ord) AS supports,"                                          \
    "  array_agg(x.method ORDER BY x.ord) AS method,"                                              \
    "  array_agg(x.content_hash ORDER BY x.ord) AS content_hash,"                                  \
    "  array_agg(x.observed_at ORDER BY x.ord) AS observed_at"                                     \
    "  FROM verification_evidence x WHERE x.tenant_id = r.tenant_id AND x.result_id = r.id) e"     \
    " ON true"                                                                                     \
    " LEFT JOIN LATERAL (SELECT array_agg(y.method ORDER BY y.ord) AS method,"                     \
    "  array_agg(y.verdict ORDER BY y.ord) AS verdict,"                                            \
    "  array_agg(y.confidence ORDER BY y.ord) AS confidence,"                                      \
    "  array_agg(y.processing_time_ms ORDER BY y.ord) AS processing_time_ms,"                      \
    "  array_agg(y.evidence_count ORDER BY y.ord) AS evidence_count,"                              \
    "  array_agg(y.error_message ORDER BY y.ord) AS error_message"                                 \
    "  FROM verification_method_results y"                                                         \
    "  WHERE y.tenant_id = r.tenant_id AND y.result_id = r.id) m ON true"

/* The latest result of request $1: the highest seq, one index step; the
 * children are read for that one row only. */
#define LATEST_FROM                                                                                \
    " FROM (SELECT * FROM verification_results WHERE request_id = $1::uuid"                        \
    " ORDER BY seq DESC LIMIT 1) r"
#define LATEST_RESULT "SELECT " RESULT_COLS("") LATEST_FROM RESULT_CHILDREN

/* Results (and so evidence and method results) stored at or after $1. */
#define SINCE "r.created_at >= COALESCE($1::timestamptz, '-infinity')"

#define FORWARD_ONLY                                                                               \
    "status: requests move forward only (PENDING, PROCESSING, then COMPLETED, FAILED or "          \
    "TIMED_OUT)"

/* Insert, or on an existing id only a status move (the trigger checks it
 * and sets started_at). The cache key is computed on both paths, from the
 * values given; on an existing id the stored content, and key, stay. */
static const char save_request_sql[] =
    "INSERT INTO verification_requests AS q"
    " (id, content, source, verification_types, priority, timeout_ms, metadata, cache_key)"
    " VALUES (COALESCE(NULLIF($1, '')::uuid, gen_random_uuid()), $2, $3, $4::text[],"
    " COALESCE(NULLIF($5::int4, 0), 5), COALESCE(NULLIF($6::int4, 0), 30000),"
    " COALESCE(NULLIF($7, '')::jsonb, '{}'), verification_cache_key($2, $3, $4::text[]))"
    " ON CONFLICT (tenant_id, id) DO UPDATE SET status = COALESCE($8, q.status)"
    " RETURNING " REQUEST_COLS;

/* One statement writes everything. q locks the request row and counts the
 * result: concurrent saves for one request queue there, so seq follows
 * commit order. r reads q, so it runs after the lock; an unknown request
 * leaves q empty, r still inserts (seq 0) and the foreign key fails the
 * statement. e and m insert the items in the order given; a value a CHECK
 * refuses anywhere fails the statement, and nothing stays. */
static const char save_result_sql[] =
    "WITH q AS (UPDATE verification_requests SET status = 'COMPLETED', completed_at = now(),"
    "  processing_time_ms = $5::int8, result_count = result_count + 1"
    "  WHERE id = $1::uuid RETURNING result_count),"
    " r AS (INSERT INTO verification_results"
    "  (id, request_id, seq, verdict, confidence, reasoning, processing_time_ms)"
    "  SELECT COALESCE(NULLIF($2, '')::uuid, gen_random_uuid()), $1::uuid,"
    "  COALESCE(q.result_count, 0), $3, $4::float8, $6::text[], $5::int8"
    "  FROM (SELECT 1) one LEFT JOIN q ON true RETURNING id),"
    " e AS (INSERT INTO verification_evidence (result_id, ord, id, source, content, strength,"
    "  credibility, relevance, supports, method, content_hash, observed_at)"
    "  SELECT r.id, x.ord, COALESCE(NULLIF(x.id, '')::uuid, gen_random_uuid()), x.source,"
    "  x.content, x.strength, x.credibility, x.relevance, x.supports, x.method,"
    "  encode(sha256(convert_to(x.content, 'UTF8')), 'hex'), x.observed_at"
    "  FROM r, ROWS FROM (jsonb_to_recordset($7::jsonb) AS (id text, source text, content text,"
    "  strength float8, credibility float8, relevance float8, supports bool, method text,"
    "  observed_at timestamptz)) WITH ORDINALITY AS x(id, source, content, strength,"
    "  credibility, relevance, supports, method, observed_at, ord)),"
    " m AS (INSERT INTO verification_method_results (result_id, ord, method, verdict,"
    "  confidence, processing_time_ms, evidence_count, error_message)"
    "  SELECT r.id, x.ord, x.method, NULLIF(x.verdict, 'UNSPECIFIED'), x.confidence,"
    "  x.processing_time_ms, x.evidence_count, x.error_message"
    "  FROM r, ROWS FROM (jsonb_to_recordset($8::jsonb) AS (method text, verdict text,"
    "  confidence float8, processing_time_ms int8, evidence_count int4, error_message text))"
    "  WITH ORDINALITY AS x(method, verdict, confidence, processing_time_ms, evidence_count,"
    "  error_message, ord))"
    " SELECT count(*) FROM r";

/* The reply of GetCachedResult: a row on a miss too (from k), with the
 * result's columns NULL, so that the result stays absent. */
#define CACHED_FROM                                                                                \
    " FROM k LEFT JOIN hit h ON true LEFT JOIN verification_results r ON r.id = h.result_id"
#define CACHED_REPLY                                                                               \
    " SELECT h.result_id IS NOT NULL AS hit, h.expires_at, " RESULT_COLS("result.")                \
        CACHED_FROM RESULT_CHILDREN

/* A live entry is a hit and is bumped; either way the call is counted
 * (verification_cache_counters). The reply reads k, so k (and its check
 * for a key) is evaluated even when the join in hit has no cache row to
 * start from. */
static const char get_cached_sql[] =
    "WITH k AS (SELECT CASE WHEN $1 <> '' THEN $1"
    "  WHEN $2 <> '' THEN verification_cache_key($2, $3, $4::text[])"
    "  ELSE verification_fail('22023', 'cache_key') END AS key),"
    " hit AS (UPDATE verification_cache c SET access_count = c.access_count + 1,"
    "  last_accessed_at = now() FROM k WHERE c.cache_key = k.key AND c.expires_at > now()"
    "  RETURNING c.result_id, c.expires_at),"
    " n AS (INSERT INTO verification_cache_counters AS s (shard, hits, misses)"
    "  SELECT pg_backend_pid() % 16, count(*), 1 - count(*) FROM hit"
    "  ON CONFLICT (tenant_id, shard) DO UPDATE"
    "  SET hits = s.hits + EXCLUDED.hits, misses = s.misses + EXCLUDED.misses)" CACHED_REPLY;

/* The request's latest result under the request's key; a request without
 * a result raises (FAILED_PRECONDITION), an unknown one inserts nothing. */
static const char cache_result_sql[] =
    "INSERT INTO verification_cache AS c (cache_key, request_id, result_id, expires_at)"
    " SELECT q.cache_key, q.id,"
    " COALESCE(r.id, verification_fail('55000', 'verification_cache_needs_result')::uuid),"
    " now() + $2::int8 * interval '1 millisecond'"
    " FROM verification_requests q LEFT JOIN LATERAL (SELECT x.id FROM verification_results x"
    "  WHERE x.tenant_id = q.tenant_id AND x.request_id = q.id ORDER BY x.seq DESC LIMIT 1) r"
    " ON true WHERE q.id = $1::uuid"
    " ON CONFLICT (tenant_id, cache_key) DO UPDATE SET request_id = EXCLUDED.request_id,"
    " result_id = EXCLUDED.result_id, cached_at = now(), expires_at = EXCLUDED.expires_at,"
    " access_count = 0, last_accessed_at = NULL"
    " RETURNING cache_key, expires_at";

/* Per method, from the stored method results; a method result succeeded
 * when it has no error_message. */
static const char method_performance_sql[] =
    "SELECT m.method, count(*) AS total,"
    " count(*) FILTER (WHERE m.error_message = '') AS succeeded,"
    " (count(*) FILTER (WHERE m.error_message = ''))::float8 / count(*) AS success_rate,"
    " avg(m.confidence) AS average_confidence,"
    " avg(m.processing_time_ms)::float8 AS average_processing_ms,"
    " percentile_cont(0.95) WITHIN GROUP (ORDER BY m.processing_time_ms) AS p95_processing_ms"
    " FROM verification_method_results m JOIN verification_results r"
    " ON r.tenant_id = m.tenant_id AND r.id = m.result_id WHERE " SINCE
    " GROUP BY m.method ORDER BY m.method";

static const char evidence_stats_sql[] =
    "WITH e AS (SELECT e.source, e.credibility, e.relevance, e.supports"
    "  FROM verification_evidence e JOIN verification_results r"
    "  ON r.tenant_id = e.tenant_id AND r.id = e.result_id WHERE " SINCE ")"
    " SELECT count(*) AS total, COALESCE(avg(credibility), 0) AS average_credibility,"
    " COALESCE(avg(relevance), 0) AS average_relevance,"
    " count(*) FILTER (WHERE supports) AS supporting,"
    " count(*) FILTER (WHERE NOT supports) AS contradicting,"
    " (SELECT json_agg(json_build_object('source', s.source, 'count', s.n)"
    "  ORDER BY s.n DESC, s.source COLLATE \"C\")"
    "  FROM (SELECT source, count(*) AS n FROM e GROUP BY source"
    "  ORDER BY n DESC, source COLLATE \"C\" LIMIT 10) s) AS top_sources"
    " FROM e";

static const char cache_stats_sql[] =
    "SELECT (SELECT count(*) FROM verification_cache) AS entries,"
    " (SELECT count(*) FROM verification_cache WHERE expires_at > now()) AS live_entries,"
    " COALESCE(sum(hits), 0)::int8 AS hits, COALESCE(sum(misses), 0)::int8 AS misses,"
    " COALESCE(sum(hits)::float8 / NULLIF(sum(hits) + sum(misses), 0), 0) AS hit_rate"
    " FROM verification_cache_counters";

#define TYPES(f) SVC_ITEMS(f, 32, 1, 255)
#define INT64_MIN0(f) SVC_RANGE(f, 0, 9e18)

static const svc_method methods[] = {
    {
        .name = "SaveRequest",
        .flags = SVC_TENANT,
        .checks =
            SVC_CHECKS(SVC_REQUIRED("request"), SVC_UUID_OPT("request.id"),
                       SVC_LEN("request.content", 1, 4194304), SVC_LEN("request.source", 0, 2048),
                       TYPES("request.verification_types"), SVC_RANGE("request.priority", 0, 10),
                       SVC_RANGE("request.timeout_ms", 0, 2147483647),
                       SVC_JSON_OBJECT("request.metadata_json"), SVC_ENUM_OPT("request.status")),
        .stmts = {{save_request_sql,
                   SVC_PARAMS("request.id", "request.content", "request.source",
                              "request.verification_types", "request.priority",
                              "request.timeout_ms", "request.metadata_json", "request.status")}},
        .violations =
            SVC_VIOLATIONS({"verification_requests_forward_only", "request." FORWARD_ONLY}),
    },
    {
        .name = "UpdateRequestStatus",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_UUID("id"), SVC_ENUM("status"), INT64_MIN0("processing_time_ms"),
                             SVC_LEN("error_message", 0, 65536), SVC_LEN("error_code", 0, 255)),
        .stmts = {{"UPDATE verification_requests SET status = $2,"
                   " processing_time_ms = CASE WHEN $3::int8 <> 0 THEN $3::int8"
                   "  ELSE processing_time_ms END,"
                   " error_message = CASE WHEN $4 <> '' THEN $4 ELSE error_message END,"
                   " error_code = CASE WHEN $5 <> '' THEN $5 ELSE error_code END"
                   " WHERE id = $1::uuid RETURNING " REQUEST_COLS,
                   SVC_PARAMS("id", "status", "processing_time_ms", "error_message",
                              "error_code")}},
        .not_found = "request not found",
        .violations = SVC_VIOLATIONS({"verification_requests_forward_only", FORWARD_ONLY}),
    },
    {
        .name = "GetRequest",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .checks = SVC_CHECKS(SVC_UUID("id")),
        .stmts = {{"SELECT " REQUEST_COLS " FROM verification_requests WHERE id = $1::uuid",
                   SVC_PARAMS("id")}},
        .not_found = "request not found",
    },
    {
        /* The write, then the latest result of the request: ours, since we
         * still hold the request row's lock that every save takes first. */
        .name = "SaveResult",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(
            SVC_REQUIRED("result"), SVC_UUID("result.request_id"), SVC_UUID_OPT("result.id"),
            SVC_ENUM("result.verdict"), INT64_MIN0("result.processing_time_ms"),
            SVC_ITEMS("result.reasoning", 100, 0, 65536), SVC_ITEMS("result.evidence", 1000, 0, 0),
            SVC_UUID_OPT("result.evidence.id"), SVC_ITEMS("result.method_results", 100, 0, 0),
            SVC_LEN("result.method_results.method", 1, 255),
            SVC_ENUM_OPT("result.method_results.verdict")),
        .stmts = {{save_result_sql,
                   SVC_PARAMS("result.request_id", "result.id", "result.verdict",
                              "result.confidence", "result.processing_time_ms", "result.reasoning",
                              "result.evidence", "result.method_results")},
                  {LATEST_RESULT, SVC_PARAMS("result.request_id")}},
        .violations = SVC_VIOLATIONS(
            {"verification_results_request_fkey", "result.request_id: no such request"},
            {"verification_requests_forward_only",
             "result.request_id: the request has already ended as FAILED or TIMED_OUT"},
            {"verification_results_pkey", "result.id: a result with this id already exists"},
            {"verification_evidence_pkey",
             "result.evidence.id: evidence with this id already exists"}),
    },
    {
        .name = "GetResult",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .checks = SVC_CHECKS(SVC_UUID("request_id")),
        .stmts = {{LATEST_RESULT, SVC_PARAMS("request_id")}},
        .not_found = "no result for this request",
    },
    {
        .name = "GetCachedResult",
        .flags = SVC_TENANT, /* counts hits and misses */
        .checks = SVC_CHECKS(SVC_LEN("cache_key", 0, 64), SVC_LEN("source", 0, 2048),
                             TYPES("verification_types")),
        .stmts = {{get_cached_sql,
                   SVC_PARAMS("cache_key", "content", "source", "verification_types")}},
        .violations = SVC_VIOLATIONS({"cache_key", "cache_key: give a cache_key, or the content"
                                                   " (with source and verification_types)"}),
    },
    {
        .name = "CacheResult",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_UUID("request_id"), SVC_RANGE("ttl_ms", 1, 3.2e11)),
        .stmts = {{cache_result_sql, SVC_PARAMS("request_id", "ttl_ms")}},
        .not_found = "request not found",
        .violations = SVC_VIOLATIONS(
            {"verification_cache_needs_result", "request_id: the request has no result yet"}),
    },
    {
        .name = "CleanupExpiredResults",
        .flags = SVC_TENANT,
        .stmts = {{"DELETE FROM verification_cache WHERE expires_at <= now()", NULL}},
        .reply = SVC_COUNT,
        .field = "removed",
    },
    {
        .name = "GetMethodPerformance",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .stmts = {{method_performance_sql, SVC_PARAMS("since")}},
        .reply = SVC_ROWS,
        .field = "methods",
    },
    {
        .name = "GetEvidenceQualityStats",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .stmts = {{evidence_stats_sql, SVC_PARAMS("since")}},
    },
    {
        .name = "GetVerificationCacheStats",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .stmts = {{cache_stats_sql, NULL}},
    },
};

static int start(svc_env *env)
{
    return svc_table_register(env, &arbiter__v1__verification__descriptor, methods,
                              sizeof(methods) / sizeof(methods[0]));
}

const struct svc_service svc_verification = {.name = "Verification", .start = start};
