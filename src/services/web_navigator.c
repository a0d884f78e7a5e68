/* arbiter.v1.WebNavigator: the upstream WebNavigatorDatabaseClient
 * (UPSTREAM.md §2.3) as a method table over migrations/0005_web_navigator.sql.
 *
 * Tenant scoping is the database's alone (see agent_registry.c): no
 * statement names a tenant, another tenant's row is "not found", and a
 * reference to it is "a referenced row does not exist".
 *
 * Every method is one table entry; what needs several steps is one
 * statement with data-modifying CTEs, except AddNodes, which first locks
 * its traversal in a statement of its own so that the next statement's
 * snapshot sees every node a concurrent AddNodes committed before it. */
#include "services/services.h"
#include "services/svc_table.h"
#include "web_navigator.pb-c.h"

#define URL_RULE(f) SVC_LEN(f, 1, 2048)
/* SQL is built from object-like macros only: clang-format cannot lay out
 * function-like macro calls inside string concatenations. */
#define PER_MS " * interval '1 millisecond'"
#define DAY_MS 86400000.0
#define TEN_YEARS_MS 315576000000.0

/* ---- content and its cache ------------------------------------------------ */

/* WebContent from a web_content row named c, with the URL given. */
#define CONTENT_COLS(p, url)                                                                       \
    "c.id AS \"" p "id\", " url " AS \"" p "url\", c.title AS \"" p "title\", "                    \
    "c.content AS \"" p "content\", c.content_hash AS \"" p "content_hash\", "                     \
    "c.links AS \"" p "links\", c.images AS \"" p "images\", "                                     \
    "c.metadata::text AS \"" p "metadata_json\", c.status_code AS \"" p "status_code\", "          \
    "c.content_type AS \"" p "content_type\", c.extracted_at AS \"" p "extracted_at\""
#define STORED_CONTENT_COLS CONTENT_COLS("", "c.url")
#define CACHED_CONTENT_COLS CONTENT_COLS("content.", "e.url")

/* Content is stored once per hash: a second store of the same text takes
 * the newest description (URL, title, links, ...) and keeps the id. The
 * URL's cache entry then points at it until now + ttl. */
static const char store_content_sql[] =
    "WITH c AS (INSERT INTO web_content AS w (content_hash, url, title, content, links, images,"
    " metadata, status_code, content_type, extracted_at)"
    " VALUES (encode(sha256(convert_to($3, 'UTF8')), 'hex'), $1, $2, $3,"
    " COALESCE($4::jsonb, '[]'), COALESCE($5::jsonb, '[]'), COALESCE(NULLIF($6, '')::jsonb, '{}'),"
    " $7::int4, $8, COALESCE($9::timestamptz, now()))"
    " ON CONFLICT (tenant_id, content_hash) DO UPDATE SET url = EXCLUDED.url,"
    " title = EXCLUDED.title, links = EXCLUDED.links, images = EXCLUDED.images,"
    " metadata = EXCLUDED.metadata, status_code = EXCLUDED.status_code,"
    " content_type = EXCLUDED.content_type, extracted_at = EXCLUDED.extracted_at"
    " RETURNING *),"
    " e AS (INSERT INTO web_cache (url, content_id, expires_at)"
    " SELECT c.url, c.id, now() + COALESCE(NULLIF($10::int8, 0), 86400000)" PER_MS " FROM c"
    " ON CONFLICT (tenant_id, url) DO UPDATE SET content_id = EXCLUDED.content_id,"
    " expires_at = EXCLUDED.expires_at, cached_at = now(), hit_count = 0)"
    " SELECT " STORED_CONTENT_COLS " FROM c";

/* A hit bumps the entry's hit_count; hit or miss bumps the counters of
 * this connection's shard. The outer LEFT JOIN makes a miss one row with
 * hit = false and no content. */
static const char get_content_sql[] =
    "WITH e AS (UPDATE web_cache SET hit_count = hit_count + 1, last_hit_at = now()"
    " WHERE url = $1 AND expires_at > now() RETURNING tenant_id, url, content_id, expires_at),"
    " k AS (INSERT INTO web_cache_counters AS k (shard, hits, misses)"
    " SELECT pg_backend_pid() % 16, count(*), 1 - count(*) FROM e"
    " ON CONFLICT (tenant_id, shard) DO UPDATE"
    " SET hits = k.hits + EXCLUDED.hits, misses = k.misses + EXCLUDED.misses)"
    " SELECT e.url IS NOT NULL AS hit, " CACHED_CONTENT_COLS ", e.expires_at"
    " FROM (SELECT 1) one LEFT JOIN (e JOIN web_content c"
    " ON c.tenant_id = e.tenant_id AND c.id = e.content_id) ON true";

