-- 0006_verification: verification requests, results with their evidence and
-- method results, and a result cache (upstream migration 004_verification,
-- UPSTREAM.md §2.4), tenant-scoped with forced row-level security.
--
-- Every table carries tenant_id, defaulted from the transaction-local
-- setting app.current_tenant, and every key and reference includes it, so a
-- row can never point at another tenant's row and the same uuid in two
-- tenants is two rows.
--
-- Upstream defects fixed here: the tenant is enforced (it was ignored); the
-- cache key is a SHA-256 of a length-prefixed encoding (it was base64 of JSON
-- cut to 128 characters, so long contents sharing a prefix collided); method
-- and evidence statistics are computed from the stored rows by the queries
-- of src/services/verification.c (there is no table of client-written
-- statistics); rates are fractions everywhere.
--
-- Value rules live here, named after the request field they guard
-- ("result.evidence.strength"): a violation answers INVALID_ARGUMENT naming
-- that field, and it fails the statement that writes the row, so a bad
-- evidence item anywhere in a batch rolls back the whole SaveResult.

CREATE TABLE verification_requests (
    tenant_id          text NOT NULL
                       DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
                       REFERENCES tenants (id),
    id                 uuid NOT NULL DEFAULT gen_random_uuid(),
    content            text NOT NULL CONSTRAINT "request.content" CHECK (content <> ''),
    source             text NOT NULL DEFAULT '',
    verification_types text[] NOT NULL DEFAULT '{}',
    priority           integer NOT NULL DEFAULT 5
                       CONSTRAINT "request.priority" CHECK (priority BETWEEN 1 AND 10),
    timeout_ms         integer NOT NULL DEFAULT 30000
                       CONSTRAINT "request.timeout_ms" CHECK (timeout_ms > 0),
    metadata           jsonb NOT NULL DEFAULT '{}'
                       CONSTRAINT "request.metadata_json" CHECK (jsonb_typeof(metadata) = 'object'),
    status             text NOT NULL DEFAULT 'PENDING'
                       CHECK (status IN ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED',
                                         'TIMED_OUT')),
    -- verification_cache_key(content, source, verification_types)
    cache_key          text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    started_at         timestamptz,
    completed_at       timestamptz,
    processing_time_ms bigint NOT NULL DEFAULT 0 CHECK (processing_time_ms >= 0),
    error_message      text NOT NULL DEFAULT '',
    error_code         text NOT NULL DEFAULT '',
    -- Results saved so far; SaveResult increments it, which also takes the
    -- row lock that orders the results of one request (see results.seq).
    result_count       integer NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE verification_results (
    tenant_id          text NOT NULL
                       DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
                       REFERENCES tenants (id),
    id                 uuid NOT NULL DEFAULT gen_random_uuid(),
    request_id         uuid NOT NULL,
    -- 1, 2, ... per request, in commit order: SaveResult takes it from the
    -- request row it has just locked, so concurrent saves for one request
    -- queue on that lock. The latest result is the highest seq.
    seq                integer NOT NULL,
    verdict            text NOT NULL
                       CHECK (verdict IN ('VERIFIED_TRUE', 'VERIFIED_FALSE', 'PARTIALLY_TRUE',
                                          'UNVERIFIED', 'CONTRADICTORY', 'INSUFFICIENT_DATA')),
    confidence         double precision NOT NULL
                       CONSTRAINT "result.confidence" CHECK (confidence BETWEEN 0 AND 1),
    reasoning          text[] NOT NULL DEFAULT '{}',
    processing_time_ms bigint NOT NULL DEFAULT 0
                       CONSTRAINT "result.processing_time_ms" CHECK (processing_time_ms >= 0),
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    -- GetResult: the latest result of a request is one backward index step.
    CONSTRAINT verification_results_request_seq_key UNIQUE (tenant_id, request_id, seq),
    CONSTRAINT verification_results_request_fkey FOREIGN KEY (tenant_id, request_id)
        REFERENCES verification_requests (tenant_id, id)
);

-- The statistics' "since": results stored at or after a time.
CREATE INDEX verification_results_created_idx ON verification_results (tenant_id, created_at);

