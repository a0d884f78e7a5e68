-- 0005_web_navigator: the web navigator (upstream migration 004_create_web_tables,
-- UPSTREAM.md §2.3 and §3), tenant-scoped with forced row-level security.
--
-- Every table carries tenant_id, defaulted from the transaction-local
-- setting app.current_tenant, and every key, unique constraint and foreign
-- key includes it (composite keys, as Citus's multi-tenant model wants).
--
-- Upstream defects fixed here: every table is per tenant; links and images
-- are stored (jsonb) and come back; the rate-limit counter is one atomic
-- upsert (src/services/web_navigator.c) instead of a read then a write;
-- cache hits and misses are real counters (web_cache_counters) instead of a
-- view with no accounting; crawl nodes carry a lease so that crawlers can
-- claim the frontier (FOR UPDATE SKIP LOCKED over web_crawl_nodes_claim_idx).
--
-- URLs are keys (of the cache, and unique within a traversal), so they are
-- capped at 2,048 bytes: a btree entry holds at most about 2,700.
--
-- CHECK and foreign-key constraints are named after the request field they
-- guard ("content.url", "content_id"), so that a violation answers
-- INVALID_ARGUMENT or FAILED_PRECONDITION naming that field.

-- ---- content and its cache ------------------------------------------------

-- One row per tenant and content hash (hex SHA-256 of content, computed by
-- the server): the same page text stored from two URLs is stored once.
CREATE TABLE web_content (
    tenant_id    text NOT NULL
                 DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
                 REFERENCES tenants (id),
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    content_hash text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
    url          text NOT NULL
                 CONSTRAINT "content.url" CHECK (octet_length(url) BETWEEN 1 AND 2048),
    title        text NOT NULL DEFAULT '',
    content      text NOT NULL,
    links        jsonb NOT NULL DEFAULT '[]'
                 CONSTRAINT "content.links" CHECK (jsonb_typeof(links) = 'array'),
    images       jsonb NOT NULL DEFAULT '[]'
                 CONSTRAINT "content.images" CHECK (jsonb_typeof(images) = 'array'),
    metadata     jsonb NOT NULL DEFAULT '{}'
                 CONSTRAINT "content.metadata_json" CHECK (jsonb_typeof(metadata) = 'object'),
    status_code  integer NOT NULL DEFAULT 0
                 CONSTRAINT "content.status_code" CHECK (status_code BETWEEN 0 AND 999),
    content_type text NOT NULL DEFAULT '',
    extracted_at timestamptz NOT NULL DEFAULT now(),
    -- What GetContentCacheStats adds up as cache_size_bytes.
    size_bytes   bigint GENERATED ALWAYS AS (octet_length(content)) STORED,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, content_hash)
);

-- A URL's cache entry: which content it points at, until when. Only an
-- entry with expires_at > now() is fresh (a hit).
CREATE TABLE web_cache (
    tenant_id   text NOT NULL
                DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
                REFERENCES tenants (id),
    url         text NOT NULL CONSTRAINT "url" CHECK (octet_length(url) BETWEEN 1 AND 2048),
    content_id  uuid NOT NULL,
    cached_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    hit_count   bigint NOT NULL DEFAULT 0 CHECK (hit_count >= 0),
    last_hit_at timestamptz,
    PRIMARY KEY (tenant_id, url),
    CONSTRAINT "content_id" FOREIGN KEY (tenant_id, content_id)
        REFERENCES web_content (tenant_id, id) ON DELETE CASCADE
);

-- CleanupExpiredContent: the expired entries, and whether content is still
-- pointed at (also the index the cascading delete of content needs).
CREATE INDEX web_cache_expires_idx ON web_cache (tenant_id, expires_at);
CREATE INDEX web_cache_content_idx ON web_cache (tenant_id, content_id, expires_at);

-- GetContentByUrl's hit and miss counters. One row per tenant would make
-- every lookup of a tenant queue on the same row lock; the counters are
-- split into 16 shards by backend (pg_backend_pid() % 16), so concurrent
-- lookups, which run on different pool connections, rarely meet. The
-- statistics add the shards up.
CREATE TABLE web_cache_counters (
    tenant_id text NOT NULL
              DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
              REFERENCES tenants (id),
    shard     smallint NOT NULL CHECK (shard BETWEEN 0 AND 15),
    hits      bigint NOT NULL DEFAULT 0 CHECK (hits >= 0),
    misses    bigint NOT NULL DEFAULT 0 CHECK (misses >= 0),
    PRIMARY KEY (tenant_id, shard)
);