static const char cache_content_sql[] =
    "INSERT INTO web_cache (url, content_id, expires_at)"
    " VALUES ($1, $2::uuid, now() + COALESCE(NULLIF($3::int8, 0), 86400000)" PER_MS ")"
    " ON CONFLICT (tenant_id, url) DO UPDATE SET content_id = EXCLUDED.content_id,"
    " expires_at = EXCLUDED.expires_at, cached_at = now(), hit_count = 0"
    " RETURNING url, content_id, expires_at";

/* Expired entries go, then the content they pointed at unless a fresh
 * entry still points at it (both CTEs see the same snapshot: "fresh" is
 * decided by expires_at, not by the other delete). Content that lost its
 * last entry otherwise (CacheContent repointed the URL) is not looked for:
 * that would scan all of a tenant's content on every cleanup. */
static const char cleanup_sql[] =
    "WITH gone AS (DELETE FROM web_cache WHERE expires_at <= now()"
    " RETURNING tenant_id, content_id),"
    " orphan AS (DELETE FROM web_content c"
    " USING (SELECT DISTINCT tenant_id, content_id FROM gone) g"
    " WHERE c.tenant_id = g.tenant_id AND c.id = g.content_id AND NOT EXISTS ("
    "  SELECT 1 FROM web_cache w WHERE w.tenant_id = c.tenant_id AND w.content_id = c.id"
    "  AND w.expires_at > now()) RETURNING 1)"
    " SELECT (SELECT count(*) FROM gone) AS removed,"
    " (SELECT count(*) FROM orphan) AS removed_content";

/* Age buckets are disjoint: [0, 1h), [1h, 6h), [6h, 12h), [12h, 24h), 24h+. */
static const char cache_stats_sql[] =
    "SELECT (SELECT count(*) FROM web_cache WHERE expires_at > now()) AS total_pages,"
    " (SELECT COALESCE(sum(size_bytes), 0)::int8 FROM web_content) AS cache_size_bytes,"
    " k.hits, k.misses,"
    " CASE WHEN k.hits + k.misses > 0 THEN k.hits::float8 / (k.hits + k.misses) ELSE 0 END"
    " AS hit_rate,"
    " count(*) FILTER (WHERE age < interval '1 hour') AS under_1h,"
    " count(*) FILTER (WHERE age >= interval '1 hour' AND age < interval '6 hours')"
    " AS under_6h,"
    " count(*) FILTER (WHERE age >= interval '6 hours' AND age < interval '12 hours')"
    " AS under_12h,"
    " count(*) FILTER (WHERE age >= interval '12 hours' AND age < interval '24 hours')"
    " AS under_24h,"
    " count(*) FILTER (WHERE age >= interval '24 hours') AS older"
    " FROM (SELECT COALESCE(sum(hits), 0)::int8 AS hits, COALESCE(sum(misses), 0)::int8 AS misses"
    " FROM web_cache_counters) k"
    " LEFT JOIN (SELECT now() - c.extracted_at AS age FROM web_cache w"
    " JOIN web_content c ON c.tenant_id = w.tenant_id AND c.id = w.content_id"
    " WHERE w.expires_at > now()) a ON true"
    " GROUP BY k.hits, k.misses";

#define SINCE "recorded_at >= COALESCE($1::timestamptz, '-infinity')"
static const char extraction_stats_sql[] =
    "SELECT count(*) AS count,"
    " COALESCE(percentile_cont(0.5) WITHIN GROUP (ORDER BY total_ms), 0) AS p50_total_ms,"
    " COALESCE(percentile_cont(0.95) WITHIN GROUP (ORDER BY total_ms), 0) AS p95_total_ms,"
    " COALESCE(avg(total_ms), 0) AS average_total_ms,"
    " count(*) FILTER (WHERE malicious_detected) AS malicious_count,"
    " count(*) FILTER (WHERE sanitized) AS sanitized_count,"
    " count(*) FILTER (WHERE ssl_verified) AS ssl_verified_count,"
    " (SELECT COALESCE(jsonb_object_agg(cls, n), '{}') FROM ("
    "  SELECT CASE WHEN status_code BETWEEN 100 AND 599 THEN (status_code / 100)::text || 'xx'"
    "  ELSE 'other' END AS cls, count(*) AS n"
    "  FROM web_extraction_metrics WHERE " SINCE " GROUP BY 1) s) AS by_status_class"
    " FROM web_extraction_metrics WHERE " SINCE;

