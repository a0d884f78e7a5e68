-- 0003_knowledge: knowledge queries, search results, responses, search
-- provider health and the knowledge cache (upstream migration 003,
-- UPSTREAM.md §3), tenant-scoped with forced row-level security.
--
-- As in 0002: tenant_id defaults from the transaction-local setting
-- app.current_tenant, every key and foreign key starts with tenant_id (a
-- row can never point at another tenant's row; Citus-ready), ids are uuid.
--
-- Upstream defects fixed here: the tenant was ignored (no tenant_id at
-- all); content_hash was unique across everyone (now per tenant, computed
-- by the server); the averages of a response came from the client (now
-- from the stored results its sources name, and a source that is not a
-- stored result is a foreign key violation); the cache hit rate was the
-- constant 0.7 (now real hit and miss counters); enums are checked text.
--
-- CHECK constraints are named after the request field they guard
-- ("query.priority"), so a violation answers INVALID_ARGUMENT naming it;
-- the method table checks the same rules first, these are the backstop for
-- any other writer.

-- The forward moves of a query's status: PENDING -> PROCESSING ->
-- COMPLETED or FAILED (PENDING may also finish directly). Reference data,
-- not tenant-owned (a Citus reference table); only the foreign key below
-- reads it, as the table owner, so the app role gets no grant.
CREATE TABLE knowledge_query_transitions (
    from_status text NOT NULL,
    to_status   text NOT NULL,
    PRIMARY KEY (from_status, to_status)
);
INSERT INTO knowledge_query_transitions VALUES
    ('PENDING', 'PROCESSING'), ('PENDING', 'COMPLETED'), ('PENDING', 'FAILED'),
    ('PROCESSING', 'COMPLETED'), ('PROCESSING', 'FAILED');

CREATE TABLE knowledge_queries (
    tenant_id           text NOT NULL
                        DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
                        REFERENCES tenants (id),
    id                  uuid NOT NULL DEFAULT gen_random_uuid(),
    query_text          text NOT NULL
                        CONSTRAINT "query.query_text" CHECK (char_length(query_text) BETWEEN 1 AND 10000),
    query_type          text NOT NULL
                        CONSTRAINT "query.query_type" CHECK (query_type IN
                            ('FACTUAL', 'EXPLANATORY', 'COMPARATIVE', 'TREND', 'TECHNICAL')),
    requester_id        text NOT NULL DEFAULT ''
                        CONSTRAINT "query.requester_id" CHECK (char_length(requester_id) <= 255),
    priority            integer NOT NULL DEFAULT 5
                        CONSTRAINT "query.priority" CHECK (priority BETWEEN 1 AND 10),
    max_results         integer NOT NULL DEFAULT 10
                        CONSTRAINT "query.max_results" CHECK (max_results BETWEEN 1 AND 1000),
    relevance_threshold double precision NOT NULL DEFAULT 0.5
                        CONSTRAINT "query.relevance_threshold"
                        CHECK (relevance_threshold BETWEEN 0 AND 1),
    timeout_ms          integer NOT NULL DEFAULT 30000
                        CONSTRAINT "query.timeout_ms" CHECK (timeout_ms BETWEEN 1 AND 3600000),
    context             jsonb NOT NULL DEFAULT '{}'
                        CONSTRAINT "query.context_json" CHECK (jsonb_typeof(context) = 'object'),
    tags                text[] NOT NULL DEFAULT '{}'
                        CONSTRAINT "query.tags" CHECK (cardinality(tags) <= 64
                            AND array_position(tags, NULL) IS NULL),
    status              text NOT NULL DEFAULT 'PENDING'
                        CHECK (status IN ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED')),
    -- The status before the last move. With status it must be an allowed
    -- move, so "only forward" holds for every writer: an update that sets
    -- (prev_status, status) = (status, new) fails with 23503
    -- (FAILED_PRECONDITION) unless the move is in the table above.
    prev_status         text,
    error_message       text NOT NULL DEFAULT ''
                        CONSTRAINT "error_message" CHECK (char_length(error_message) <= 10000),
    created_at          timestamptz NOT NULL DEFAULT now(),
    processed_at        timestamptz,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT knowledge_queries_transition_fkey FOREIGN KEY (prev_status, status)
        REFERENCES knowledge_query_transitions (from_status, to_status)
);

-- ListQueries: newest first, keyset (created_at, id) < ($ts, $id), in two
-- branches (see knowledge.c). With 20,000 queries in each of 4 tenants the
-- generic plan (bench/knowledge-explain.sh) is a Merge Append of "Index
-- Scan Backward using knowledge_queries_created_idx" (no status given) and
-- "Index Scan Backward using knowledge_queries_status_idx" (a status
-- given), each with the tenant, the status and the row comparison as index
-- conditions, no sort; a one-time filter skips the branch that does not
-- apply. A tag filters the scanned rows (a GIN index on tags was never
-- chosen by the generic plan, so there is none to maintain).
CREATE INDEX knowledge_queries_created_idx ON knowledge_queries (tenant_id, created_at, id);
CREATE INDEX knowledge_queries_status_idx
    ON knowledge_queries (tenant_id, status, created_at, id);

CREATE TABLE search_results (
    tenant_id         text NOT NULL
                      DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
                      REFERENCES tenants (id),
    id                uuid NOT NULL DEFAULT gen_random_uuid(),
    query_id          uuid NOT NULL,
    title             text NOT NULL
                      CONSTRAINT "results.title" CHECK (char_length(title) BETWEEN 1 AND 1000),
    content           text NOT NULL
                      CONSTRAINT "results.content" CHECK (char_length(content) BETWEEN 1 AND 200000),
    url               text NOT NULL DEFAULT ''
                      CONSTRAINT "results.url" CHECK (char_length(url) <= 2048),
    source_type       text NOT NULL
                      CONSTRAINT "results.source_type" CHECK (source_type IN
                          ('WEB', 'ACADEMIC', 'NEWS', 'DOCUMENTATION', 'SOCIAL', 'INTERNAL')),
    relevance_score   double precision NOT NULL
                      CONSTRAINT "results.relevance_score" CHECK (relevance_score BETWEEN 0 AND 1),
    credibility_score double precision NOT NULL
                      CONSTRAINT "results.credibility_score"
                      CHECK (credibility_score BETWEEN 0 AND 1),
    quality           text NOT NULL
                      CONSTRAINT "results.quality" CHECK (quality IN
                          ('HIGH', 'MEDIUM', 'LOW', 'UNRELIABLE')),
    provider          text NOT NULL DEFAULT ''
                      CONSTRAINT "results.provider" CHECK (char_length(provider) <= 255),
    -- encode(sha256(convert_to(content, 'UTF8')), 'hex'), written by
    -- knowledge_store_results() (convert_to is only STABLE, so this cannot
    -- be a generated column).
    content_hash      text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
    published_at      timestamptz,
    retrieved_at      timestamptz NOT NULL DEFAULT now(),
    -- SearchResultsText: title weighs more than content.
    search_vector     tsvector NOT NULL GENERATED ALWAYS AS (
                          setweight(to_tsvector('english'::regconfig, title), 'A') ||
                          setweight(to_tsvector('english'::regconfig, content), 'B')) STORED,
    PRIMARY KEY (tenant_id, id),
    -- One copy of a content per tenant: StoreResults counts the others as
    -- duplicates and answers the stored id.
    UNIQUE (tenant_id, content_hash),
    CONSTRAINT "query_id" FOREIGN KEY (tenant_id, query_id)
        REFERENCES knowledge_queries (tenant_id, id) ON DELETE CASCADE
);

-- ListResults: a query's results by relevance, keyset (relevance_score,
-- id) < ($r, $id): "Index Only Scan Backward using search_results_query_idx"
-- with tenant, query, min_relevance and the row comparison as index
-- conditions, no sort (generic plan). Also the index of the cascading
-- delete from knowledge_queries.
CREATE INDEX search_results_query_idx
    ON search_results (tenant_id, query_id, relevance_score, id);
-- SearchResultsText. Under row-level security PostgreSQL evaluates a
-- query's own conditions after the policy unless their functions are
-- LEAKPROOF, and tsvector @@ tsquery (ts_match_vq) is not: so the plan is
-- "Bitmap Index Scan on search_results_pkey" (the tenant's rows), the match
-- as a filter, a top-N sort by ts_rank: it reads every result of the
-- tenant (14 ms for 10,000 with a warm cache). A superuser who
-- accepts ts_match_vq as leakproof (ALTER FUNCTION ts_match_vq(tsvector,
-- tsquery) LEAKPROOF) turns it into a BitmapAnd of this GIN index and the
-- tenant's key: 3.6 ms for a rare word. Migrations run as the owner and
-- cannot do that.
CREATE INDEX search_results_search_idx ON search_results USING gin (search_vector);

CREATE TABLE knowledge_responses (
    tenant_id           text NOT NULL
                        DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
                        REFERENCES tenants (id),
    id                  uuid NOT NULL DEFAULT gen_random_uuid(),
    query_id            uuid NOT NULL,
    summary             text NOT NULL
                        CONSTRAINT "response.summary" CHECK (char_length(summary) BETWEEN 1 AND 100000),
    confidence          double precision NOT NULL
                        CONSTRAINT "response.confidence" CHECK (confidence BETWEEN 0 AND 1),
    providers_queried   text[] NOT NULL DEFAULT '{}'
                        CONSTRAINT "response.providers_queried"
                        CHECK (cardinality(providers_queried) <= 64
                            AND array_position(providers_queried, NULL) IS NULL),
    -- Computed by StoreResponse from the source results, never given.
    total_results       integer NOT NULL CHECK (total_results >= 0),
    average_relevance   double precision NOT NULL,
    average_credibility double precision NOT NULL,
    cache_used          boolean NOT NULL DEFAULT false,
    processing_time_ms  bigint NOT NULL DEFAULT 0
                        CONSTRAINT "response.processing_time_ms" CHECK (processing_time_ms >= 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT "response.query_id" FOREIGN KEY (tenant_id, query_id)
        REFERENCES knowledge_queries (tenant_id, id) ON DELETE CASCADE
);

-- GetResponse: the latest response of a query: "Index Scan Backward using
-- knowledge_responses_query_idx", Limit 1, no sort.
CREATE INDEX knowledge_responses_query_idx
    ON knowledge_responses (tenant_id, query_id, created_at, id);

-- The results a response names, in the caller's order. The foreign key to
-- search_results is what makes an unknown source id FAILED_PRECONDITION.
CREATE TABLE knowledge_response_sources (
    tenant_id   text NOT NULL
                DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
                REFERENCES tenants (id),
    response_id uuid NOT NULL,
    result_id   uuid NOT NULL,
    ord         integer NOT NULL,
    PRIMARY KEY (tenant_id, response_id, result_id),
    FOREIGN KEY (tenant_id, response_id)
        REFERENCES knowledge_responses (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT "response.source_result_ids" FOREIGN KEY (tenant_id, result_id)
        REFERENCES search_results (tenant_id, id) ON DELETE CASCADE
);
-- The cascade from search_results (through a deleted query) looks rows up
-- by result; GetResponse reads a response's sources through the key.
CREATE INDEX knowledge_response_sources_result_idx
    ON knowledge_response_sources (tenant_id, result_id);

CREATE TABLE search_provider_health (
    tenant_id            text NOT NULL
                         DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
                         REFERENCES tenants (id),
    name                 text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 255),
    available            boolean NOT NULL DEFAULT true,
    response_time_ms     double precision NOT NULL DEFAULT 0
                         CONSTRAINT "health.response_time_ms" CHECK (response_time_ms >= 0),
    error_rate           double precision NOT NULL DEFAULT 0
                         CONSTRAINT "health.error_rate" CHECK (error_rate BETWEEN 0 AND 1),
    -- Fixed windows on the clock: the counts belong to the minute and the
    -- hour that start at these instants, and read as 0 once they passed.
    requests_this_minute bigint NOT NULL DEFAULT 0
                         CONSTRAINT "health.requests_this_minute" CHECK (requests_this_minute >= 0),
    minute_start         timestamptz NOT NULL DEFAULT date_trunc('minute', now()),
    requests_this_hour   bigint NOT NULL DEFAULT 0
                         CONSTRAINT "health.requests_this_hour" CHECK (requests_this_hour >= 0),
    hour_start           timestamptz NOT NULL DEFAULT date_trunc('hour', now()),
    total_requests       bigint NOT NULL DEFAULT 0 CHECK (total_requests >= 0),
    total_failures       bigint NOT NULL DEFAULT 0 CHECK (total_failures >= 0),
    consecutive_failures integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    last_checked_at      timestamptz NOT NULL DEFAULT now(),
    last_error           text NOT NULL DEFAULT ''
                         CONSTRAINT "health.last_error" CHECK (char_length(last_error) <= 10000),
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE knowledge_cache (
    tenant_id    text NOT NULL
                 DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
                 REFERENCES tenants (id),
    key          text NOT NULL
                 CONSTRAINT "entry.key" CHECK (char_length(key) BETWEEN 1 AND 255),
    cache_type   text NOT NULL DEFAULT 'QUERY_RESULT'
                 CONSTRAINT "entry.cache_type" CHECK (cache_type IN
                     ('QUERY_RESULT', 'SEARCH_RESULT', 'RESPONSE')),
    content      jsonb NOT NULL
                 CONSTRAINT "entry.content_json" CHECK (jsonb_typeof(content) = 'object'),
    expires_at   timestamptz NOT NULL,
    access_count bigint NOT NULL DEFAULT 0,
    -- Bytes of the JSON text the entry answers with.
    size_bytes   bigint NOT NULL GENERATED ALWAYS AS (octet_length(content::text)) STORED,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);

-- CleanExpiredCache: "Bitmap Index Scan on knowledge_cache_expires_idx"
-- on (tenant, expires_at <= now()); GetCacheStats reads the tenant's
-- entries through it too. GetCached and PutCached use the primary key.
CREATE INDEX knowledge_cache_expires_idx ON knowledge_cache (tenant_id, expires_at);

-- The cache's hit and miss counters. A tenant's counts are the sum of its
-- rows; each GetCached bumps the row of shard pg_backend_pid() % 16, so
-- lookups on different connections do not queue on one row lock until
-- their commits.
CREATE TABLE knowledge_cache_counters (
    tenant_id text NOT NULL
              DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
              REFERENCES tenants (id),
    shard     integer NOT NULL CHECK (shard BETWEEN 0 AND 15),
    hits      bigint NOT NULL DEFAULT 0 CHECK (hits >= 0),
    misses    bigint NOT NULL DEFAULT 0 CHECK (misses >= 0),
    PRIMARY KEY (tenant_id, shard)
);

-- StoreResults in one call: hash, insert what is new, answer every input's
-- id. A function because it needs two snapshots: ON CONFLICT DO NOTHING
-- skips a content that a concurrent call committed after this statement's
-- snapshot was taken, and only the next statement (a new snapshot under
-- READ COMMITTED) can read that row's id. Rows are inserted in hash order,
-- so two calls storing overlapping batches wait for each other in one
-- order and cannot deadlock. SECURITY INVOKER (the default): the caller's
-- row-level security applies.
CREATE FUNCTION knowledge_store_results(
    p_query_id uuid, p_title text[], p_content text[], p_url text[], p_source_type text[],
    p_relevance double precision[], p_credibility double precision[], p_quality text[],
    p_provider text[], p_published_at timestamptz[], p_retrieved_at timestamptz[],
    OUT inserted integer, OUT duplicates integer, OUT result_ids uuid[])
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    hashes text[] := ARRAY(SELECT encode(sha256(convert_to(c, 'UTF8')), 'hex')
                           FROM unnest(p_content) WITH ORDINALITY AS u(c, o) ORDER BY o);
BEGIN
    INSERT INTO search_results (query_id, title, content, url, source_type, relevance_score,
                                credibility_score, quality, provider, content_hash,
                                published_at, retrieved_at)
    SELECT DISTINCT ON (r.h) p_query_id, r.t, r.c, COALESCE(r.u, ''), r.st, r.rs, r.cs, r.q,
           COALESCE(r.p, ''), r.h, r.pa, COALESCE(r.ra, now())
    FROM unnest(p_title, p_content, p_url, p_source_type, p_relevance, p_credibility,
                p_quality, p_provider, p_published_at, p_retrieved_at, hashes)
         WITH ORDINALITY AS r(t, c, u, st, rs, cs, q, p, pa, ra, h, o)
    ORDER BY r.h, r.o
    ON CONFLICT (tenant_id, content_hash) DO NOTHING;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    duplicates := COALESCE(cardinality(hashes), 0) - inserted;
    result_ids := ARRAY(SELECT s.id FROM unnest(hashes) WITH ORDINALITY AS u(h, o)
                        JOIN search_results s ON s.content_hash = u.h ORDER BY u.o);
END
$$;

-- Forced row-level security: one policy per tenant table, the same
-- expression for reading (USING) and writing (WITH CHECK); see 0002.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['knowledge_queries', 'search_results', 'knowledge_responses',
                             'knowledge_response_sources', 'search_provider_health',
                             'knowledge_cache', 'knowledge_cache_counters'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id = (SELECT NULLIF(current_setting('app.current_tenant', true), '')))
            WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.current_tenant', true), '')))$p$,
            t);
    END LOOP;
END
$$;

-- The server's rights: what the handlers do, nothing more. Results,
-- responses and their sources are append-only; nothing deletes but
-- CleanExpiredCache.
CALL arbiter_grant_app('SELECT, INSERT, UPDATE', 'TABLE knowledge_queries');
CALL arbiter_grant_app('SELECT, INSERT', 'TABLE search_results');
CALL arbiter_grant_app('SELECT, INSERT', 'TABLE knowledge_responses');
CALL arbiter_grant_app('SELECT, INSERT', 'TABLE knowledge_response_sources');
CALL arbiter_grant_app('SELECT, INSERT, UPDATE', 'TABLE search_provider_health');
CALL arbiter_grant_app('SELECT, INSERT, UPDATE, DELETE', 'TABLE knowledge_cache');
CALL arbiter_grant_app('SELECT, INSERT, UPDATE', 'TABLE knowledge_cache_counters');
REVOKE ALL ON FUNCTION knowledge_store_results(uuid, text[], text[], text[], text[],
    double precision[], double precision[], text[], text[], timestamptz[], timestamptz[])
    FROM PUBLIC;
CALL arbiter_grant_app('EXECUTE', 'FUNCTION knowledge_store_results(uuid, text[], text[], text[], text[], double precision[], double precision[], text[], text[], timestamptz[], timestamptz[])');