-- Append-only: one row per extraction.
CREATE TABLE web_extraction_metrics (
    tenant_id          text NOT NULL
                       DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
                       REFERENCES tenants (id),
    id                 uuid NOT NULL DEFAULT gen_random_uuid(),
    content_id         uuid,
    total_ms           double precision NOT NULL
                       CONSTRAINT "total_ms" CHECK (total_ms >= 0 AND total_ms < 'Infinity'),
    fetch_ms           double precision NOT NULL
                       CONSTRAINT "fetch_ms" CHECK (fetch_ms >= 0 AND fetch_ms < 'Infinity'),
    parse_ms           double precision NOT NULL
                       CONSTRAINT "parse_ms" CHECK (parse_ms >= 0 AND parse_ms < 'Infinity'),
    sanitize_ms        double precision NOT NULL
                       CONSTRAINT "sanitize_ms" CHECK (sanitize_ms >= 0 AND sanitize_ms < 'Infinity'),
    status_code        integer NOT NULL DEFAULT 0
                       CONSTRAINT "status_code" CHECK (status_code BETWEEN 0 AND 999),
    content_type       text NOT NULL DEFAULT '',
    ssl_verified       boolean NOT NULL DEFAULT false,
    malicious_detected boolean NOT NULL DEFAULT false,
    sanitized          boolean NOT NULL DEFAULT false,
    recorded_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    -- Metrics outlive the content they describe (cleanup removes content).
    CONSTRAINT "content_id" FOREIGN KEY (tenant_id, content_id)
        REFERENCES web_content (tenant_id, id) ON DELETE SET NULL (content_id)
);

-- GetExtractionStats (since ...), and the SET NULL of a content delete.
CREATE INDEX web_extraction_metrics_recorded_idx
    ON web_extraction_metrics (tenant_id, recorded_at);
CREATE INDEX web_extraction_metrics_content_idx
    ON web_extraction_metrics (tenant_id, content_id) WHERE content_id IS NOT NULL;

-- ---- rate limits -------------------------------------------------------------

-- One row per tenant and domain (lower case), created by the first
-- AcquireRateLimit. A fixed window starts at the first request after the
-- previous window ended.
CREATE TABLE web_rate_limits (
    tenant_id          text NOT NULL
                       DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
                       REFERENCES tenants (id),
    domain             text NOT NULL
                       CONSTRAINT "domain" CHECK (char_length(domain) BETWEEN 1 AND 253),
    max_requests       integer NOT NULL
                       CONSTRAINT "max_requests" CHECK (max_requests >= 1),
    window_ms          bigint NOT NULL CONSTRAINT "window_ms" CHECK (window_ms >= 1),
    requests_in_window integer NOT NULL DEFAULT 0 CHECK (requests_in_window >= 0),
    window_started_at  timestamptz NOT NULL,
    backoff_until      timestamptz,
    backoff_reason     text NOT NULL DEFAULT '',
    -- The last allowed request, and the last attempt (allowed or not).
    last_request_at    timestamptz,
    last_attempt_at    timestamptz NOT NULL,
    -- The outcome of the latest AcquireRateLimit: its RETURNING reads it
    -- from the row it just locked and wrote, so the decision and the
    -- counter can never disagree.
    last_allowed       boolean NOT NULL,
    PRIMARY KEY (tenant_id, domain)
);

-- ---- traversals --------------------------------------------------------------