/* ---- rate limits ------------------------------------------------------------- */

/* A RateLimit from a web_rate_limits row named r. */
#define RL_COLS(p)                                                                                 \
    "r.domain AS \"" p "domain\", r.requests_in_window AS \"" p "requests_in_window\", "           \
    "r.window_started_at AS \"" p "window_started_at\", "                                          \
    "r.window_started_at + r.window_ms" PER_MS " AS \"" p "window_reset_at\", "                    \
    "r.backoff_until AS \"" p "backoff_until\", r.last_request_at AS \"" p "last_request_at\", "   \
    "r.max_requests AS \"" p "max_requests\", r.window_ms AS \"" p "window_ms\", "                 \
    "r.backoff_reason AS \"" p "backoff_reason\""
#define RATE_LIMIT_COLS RL_COLS("rate_limit.")

/* The decision, from the locked row r and the attempt (EXCLUDED). Time
 * never runs backwards for a row: the attempt's clock is at least the
 * previous attempt's, whatever order the lock was granted in. */
#define RL_AT "GREATEST(EXCLUDED.last_attempt_at, r.last_attempt_at)"
#define RL_EXPIRED "(" RL_AT " >= r.window_started_at + EXCLUDED.window_ms" PER_MS ")"
#define RL_USED "(CASE WHEN " RL_EXPIRED " THEN 0 ELSE r.requests_in_window END)"
#define RL_BACKOFF "(r.backoff_until IS NOT NULL AND " RL_AT " < r.backoff_until)"
#define RL_ALLOW "(NOT " RL_BACKOFF " AND " RL_USED " < EXCLUDED.max_requests)"

/* One atomic statement: the first request creates the row (and passes);
 * later ones lock it, start a new window when the old one has ended, and
 * count themselves only when allowed. Concurrent callers queue on the row
 * lock and each decides on the newest row version, so exactly
 * max_requests pass per window. */
static const char acquire_sql[] =
    "INSERT INTO web_rate_limits AS r (domain, max_requests, window_ms, requests_in_window,"
    " window_started_at, last_request_at, last_attempt_at, last_allowed)"
    " SELECT lower($1), $2::int4, COALESCE(NULLIF($3::int8, 0), 60000), 1, at, at, at, true"
    " FROM (SELECT clock_timestamp() AS at) clock"
    " ON CONFLICT (tenant_id, domain) DO UPDATE SET"
    " max_requests = EXCLUDED.max_requests, window_ms = EXCLUDED.window_ms,"
    " window_started_at = CASE WHEN " RL_EXPIRED " THEN " RL_AT " ELSE r.window_started_at END,"
    " requests_in_window = " RL_USED " + CASE WHEN " RL_ALLOW " THEN 1 ELSE 0 END,"
    " backoff_until = CASE WHEN " RL_BACKOFF " THEN r.backoff_until END,"
    " backoff_reason = CASE WHEN " RL_BACKOFF " THEN r.backoff_reason ELSE '' END,"
    " last_request_at = CASE WHEN " RL_ALLOW " THEN " RL_AT " ELSE r.last_request_at END,"
    " last_attempt_at = " RL_AT ", last_allowed = " RL_ALLOW
    " RETURNING r.last_allowed AS allowed, " RATE_LIMIT_COLS ","
    " CASE WHEN r.last_allowed THEN 0 ELSE GREATEST(0, ceil(1000 * extract(epoch FROM"
    " GREATEST(r.backoff_until, CASE WHEN r.requests_in_window >= r.max_requests"
    " THEN r.window_started_at + r.window_ms" PER_MS " END) - r.last_attempt_at)))::int8 END"
    " AS retry_after_ms";

/* ---- traversals -------------------------------------------------------------- */

#define TRAVERSAL_COLS(p)                                                                          \
    "t.id AS \"" p "id\", t.session_id AS \"" p "session_id\", "                                   \
    "t.start_url AS \"" p "start_url\", t.max_depth AS \"" p "max_depth\", "                       \
    "t.max_pages AS \"" p "max_pages\", t.strategy AS \"" p "strategy\", "                         \
    "t.status AS \"" p "status\", t.error_message AS \"" p "error_message\", "                     \
    "t.created_at AS \"" p "created_at\", t.completed_at AS \"" p "completed_at\""