CREATE TABLE verification_evidence (
    tenant_id    text NOT NULL
                 DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
                 REFERENCES tenants (id),
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    result_id    uuid NOT NULL,
    ord          integer NOT NULL, -- position in the SaveResult request, from 1
    source       text NOT NULL DEFAULT '',
    content      text NOT NULL DEFAULT '',
    strength     double precision NOT NULL
                 CONSTRAINT "result.evidence.strength" CHECK (strength BETWEEN 0 AND 1),
    credibility  double precision NOT NULL
                 CONSTRAINT "result.evidence.credibility" CHECK (credibility BETWEEN 0 AND 1),
    relevance    double precision NOT NULL
                 CONSTRAINT "result.evidence.relevance" CHECK (relevance BETWEEN 0 AND 1),
    supports     boolean NOT NULL,
    method       text NOT NULL DEFAULT '',
    -- hex SHA-256 of content's UTF-8 bytes, computed by SaveResult
    content_hash text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
    observed_at  timestamptz,
    PRIMARY KEY (tenant_id, id),
    -- A result's evidence in order (GetResult), and the foreign key's index.
    CONSTRAINT verification_evidence_result_ord_key UNIQUE (tenant_id, result_id, ord),
    FOREIGN KEY (tenant_id, result_id) REFERENCES verification_results (tenant_id, id)
);

CREATE TABLE verification_method_results (
    tenant_id          text NOT NULL
                       DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
                       REFERENCES tenants (id),
    result_id          uuid NOT NULL,
    ord                integer NOT NULL, -- position in the SaveResult request, from 1
    method             text NOT NULL,
    verdict            text -- NULL: none given (VERDICT_UNSPECIFIED)
                       CHECK (verdict IN ('VERIFIED_TRUE', 'VERIFIED_FALSE', 'PARTIALLY_TRUE',
                                          'UNVERIFIED', 'CONTRADICTORY', 'INSUFFICIENT_DATA')),
    confidence         double precision NOT NULL
                       CONSTRAINT "result.method_results.confidence"
                       CHECK (confidence BETWEEN 0 AND 1),
    processing_time_ms bigint NOT NULL DEFAULT 0
                       CONSTRAINT "result.method_results.processing_time_ms"
                       CHECK (processing_time_ms >= 0),
    evidence_count     integer NOT NULL DEFAULT 0
                       CONSTRAINT "result.method_results.evidence_count"
                       CHECK (evidence_count >= 0),
    error_message      text NOT NULL DEFAULT '', -- empty: the method succeeded
    PRIMARY KEY (tenant_id, result_id, ord),
    FOREIGN KEY (tenant_id, result_id) REFERENCES verification_results (tenant_id, id)
);

-- One entry per cache key: the latest result of a request with that key,
-- cached by CacheResult, read (and counted) by GetCachedResult.
CREATE TABLE verification_cache (
    tenant_id        text NOT NULL
                     DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
                     REFERENCES tenants (id),
    cache_key        text NOT NULL,
    request_id       uuid NOT NULL,
    result_id        uuid NOT NULL,
    cached_at        timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    access_count     bigint NOT NULL DEFAULT 0,
    last_accessed_at timestamptz,
    PRIMARY KEY (tenant_id, cache_key),
    FOREIGN KEY (tenant_id, request_id) REFERENCES verification_requests (tenant_id, id),
    FOREIGN KEY (tenant_id, result_id) REFERENCES verification_results (tenant_id, id)
);

-- CleanupExpiredResults.
CREATE INDEX verification_cache_expires_idx ON verification_cache (tenant_id, expires_at);

-- Cache hits and misses of GetCachedResult. Counting into one row per
-- tenant would queue every lookup of a tenant on that row's lock; the
-- counts are spread over 16 rows by backend (one pool connection, one row,
-- mostly) and summed when read.
CREATE TABLE verification_cache_counters (
    tenant_id text NOT NULL
              DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
              REFERENCES tenants (id),
    shard     smallint NOT NULL CHECK (shard BETWEEN 0 AND 15),
    hits      bigint NOT NULL DEFAULT 0,
    misses    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, shard)
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['verification_requests', 'verification_results',
                             'verification_evidence', 'verification_method_results',
                             'verification_cache', 'verification_cache_counters'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id = (SELECT NULLIF(current_setting('app.current_tenant', true), '')))
            WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.current_tenant', true), '')))$p$,
            t);
    END LOOP;