CREATE TABLE web_traversals (
    tenant_id     text NOT NULL
                  DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
                  REFERENCES tenants (id),
    id            uuid NOT NULL DEFAULT gen_random_uuid(),
    session_id    text NOT NULL DEFAULT ''
                  CONSTRAINT "session_id" CHECK (char_length(session_id) <= 255),
    start_url     text NOT NULL
                  CONSTRAINT "start_url" CHECK (octet_length(start_url) BETWEEN 1 AND 2048),
    max_depth     integer NOT NULL CONSTRAINT "max_depth" CHECK (max_depth BETWEEN 0 AND 100),
    max_pages     integer NOT NULL
                  CONSTRAINT "max_pages" CHECK (max_pages BETWEEN 1 AND 1000000),
    strategy      text NOT NULL
                  CHECK (strategy IN ('BREADTH_FIRST', 'DEPTH_FIRST', 'BEST_FIRST')),
    status        text NOT NULL DEFAULT 'RUNNING'
                  CHECK (status IN ('RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    error_message text NOT NULL DEFAULT '',
    -- Nodes so far, the root included: AddNodes locks this row, counts
    -- here, and the database itself refuses to go past max_pages.
    node_count    integer NOT NULL DEFAULT 0 CHECK (node_count BETWEEN 0 AND max_pages),
    created_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    PRIMARY KEY (tenant_id, id)
);

-- The claim order of a node under its traversal's strategy, as one number
-- (ties go to insertion order, the seq column): breadth first by depth,
-- depth first by depth descending, best first by priority descending.
-- Computed once at insertion (a traversal's strategy never changes), so
-- that one index serves every strategy's ClaimNodes.
CREATE FUNCTION web_node_rank(strategy text, depth integer, priority double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE strategy WHEN 'DEPTH_FIRST' THEN -depth::float8
                         WHEN 'BEST_FIRST' THEN -priority
                         ELSE depth::float8 END
$$;

CREATE TABLE web_crawl_nodes (
    tenant_id     text NOT NULL
                  DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
                  REFERENCES tenants (id),
    id            uuid NOT NULL DEFAULT gen_random_uuid(),
    traversal_id  uuid NOT NULL,
    -- Insertion order (a sequence needs no session state).
    seq           bigint GENERATED ALWAYS AS IDENTITY,
    url           text NOT NULL
                  CONSTRAINT "nodes.url" CHECK (octet_length(url) BETWEEN 1 AND 2048),
    depth         integer NOT NULL CONSTRAINT "nodes.depth" CHECK (depth >= 0),
    parent_id     uuid,
    link_text     text NOT NULL DEFAULT '',
    priority      double precision NOT NULL DEFAULT 0
                  CONSTRAINT "nodes.priority" CHECK (priority > '-Infinity' AND priority < 'Infinity'),
    rank          double precision NOT NULL,
    status        text NOT NULL DEFAULT 'PENDING'
                  CHECK (status IN ('PENDING', 'CLAIMED', 'DONE', 'FAILED', 'SKIPPED')),
    content_id    uuid,
    error_message text NOT NULL DEFAULT '',
    claimed_until timestamptz,
    claims        integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- A claimed node always has a lease; CLAIMED is set by ClaimNodes
    -- alone (UpdateNode clears the lease, so asking it for CLAIMED fails
    -- here, naming its field).
    CONSTRAINT "status" CHECK ((status = 'CLAIMED') = (claimed_until IS NOT NULL)),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, traversal_id, url),
    UNIQUE (tenant_id, traversal_id, id),
    FOREIGN KEY (tenant_id, traversal_id)
        REFERENCES web_traversals (tenant_id, id) ON DELETE CASCADE,
    -- A parent is a node of the same traversal.
    CONSTRAINT "nodes.parent_id" FOREIGN KEY (tenant_id, traversal_id, parent_id)
        REFERENCES web_crawl_nodes (tenant_id, traversal_id, id),
    CONSTRAINT "content_id" FOREIGN KEY (tenant_id, content_id)
        REFERENCES web_content (tenant_id, id) ON DELETE SET NULL (content_id)
);

-- ClaimNodes: the pending nodes of one traversal in claim order. With FOR
-- UPDATE SKIP LOCKED and a LIMIT, the scan stops after the first claimable
-- rows instead of sorting the whole frontier. Claimed nodes leave this
-- index, so a claim never walks past the leases already handed out (with
-- them in it, every claim scanned all earlier claims: 230 claims/s on a
-- 40,000-node frontier instead of thousands).
CREATE INDEX web_crawl_nodes_claim_idx ON web_crawl_nodes (tenant_id, traversal_id, rank, seq)
    WHERE status = 'PENDING';
-- ClaimNodes: the claimed nodes whose lease has expired, by lease end.
CREATE INDEX web_crawl_nodes_lease_idx ON web_crawl_nodes (tenant_id, traversal_id, claimed_until)
    WHERE status = 'CLAIMED';
-- The SET NULL of a content delete.
CREATE INDEX web_crawl_nodes_content_idx ON web_crawl_nodes (tenant_id, content_id)
    WHERE content_id IS NOT NULL;
-- The parent foreign key's referencing side (no deletes of single nodes
-- happen, but a traversal's cascading delete checks it).
CREATE INDEX web_crawl_nodes_parent_idx ON web_crawl_nodes (tenant_id, traversal_id, parent_id)
    WHERE parent_id IS NOT NULL;

-- Forced row-level security: one policy per table, the same expression for
-- reading (USING) and writing (WITH CHECK); see 0002_agent_registry.sql.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['web_content', 'web_cache', 'web_cache_counters',
                             'web_extraction_metrics', 'web_rate_limits', 'web_traversals',
                             'web_crawl_nodes'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id = (SELECT NULLIF(current_setting('app.current_tenant', true), '')))
            WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.current_tenant', true), '')))$p$,
            t);
    END LOOP;
END
$$;

-- The server's rights: exactly what the handlers do. Nothing deletes rate
-- limits, counters, metrics, traversals or nodes; metrics are append-only.
-- (The SET NULL and CASCADE actions of foreign keys run as the tables'
-- owner and need no grant.)
CALL arbiter_grant_app('SELECT, INSERT, UPDATE, DELETE', 'TABLE web_content');
CALL arbiter_grant_app('SELECT, INSERT, UPDATE, DELETE', 'TABLE web_cache');
CALL arbiter_grant_app('SELECT, INSERT, UPDATE', 'TABLE web_cache_counters');
CALL arbiter_grant_app('SELECT, INSERT', 'TABLE web_extraction_metrics');
CALL arbiter_grant_app('SELECT, INSERT, UPDATE', 'TABLE web_rate_limits');
CALL arbiter_grant_app('SELECT, INSERT, UPDATE', 'TABLE web_traversals');
CALL arbiter_grant_app('SELECT, INSERT, UPDATE', 'TABLE web_crawl_nodes');
REVOKE ALL ON FUNCTION web_node_rank(text, integer, double precision) FROM PUBLIC;
CALL arbiter_grant_app('EXECUTE', 'FUNCTION web_node_rank(text, integer, double precision)');