#define TRAVERSAL_TOP_COLS TRAVERSAL_COLS("")
#define TRAVERSAL_NESTED_COLS TRAVERSAL_COLS("traversal.")

/* Every NodeStatus, zeros included, of the traversal t (a jsonb object). */
#define NODES_BY_STATUS                                                                            \
    "(SELECT jsonb_build_object("                                                                  \
    "'PENDING', count(*) FILTER (WHERE n.status = 'PENDING'),"                                     \
    " 'CLAIMED', count(*) FILTER (WHERE n.status = 'CLAIMED'),"                                    \
    " 'DONE', count(*) FILTER (WHERE n.status = 'DONE'),"                                          \
    " 'FAILED', count(*) FILTER (WHERE n.status = 'FAILED'),"                                      \
    " 'SKIPPED', count(*) FILTER (WHERE n.status = 'SKIPPED'))"                                    \
    " FROM web_crawl_nodes n WHERE n.tenant_id = t.tenant_id AND n.traversal_id = t.id)"

/* The traversal and its root node (depth 0) in one statement; the root is
 * its only node, so the counts are known. */
static const char create_traversal_sql[] =
    "WITH t AS (INSERT INTO web_traversals (session_id, start_url, max_depth, max_pages, strategy,"
    " node_count) VALUES ($1, $2, COALESCE(NULLIF($3::int4, 0), 3),"
    " COALESCE(NULLIF($4::int4, 0), 50),"
    " COALESCE($5, 'BREADTH_FIRST'), 1) RETURNING *),"
    " root AS (INSERT INTO web_crawl_nodes (traversal_id, url, depth, rank)"
    " SELECT t.id, t.start_url, 0, web_node_rank(t.strategy, 0, 0) FROM t)"
    " SELECT " TRAVERSAL_TOP_COLS ", jsonb_build_object('PENDING', 1, 'CLAIMED', 0, 'DONE', 0,"
    " 'FAILED', 0, 'SKIPPED', 0) AS nodes_by_status FROM t";

/* After the lock (statement 0), this statement's snapshot holds every
 * node committed before. The first occurrence of a URL in the request
 * counts; duplicates are the others and the URLs already there; of the new
 * ones, those within max_depth are added in request order while room is
 * left under max_pages (none when the traversal is not RUNNING), the rest
 * refused. The node_count CHECK backs max_pages up in the database. */
static const char add_nodes_sql[] =
    "WITH t AS (SELECT tenant_id, id, strategy, max_depth,"
    " CASE WHEN status = 'RUNNING' THEN max_pages - node_count ELSE 0 END AS room"
    " FROM web_traversals WHERE id = $1::uuid),"
    " req AS (SELECT * FROM unnest($2::text[], $3::int4[], $4::text[], $5::text[], $6::float8[])"
    " WITH ORDINALITY AS q(url, depth, parent_id, link_text, priority, ord)),"
    " firsts AS (SELECT DISTINCT ON (url) * FROM req ORDER BY url, ord),"
    " fresh AS (SELECT f.* FROM firsts f, t WHERE NOT EXISTS (SELECT 1 FROM web_crawl_nodes n"
    " WHERE n.tenant_id = t.tenant_id AND n.traversal_id = t.id AND n.url = f.url)),"
    " fits AS (SELECT f.*, row_number() OVER (ORDER BY f.ord) AS rn FROM fresh f, t"
    " WHERE f.depth <= t.max_depth),"
    " ins AS (INSERT INTO web_crawl_nodes"
    " (traversal_id, url, depth, parent_id, link_text, priority, rank)"
    " SELECT t.id, f.url, f.depth, NULLIF(f.parent_id, '')::uuid, f.link_text, f.priority,"
    " web_node_rank(t.strategy, f.depth, f.priority) FROM fits f, t WHERE f.rn <= t.room"
    " ORDER BY f.ord ON CONFLICT DO NOTHING RETURNING 1),"
    " added AS (SELECT count(*)::int4 AS n FROM ins),"
    " counted AS (UPDATE web_traversals w SET node_count = w.node_count + added.n FROM t, added"
    " WHERE w.tenant_id = t.tenant_id AND w.id = t.id)"
    " SELECT added.n AS added, ((SELECT count(*) FROM req) - (SELECT count(*) FROM fresh))::int4"
    " AS duplicates, ((SELECT count(*) FROM fresh) - added.n)::int4 AS refused FROM t, added";