END
$$;

-- The cache key, the one place it is computed: lower-case hex SHA-256 of
--   lp(content) || lp(source) || lp(t1) || ... || lp(tn)
-- lp(x) = the decimal length in bytes of x's UTF-8 encoding, ':', the bytes
-- ("5:hello"); t1..tn = the types, deduplicated and sorted by their bytes
-- (COLLATE "C"). Length prefixes make the encoding unambiguous: no two
-- different (content, source, types) give the same bytes, whatever their
-- length or shared prefix.
CREATE FUNCTION verification_lp(x text) RETURNS bytea
LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$ SELECT convert_to(octet_length(x)::text || ':', 'UTF8') || convert_to(x, 'UTF8') $$;

CREATE FUNCTION verification_cache_key(content text, source text, types text[]) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT encode(sha256(verification_lp(coalesce(content, '')) ||
                         verification_lp(coalesce(source, '')) ||
                         coalesce((SELECT string_agg(verification_lp(t), ''::bytea
                                                     ORDER BY t COLLATE "C")
                                   FROM (SELECT DISTINCT t FROM unnest(types) AS u(t)) d),
                                  ''::bytea)), 'hex')
$$;

-- Raises |fail_code| naming |fail_name| as the violated constraint, so that the
-- server can answer with the message its method table gives for that name
-- (55000 object_not_in_prerequisite_state is FAILED_PRECONDITION). Returns
-- text only so that it fits into expressions: COALESCE(x, verification_fail(...)).
CREATE FUNCTION verification_fail(fail_code text, fail_name text) RETURNS text
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    RAISE EXCEPTION 'verification: %', fail_name USING ERRCODE = fail_code, CONSTRAINT = fail_name;
END
$$;

-- Requests move forward only: PENDING (0), PROCESSING (1), then COMPLETED,
-- FAILED or TIMED_OUT (2). Staying is allowed (SaveResult completes an
-- already completed request again); anything else raises 55000 naming
-- verification_requests_forward_only. started_at is set when a request
-- becomes PROCESSING, completed_at when it ends. One rule for SaveRequest,
-- UpdateRequestStatus and SaveResult.
CREATE FUNCTION verification_requests_move() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    rank CONSTANT jsonb := '{"PENDING": 0, "PROCESSING": 1, "COMPLETED": 2, "FAILED": 2,
                             "TIMED_OUT": 2}';
BEGIN
    IF (rank ->> NEW.status)::int <= (rank ->> OLD.status)::int THEN
        RAISE EXCEPTION 'verification request % cannot move from % to %',
            OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  CONSTRAINT = 'verification_requests_forward_only';
    END IF;
    IF NEW.status = 'PROCESSING' THEN
        NEW.started_at := now();
    ELSE
        NEW.completed_at := now();
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER verification_requests_move BEFORE UPDATE OF status ON verification_requests
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION verification_requests_move();

REVOKE ALL ON FUNCTION verification_lp(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION verification_cache_key(text, text, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION verification_fail(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION verification_requests_move() FROM PUBLIC;

-- The server's rights: what the handlers do, no more. Results, evidence and
-- method results are append-only; nothing deletes requests; only the cache
-- is cleaned up.
CALL arbiter_grant_app('SELECT, INSERT, UPDATE', 'TABLE verification_requests');
CALL arbiter_grant_app('SELECT, INSERT', 'TABLE verification_results');
CALL arbiter_grant_app('SELECT, INSERT', 'TABLE verification_evidence');
CALL arbiter_grant_app('SELECT, INSERT', 'TABLE verification_method_results');
CALL arbiter_grant_app('SELECT, INSERT, UPDATE, DELETE', 'TABLE verification_cache');
CALL arbiter_grant_app('SELECT, INSERT, UPDATE', 'TABLE verification_cache_counters');
CALL arbiter_grant_app('EXECUTE', 'FUNCTION verification_lp(text)');
CALL arbiter_grant_app('EXECUTE', 'FUNCTION verification_cache_key(text, text, text[])');
CALL arbiter_grant_app('EXECUTE', 'FUNCTION verification_fail(text, text)');