/* The claimable nodes of a RUNNING traversal: the first pending ones in
 * claim order (by the claim index) and the longest-expired leases (by the
 * lease index; normally none), each locked with SKIP LOCKED so that
 * concurrent claimers pass each other by; of both, the first |max| in
 * claim order. Expired leases are taken by age rather than by rank so that
 * many of them (a crashed crawler's) cost an index range, not a sort. The
 * CTEs are MATERIALIZED so that the LIMITs and the locks are taken once,
 * before the UPDATE; up to |max| rows more than handed out may stay locked
 * until the commit. A row another claimer committed meanwhile is
 * re-checked against the WHERE clause on its newest version and dropped.
 * The reply is one JSON array, so that an unknown traversal is one
 * missing row (NOT_FOUND) rather than an empty list. */
#define CLAIMABLE_FROM                                                                             \
    "SELECT n.tenant_id, n.id, n.rank, n.seq FROM web_crawl_nodes n"                               \
    " WHERE n.traversal_id = $1::uuid AND EXISTS (SELECT 1 FROM t WHERE t.status = 'RUNNING')"
#define CLAIMABLE_LOCK " LIMIT $2::int4 FOR UPDATE OF n SKIP LOCKED"
static const char claim_sql[] =
    "WITH t AS (SELECT id, status FROM web_traversals WHERE id = $1::uuid),"
    " p AS MATERIALIZED (" CLAIMABLE_FROM " AND n.status = 'PENDING'"
    " ORDER BY n.rank, n.seq" CLAIMABLE_LOCK "),"
    " e AS MATERIALIZED (" CLAIMABLE_FROM " AND n.status = 'CLAIMED'"
    " AND n.claimed_until <= now() ORDER BY n.claimed_until" CLAIMABLE_LOCK "),"
    " c AS (SELECT * FROM p UNION ALL SELECT * FROM e ORDER BY rank, seq LIMIT $2::int4),"
    " u AS (UPDATE web_crawl_nodes n SET status = 'CLAIMED',"
    " claimed_until = now() + COALESCE(NULLIF($3::int8, 0), 60000)" PER_MS ","
    " claims = n.claims + 1, updated_at = now()"
    " FROM c WHERE n.tenant_id = c.tenant_id AND n.id = c.id RETURNING n.*)"
    " SELECT (SELECT COALESCE(jsonb_agg(jsonb_build_object('id', u.id, 'traversal_id',"
    " u.traversal_id, 'url', u.url, 'depth', u.depth, 'parent_id', u.parent_id, 'link_text',"
    " u.link_text, 'priority', u.priority, 'status', u.status, 'content_id', u.content_id,"
    " 'error_message', u.error_message, 'claimed_until', u.claimed_until)"
    " ORDER BY u.rank, u.seq), '[]') FROM u) AS nodes FROM t";

/* Any status but CLAIMED (which the "status" CHECK then refuses, since
 * the lease is cleared here); an empty content_id keeps the node's. */
static const char update_node_sql[] =
    "UPDATE web_crawl_nodes SET status = $2,"
    " content_id = COALESCE(NULLIF($3, '')::uuid, content_id),"
    " error_message = $4, claimed_until = NULL, updated_at = now() WHERE id = $1::uuid"
    " RETURNING id AS \"node.id\", traversal_id AS \"node.traversal_id\", url AS \"node.url\","
    " depth AS \"node.depth\", parent_id AS \"node.parent_id\", link_text AS \"node.link_text\","
    " priority AS \"node.priority\", status AS \"node.status\", content_id AS \"node.content_id\","
    " error_message AS \"node.error_message\", claimed_until AS \"node.claimed_until\"";

static const char update_traversal_sql[] =
    "UPDATE web_traversals t SET status = $2, error_message = $3,"
    " completed_at = CASE WHEN $2 = 'RUNNING' THEN NULL ELSE now() END"
    " WHERE id = $1::uuid RETURNING " TRAVERSAL_NESTED_COLS ","
    " " NODES_BY_STATUS " AS \"traversal.nodes_by_status\"";

/* ---- the table --------------------------------------------------------------- */

static const svc_method content_methods[] = {
    {
        .name = "StoreContent",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(
            SVC_REQUIRED("content"), URL_RULE("content.url"), SVC_LEN("content.title", 0, 4096),
            SVC_ITEMS("content.links", 10000, 0, 0), SVC_ITEMS("content.images", 10000, 0, 0),
            SVC_JSON_OBJECT("content.metadata_json"), SVC_RANGE("content.status_code", 0, 999),
            SVC_LEN("content.content_type", 0, 255), SVC_RANGE("ttl_ms", 0, TEN_YEARS_MS)),
        .stmts = {{store_content_sql,
                   SVC_PARAMS("content.url", "content.title", "content.content", "content.links",
                              "content.images", "content.metadata_json", "content.status_code",
                              "content.content_type", "content.extracted_at", "ttl_ms")}},
    },
    {
        .name = "GetContentByUrl",
        .flags = SVC_TENANT, /* counts hits and misses: not read-only */
        .checks = SVC_CHECKS(URL_RULE("url")),
        .stmts = {{get_content_sql, SVC_PARAMS("url")}},
    },
    {
        .name = "CacheContent",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(URL_RULE("url"), SVC_UUID("content_id"),
                             SVC_RANGE("ttl_ms", 0, TEN_YEARS_MS)),
        .stmts = {{cache_content_sql, SVC_PARAMS("url", "content_id", "ttl_ms")}},
    },
    {
        .name = "CleanupExpiredContent",
        .flags = SVC_TENANT,
        .stmts = {{cleanup_sql, NULL}},
    },
    {
        .name = "GetContentCacheStats",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .stmts = {{cache_stats_sql, NULL}},
    },
    {
        .name = "StoreExtractionMetrics",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_UUID_OPT("content_id"), SVC_RANGE("total_ms", 0, DAY_MS * 365),
                             SVC_RANGE("fetch_ms", 0, DAY_MS * 365),
                             SVC_RANGE("parse_ms", 0, DAY_MS * 365),
                             SVC_RANGE("sanitize_ms", 0, DAY_MS * 365),
                             SVC_RANGE("status_code", 0, 999), SVC_LEN("content_type", 0, 255)),
        .stmts = {{"INSERT INTO web_extraction_metrics (content_id, total_ms, fetch_ms, parse_ms,"
                   " sanitize_ms, status_code, content_type, ssl_verified, malicious_detected,"
                   " sanitized) VALUES (NULLIF($1, '')::uuid, $2::float8, $3::float8, $4::float8,"
                   " $5::float8, $6::int4, $7, $8::bool, $9::bool, $10::bool)"
                   " RETURNING id, recorded_at",
                   SVC_PARAMS("content_id", "total_ms", "fetch_ms", "parse_ms", "sanitize_ms",
                              "status_code", "content_type", "ssl_verified", "malicious_detected",
                              "sanitized")}},
    },
    {
        .name = "GetExtractionStats",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .stmts = {{extraction_stats_sql, SVC_PARAMS("since")}},
    },
};

#define DOMAIN_RULE SVC_LEN("domain", 1, 253)
#define RL_BY_DOMAIN "FROM web_rate_limits r WHERE r.domain = lower($1)"

static const svc_method rate_limit_methods[] = {
    {
        .name = "AcquireRateLimit",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(DOMAIN_RULE, SVC_RANGE("max_requests", 1, 1000000),
                             SVC_RANGE("window_ms", 0, DAY_MS * 7)),
        .stmts = {{acquire_sql, SVC_PARAMS("domain", "max_requests", "window_ms")}},
    },
    {
        .name = "GetRateLimit",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .checks = SVC_CHECKS(DOMAIN_RULE),
        .stmts = {{"SELECT " RATE_LIMIT_COLS " " RL_BY_DOMAIN, SVC_PARAMS("domain")}},
        .not_found = "no rate limit for this domain (AcquireRateLimit creates it)",
    },
    {
        .name = "SetBackoff",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(DOMAIN_RULE, SVC_RANGE("backoff_ms", 0, DAY_MS * 30),
                             SVC_LEN("reason", 0, 1024)),
        .stmts = {{"UPDATE web_rate_limits r SET"
                   " backoff_until = CASE WHEN $2::int8 > 0 THEN now() + $2::int8" PER_MS " END,"
                   " backoff_reason = CASE WHEN $2::int8 > 0 THEN $3 ELSE '' END"
                   " WHERE r.domain = lower($1) RETURNING " RATE_LIMIT_COLS,
                   SVC_PARAMS("domain", "backoff_ms", "reason")}},
        .not_found = "no rate limit for this domain (AcquireRateLimit creates it)",
    },
    {
        /* A fresh window and no backoff; the limits stay. */
        .name = "ResetRateLimit",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(DOMAIN_RULE),
        .stmts = {{"UPDATE web_rate_limits r SET requests_in_window = 0,"
                   " window_started_at = GREATEST(now(), r.last_attempt_at),"
                   " backoff_until = NULL, backoff_reason = ''"
                   " WHERE r.domain = lower($1) RETURNING " RATE_LIMIT_COLS,
                   SVC_PARAMS("domain")}},
        .not_found = "no rate limit for this domain",
    },
};

#define TRAVERSAL_NOT_FOUND "traversal not found"

static const svc_method traversal_methods[] = {
    {
        .name = "CreateTraversal",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_LEN("session_id", 0, 255), URL_RULE("start_url"),
                             SVC_RANGE("max_depth", 0, 100), SVC_RANGE("max_pages", 0, 1000000),
                             SVC_ENUM_OPT("strategy")),
        .stmts = {{create_traversal_sql,
                   SVC_PARAMS("session_id", "start_url", "max_depth", "max_pages", "strategy")}},
    },
    {
        .name = "AddNodes",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_UUID("traversal_id"), SVC_ITEMS("nodes", 1000, 0, 0),
                             URL_RULE("nodes.url"), SVC_RANGE("nodes.depth", 1, 2147483647),
                             SVC_UUID_OPT("nodes.parent_id"), SVC_LEN("nodes.link_text", 0, 4096),
                             SVC_RANGE("nodes.priority", -1e300, 1e300)),
        .stmts = {{"SELECT 1 FROM web_traversals WHERE id = $1::uuid FOR NO KEY UPDATE",
                   SVC_PARAMS("traversal_id")},
                  {add_nodes_sql,
                   SVC_PARAMS("traversal_id", "nodes.url", "nodes.depth", "nodes.parent_id",
                              "nodes.link_text", "nodes.priority")}},
        .not_found = TRAVERSAL_NOT_FOUND,
    },
    {
        .name = "ClaimNodes",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_UUID("traversal_id"), SVC_RANGE("max", 1, 100),
                             SVC_RANGE("lease_ms", 0, DAY_MS)),
        .stmts = {{claim_sql, SVC_PARAMS("traversal_id", "max", "lease_ms")}},
        .not_found = TRAVERSAL_NOT_FOUND,
    },
    {
        .name = "UpdateNode",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_UUID("node_id"), SVC_ENUM("status"), SVC_UUID_OPT("content_id"),
                             SVC_LEN("error_message", 0, 4096)),
        .stmts = {{update_node_sql,
                   SVC_PARAMS("node_id", "status", "content_id", "error_message")}},
        .not_found = "node not found",
    },
    {
        .name = "UpdateTraversalStatus",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_UUID("id"), SVC_ENUM("status"), SVC_LEN("error_message", 0, 4096)),
        .stmts = {{update_traversal_sql, SVC_PARAMS("id", "status", "error_message")}},
        .not_found = TRAVERSAL_NOT_FOUND,
    },
    {
        .name = "GetTraversal",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .checks = SVC_CHECKS(SVC_UUID("id")),
        .stmts = {{"SELECT " TRAVERSAL_TOP_COLS ", " NODES_BY_STATUS " AS nodes_by_status"
                   " FROM web_traversals t WHERE t.id = $1::uuid",
                   SVC_PARAMS("id")}},
        .not_found = TRAVERSAL_NOT_FOUND,
    },
};

static int start(svc_env *env)
{
    const ProtobufCServiceDescriptor *d = &arbiter__v1__web_navigator__descriptor;
    int rv = svc_table_register(env, d, content_methods,
                                sizeof(content_methods) / sizeof(content_methods[0]));

    if (rv == 0)
        rv = svc_table_register(env, d, rate_limit_methods,
                                sizeof(rate_limit_methods) / sizeof(rate_limit_methods[0]));
    if (rv == 0)
        rv = svc_table_register(env, d, traversal_methods,
                                sizeof(traversal_methods) / sizeof(traversal_methods[0]));
    return rv;
}

const struct svc_service svc_web_navigator = {.name = "WebNavigator", .start = start};
