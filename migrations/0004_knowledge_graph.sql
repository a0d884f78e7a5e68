-- 0004_knowledge_graph: entities with embeddings, relationships, traversal,
-- shortest paths, exact vector search and hybrid vector + text + graph
-- search (issue 10; upstream migrations 006-008 and 016-017, UPSTREAM.md §3).
--
-- Upstream defects fixed here: one id type (uuid) everywhere; no
-- materialized view (searches read the tables, so they are always
-- current); the hybrid search's graph step really walks several hops;
-- query_text is used (a generated tsvector, ranked with ts_rank_cd);
-- FORCE RLS with WITH CHECK on every table; relationships can never cross
-- tenants (their foreign keys include tenant_id).
--
-- Vector similarity: pgvector is not packaged for Debian 12. Embeddings are
-- real[] (1 to 2,000 values), stored unit-normalised, so cosine similarity
-- is a dot product. The functions arbiter_dot, arbiter_cosine_distance,
-- arbiter_norm, arbiter_normalize, arbiter_vector_unpack and
-- arbiter_vector_impl come from the
-- project's C extension arbiter_vector (ext/arbiter_vector) when it is
-- installed, and otherwise from the plain-SQL definitions below: same
-- names, signatures, answers and SQLSTATEs, only slower. The setting
-- arbiter.vector chooses: 'auto' (default: the extension when available),
-- 'extension' (fail without it) or 'sql' (never the extension), e.g.
-- PGOPTIONS='-c arbiter.vector=sql' arbiterd migrate ...

DO $do$
DECLARE
    choice text := coalesce(nullif(current_setting('arbiter.vector', true), ''), 'auto');
    available boolean := EXISTS (SELECT 1 FROM pg_available_extensions
                                 WHERE name = 'arbiter_vector');
BEGIN
    IF choice NOT IN ('auto', 'extension', 'sql') THEN
        RAISE EXCEPTION 'arbiter.vector must be auto, extension or sql, not "%"', choice;
    END IF;
    IF choice = 'extension' AND NOT available THEN
        RAISE EXCEPTION 'arbiter.vector = extension, but arbiter_vector is not installed'
            USING HINT = 'run ext/arbiter_vector/install.sh as root';
    END IF;
    IF choice <> 'sql' AND available THEN
        CREATE EXTENSION IF NOT EXISTS arbiter_vector;
        RETURN;
    END IF;

    -- The plain-SQL fallback. arbiter_vector_fail raises |code|; it takes
    -- the caller's argument so that it is never folded into a constant
    -- (and raised) while a query is planned.
    EXECUTE $f$
        CREATE FUNCTION arbiter_vector_fail(code text, msg text, v anyelement) RETURNS integer
        LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
        AS $b$ BEGIN RAISE EXCEPTION USING ERRCODE = code, MESSAGE = msg; END $b$ $f$;
    -- The length of a vector: a non-empty 1-D array without NULLs.
    EXECUTE $f$
        CREATE FUNCTION arbiter_vector_dims(v real[]) RETURNS integer
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        AS $b$ SELECT CASE
            WHEN array_ndims(v) IS DISTINCT FROM 1 OR cardinality(v) = 0 THEN
                arbiter_vector_fail('2202E', 'a vector must be a non-empty one-dimensional array', v)
            WHEN array_position(v, NULL) IS NOT NULL THEN
                arbiter_vector_fail('22004', 'a vector must not contain NULL', v)
            ELSE cardinality(v) END $b$ $f$;
    EXECUTE $f$
        CREATE FUNCTION arbiter_vector_same(a real[], b real[]) RETURNS integer
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        AS $b$ SELECT CASE WHEN arbiter_vector_dims(a) = arbiter_vector_dims(b) THEN cardinality(a)
            ELSE arbiter_vector_fail('22000', format('vectors of different dimensions: %s and %s',
                                                      cardinality(a), cardinality(b)), a) END $b$ $f$;
    EXECUTE $f$
        CREATE FUNCTION arbiter_dot(real[], real[]) RETURNS float8
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        AS $b$ SELECT sum(x::float8 * y::float8) FROM unnest($1, $2) AS t(x, y)
               WHERE arbiter_vector_same($1, $2) > 0 $b$ $f$;
    EXECUTE $f$
        CREATE FUNCTION arbiter_norm(real[]) RETURNS float8
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        AS $b$ SELECT sqrt(sum(x::float8 * x::float8)) FROM unnest($1) AS t(x)
               WHERE arbiter_vector_dims($1) > 0 $b$ $f$;
    EXECUTE $f$
        CREATE FUNCTION arbiter_cosine_distance(real[], real[]) RETURNS float8
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        AS $b$ SELECT CASE WHEN arbiter_norm($1) * arbiter_norm($2) = 0 THEN 'NaN'::float8
                      ELSE 1 - arbiter_dot($1, $2) / (arbiter_norm($1) * arbiter_norm($2)) END $b$ $f$;
    EXECUTE $f$
        CREATE FUNCTION arbiter_normalize(real[]) RETURNS real[]
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        AS $b$ SELECT CASE
            WHEN EXISTS (SELECT 1 FROM unnest($1) AS t(x)
                         WHERE x IN ('NaN'::real, 'Infinity'::real, '-Infinity'::real)) THEN
                arbiter_vector_fail('22000', 'a vector must hold finite values only', $1)::text::real[]
            WHEN n.norm = 0 THEN
                arbiter_vector_fail('22000', 'a zero vector has no direction', $1)::text::real[]
            ELSE (SELECT array_agg((x::float8 / n.norm)::real ORDER BY i)
                  FROM unnest($1) WITH ORDINALITY AS t(x, i)) END
            FROM (SELECT arbiter_norm($1) AS norm) AS n $b$ $f$;
    -- Little-endian IEEE 754 binary32 values, rebuilt from their bits
    -- (sign, exponent, mantissa; subnormals, infinities and NaN too).
    EXECUTE $f$
        CREATE FUNCTION arbiter_vector_unpack(bytea) RETURNS real[]
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        AS $b$ SELECT CASE
            WHEN length($1) = 0 OR length($1) % 4 <> 0 THEN
                arbiter_vector_fail('22000',
                    'a packed vector must be a non-empty run of 4-byte floats', $1)::text::real[]
            ELSE (SELECT array_agg(CASE
                     WHEN e = 255 AND m = 0 THEN (CASE WHEN s = 1 THEN '-Infinity' ELSE 'Infinity' END)::real
                     WHEN e = 255 THEN 'NaN'::real
                     WHEN e = 0 THEN ((1 - 2 * s) * m * 2::float8 ^ -149)::real
                     ELSE ((1 - 2 * s) * (m + 8388608) * 2::float8 ^ (e - 150))::real END ORDER BY i)
                  FROM (SELECT i, (w >> 31) & 1 AS s, (w >> 23) & 255 AS e, w & 8388607 AS m
                        FROM (SELECT i, get_byte($1, 4 * i)::bigint
                                        | (get_byte($1, 4 * i + 1)::bigint << 8)
                                        | (get_byte($1, 4 * i + 2)::bigint << 16)
                                        | (get_byte($1, 4 * i + 3)::bigint << 24) AS w
                              FROM generate_series(0, length($1) / 4 - 1) AS i) AS words) AS parts)
            END $b$ $f$;
    EXECUTE $f$
        CREATE FUNCTION arbiter_vector_impl() RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $b$ SELECT 'plain SQL (arbiter_vector not installed)'::text $b$ $f$;
    CALL arbiter_grant_app('EXECUTE', 'FUNCTION arbiter_vector_fail(text, text, anyelement)');
    CALL arbiter_grant_app('EXECUTE', 'FUNCTION arbiter_vector_dims(real[])');
    CALL arbiter_grant_app('EXECUTE', 'FUNCTION arbiter_vector_same(real[], real[])');
    CALL arbiter_grant_app('EXECUTE', 'FUNCTION arbiter_dot(real[], real[])');
    CALL arbiter_grant_app('EXECUTE', 'FUNCTION arbiter_norm(real[])');
    CALL arbiter_grant_app('EXECUTE', 'FUNCTION arbiter_cosine_distance(real[], real[])');
    CALL arbiter_grant_app('EXECUTE', 'FUNCTION arbiter_normalize(real[])');
    CALL arbiter_grant_app('EXECUTE', 'FUNCTION arbiter_vector_unpack(bytea)');
    CALL arbiter_grant_app('EXECUTE', 'FUNCTION arbiter_vector_impl()');
END
$do$;

-- ---- entities -----------------------------------------------------------

CREATE TABLE kg_entities (
    tenant_id   text NOT NULL
                DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
                REFERENCES tenants (id),
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    entity_type text NOT NULL CONSTRAINT "entity.entity_type" CHECK (entity_type IN
                ('AGENT', 'CAPABILITY', 'DOCUMENT', 'CONCEPT', 'WORKSPACE_FILE',
                 'EXTERNAL_KNOWLEDGE', 'OTHER')),
    name        text NOT NULL CONSTRAINT "entity.name" CHECK (char_length(name) BETWEEN 1 AND 500),
    content     text NOT NULL DEFAULT ''
                CONSTRAINT "entity.content" CHECK (char_length(content) <= 100000),
    -- Unit-normalised (the upsert functions normalise), NULL when the
    -- entity has none. pgvector can read it: embedding::vector(768).
    embedding   real[] CONSTRAINT "entity.embedding" CHECK (embedding IS NULL OR
                (array_ndims(embedding) = 1 AND cardinality(embedding) BETWEEN 1 AND 2000)),
    dims        integer GENERATED ALWAYS AS (cardinality(embedding)) STORED,
    confidence  double precision NOT NULL DEFAULT 1
                CONSTRAINT "entity.confidence" CHECK (confidence BETWEEN 0 AND 1),
    attributes  jsonb NOT NULL DEFAULT '{}'
                CONSTRAINT "entity.attributes_json" CHECK (jsonb_typeof(attributes) = 'object'),
    ref_id      text NOT NULL DEFAULT ''
                CONSTRAINT "entity.ref_id" CHECK (char_length(ref_id) <= 255),
    search      tsvector GENERATED ALWAYS AS
                (to_tsvector('english'::regconfig, name || ' ' || content)) STORED,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, entity_type, name)
);

-- Embeddings stay inline: a search reads every vector of the tenant, and
-- an out-of-line (TOAST) value would cost an index lookup and a copy per
-- row. MAIN rather than PLAIN: the same layout for 768 dimensions (about
-- 3 KB, two rows per page), but a 2,000-dimension vector (8 KB) can still
-- be stored, out of line, where PLAIN would fail with "row is too big".
ALTER TABLE kg_entities ALTER COLUMN embedding SET STORAGE MAIN;
-- The text step reads the tsvector of every entity of the tenant (see
-- kg_hybrid_search): inline too, so that a long content is what moves out.
ALTER TABLE kg_entities ALTER COLUMN search SET STORAGE MAIN;

-- Vector search reads the tenant's vectors of one dimension; the index
-- keeps the scan to the caller's rows (10 % of the table with 10 tenants).
CREATE INDEX kg_entities_dims_idx ON kg_entities (tenant_id, dims);
-- No GIN index on search: under forced row-level security PostgreSQL
-- evaluates a query's conditions after the policy's unless they are
-- leakproof, and @@ (ts_match_vq) is not, so no index can serve it (EXPLAIN
-- showed a GIN index used for tenant_id alone, then @@ on every row). The
-- text step therefore reads the tenant's rows, like the vector step.

-- ---- relationships ------------------------------------------------------

CREATE TABLE kg_relationships (
    tenant_id         text NOT NULL
                      DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
                      REFERENCES tenants (id),
    id                uuid NOT NULL DEFAULT gen_random_uuid(),
    source_id         uuid NOT NULL,
    target_id         uuid NOT NULL,
    relationship_type text NOT NULL CONSTRAINT "relationship.relationship_type"
                      CHECK (relationship_type ~ '^[a-z0-9_]{1,64}$'),
    confidence        double precision NOT NULL DEFAULT 1
                      CONSTRAINT "relationship.confidence" CHECK (confidence BETWEEN 0 AND 1),
    strength          double precision NOT NULL DEFAULT 1
                      CONSTRAINT "relationship.strength" CHECK (strength BETWEEN 0 AND 1),
    bidirectional     boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    -- Also the index of outgoing edges for the walks: with confidence and
    -- strength included, a lookup is an index-only scan.
    UNIQUE (tenant_id, source_id, target_id, relationship_type) INCLUDE (confidence, strength),
    CONSTRAINT "relationship.target_id" CHECK (source_id <> target_id),
    -- Both ends in the caller's tenant: a relationship can never cross.
    FOREIGN KEY (tenant_id, source_id) REFERENCES kg_entities (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, target_id) REFERENCES kg_entities (tenant_id, id) ON DELETE CASCADE
);

-- Incoming edges, for the cascading delete of a target; and the walks'
-- own index of bidirectional edges backwards (index-only, without the
-- one-way edges that the lookup would otherwise read and drop).
CREATE INDEX kg_relationships_target_idx ON kg_relationships (tenant_id, target_id);
CREATE INDEX kg_relationships_backwards_idx ON kg_relationships (tenant_id, target_id)
    INCLUDE (source_id, relationship_type, confidence, strength) WHERE bidirectional;

-- ---- the search log -------------------------------------------------------

-- Every search, append-only: GetSearchStats reads it (the last 7 days).
CREATE TABLE kg_search_log (
    tenant_id     text NOT NULL
                  DEFAULT NULLIF(current_setting('app.current_tenant', true), '')
                  REFERENCES tenants (id),
    id            uuid NOT NULL DEFAULT gen_random_uuid(),
    search_type   text NOT NULL CHECK (search_type IN ('VECTOR', 'HYBRID', 'TRAVERSE', 'FIND_PATH')),
    query_hash    text, -- sha256 of the query text (hybrid), never the text
    result_count  integer NOT NULL,
    nodes_visited bigint NOT NULL,
    duration_ms   double precision NOT NULL,
    seeds_ms      double precision, -- the vector and text lists (VECTOR, HYBRID)
    graph_ms      double precision, -- the walks (TRAVERSE, FIND_PATH, HYBRID)
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX kg_search_log_type_idx ON kg_search_log (tenant_id, search_type, created_at);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['kg_entities', 'kg_relationships', 'kg_search_log'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id = (SELECT NULLIF(current_setting('app.current_tenant', true), '')))
            WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.current_tenant', true), '')))$p$,
            t);
    END LOOP;
END
$$;

-- Edges as traversal follows them: every relationship from its source to
-- its target, and bidirectional ones also backwards. security_invoker: the
-- policies of kg_relationships apply through the view.
CREATE VIEW kg_edges WITH (security_invoker = true) AS
SELECT source_id AS from_id, target_id AS to_id, relationship_type, confidence, strength
FROM kg_relationships
UNION ALL
SELECT target_id, source_id, relationship_type, confidence, strength
FROM kg_relationships WHERE bidirectional;

-- ---- writes -------------------------------------------------------------

-- One element of an UpsertEntities batch, parsed once.
CREATE TYPE kg_entity_input AS (
    ord bigint, id uuid, entity_type text, name text, content text, embedding real[],
    confidence double precision, attributes jsonb, ref_id text
);

-- Upserts a batch of entities given as the JSON of repeated Entity
-- (arbiterd binds it; enums by short name) and answers (ord, id) for
-- every element, in order. Embeddings come from the JSON, or, when
-- |vectors| is given, from there: every element's values packed one after
-- the other (arbiter_vector_unpack's form), |dims| values for each element
-- (UpsertEntities binds them so, because parsing 768,000 floats as text
-- costs a second per batch). An element with an id is upserted by id (its
-- type and name may change); one without, by (entity_type, name). Within
-- a batch the last element for the same key wins. An empty embedding
-- stores none; confidence 0 (unset in proto3) stores 1.
CREATE FUNCTION kg_upsert_entities(items json, vectors bytea DEFAULT NULL,
                                   dims integer[] DEFAULT NULL)
RETURNS TABLE (ord bigint, id uuid)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    rows kg_entity_input[];
BEGIN
    IF vectors IS NOT NULL
       AND cardinality(dims) IS DISTINCT FROM json_array_length(items) THEN
        RAISE EXCEPTION 'one dimension per element' USING ERRCODE = '22023';
    END IF;
    SELECT array_agg(ROW(e.ord, NULLIF(r.id, '')::uuid, r.entity_type, r.name, r.content,
                         CASE WHEN vectors IS NULL AND cardinality(r.embedding) > 0 THEN
                                  arbiter_normalize(r.embedding)
                              WHEN vectors IS NOT NULL AND dims[e.ord] > 0 THEN
                                  arbiter_normalize(arbiter_vector_unpack(
                                      substring(vectors FROM 4 * v.start + 1 FOR 4 * dims[e.ord])))
                         END,
                         COALESCE(NULLIF(r.confidence, 0), 1),
                         COALESCE(NULLIF(r.attributes_json, ''), '{}')::jsonb, r.ref_id
                        )::kg_entity_input ORDER BY e.ord)
    INTO rows
    FROM json_array_elements(items) WITH ORDINALITY AS e(j, ord)
    CROSS JOIN LATERAL json_to_record(e.j) AS r(id text, entity_type text, name text,
                                                content text, embedding real[],
                                                confidence float8, attributes_json text,
                                                ref_id text)
    -- where the element's values start in |vectors|, in values
    LEFT JOIN (SELECT d.ord, COALESCE(sum(d.n) OVER (ORDER BY d.ord ROWS BETWEEN UNBOUNDED
                                                     PRECEDING AND 1 PRECEDING), 0)::integer AS start
               FROM unnest(dims) WITH ORDINALITY AS d(n, ord)) AS v ON v.ord = e.ord;

    RETURN QUERY
    WITH up AS (
        INSERT INTO kg_entities AS k (id, entity_type, name, content, embedding, confidence,
                                      attributes, ref_id)
        SELECT DISTINCT ON (i.id) i.id, i.entity_type, i.name, COALESCE(i.content, ''),
               i.embedding, i.confidence, i.attributes, COALESCE(i.ref_id, '')
        FROM unnest(rows) AS i WHERE i.id IS NOT NULL ORDER BY i.id, i.ord DESC
        ON CONFLICT (tenant_id, id) DO UPDATE SET
            entity_type = excluded.entity_type, name = excluded.name, content = excluded.content,
            embedding = excluded.embedding, confidence = excluded.confidence,
            attributes = excluded.attributes, ref_id = excluded.ref_id, updated_at = now()
        RETURNING k.id)
    -- (a data-modifying WITH runs to completion whether read or not)
    SELECT i.ord, i.id FROM unnest(rows) AS i WHERE i.id IS NOT NULL;

    RETURN QUERY
    WITH up AS (
        INSERT INTO kg_entities AS k (entity_type, name, content, embedding, confidence,
                                      attributes, ref_id)
        SELECT DISTINCT ON (i.entity_type, i.name) i.entity_type, i.name, COALESCE(i.content, ''),
               i.embedding, i.confidence, i.attributes, COALESCE(i.ref_id, '')
        FROM unnest(rows) AS i WHERE i.id IS NULL ORDER BY i.entity_type, i.name, i.ord DESC
        ON CONFLICT (tenant_id, entity_type, name) DO UPDATE SET
            content = excluded.content, embedding = excluded.embedding,
            confidence = excluded.confidence, attributes = excluded.attributes,
            ref_id = excluded.ref_id, updated_at = now()
        RETURNING k.id, k.entity_type, k.name)
    SELECT i.ord, up.id FROM unnest(rows) AS i
    JOIN up ON up.entity_type = i.entity_type AND up.name = i.name
    WHERE i.id IS NULL;
END
$$;

-- Upserts a batch of relationships given as the JSON of repeated
-- Relationship and answers (ord, id) for every element, in order. With an
-- id, by id (its ends and type may change); without, by (source_id,
-- target_id, relationship_type). Confidence and strength 0 (unset in
-- proto3) store 1. Unknown ends, and ends in another tenant, fail the
-- foreign keys (FAILED_PRECONDITION); a self-loop fails its CHECK.
CREATE FUNCTION kg_upsert_relationships(items json) RETURNS TABLE (ord bigint, id uuid)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH input AS (
        SELECT e.ord, NULLIF(r.id, '')::uuid AS id, r.source_id::uuid AS source_id,
               r.target_id::uuid AS target_id, r.relationship_type,
               COALESCE(NULLIF(r.confidence, 0), 1) AS confidence,
               COALESCE(NULLIF(r.strength, 0), 1) AS strength,
               COALESCE(r.bidirectional, false) AS bidirectional
        FROM json_array_elements(items) WITH ORDINALITY AS e(j, ord),
             json_to_record(e.j) AS r(id text, source_id text, target_id text,
                                      relationship_type text, confidence float8,
                                      strength float8, bidirectional boolean)),
    up AS (
        INSERT INTO kg_relationships AS k (id, source_id, target_id, relationship_type,
                                           confidence, strength, bidirectional)
        SELECT DISTINCT ON (i.id) i.id, i.source_id, i.target_id, i.relationship_type,
               i.confidence, i.strength, i.bidirectional
        FROM input AS i WHERE i.id IS NOT NULL ORDER BY i.id, i.ord DESC
        ON CONFLICT (tenant_id, id) DO UPDATE SET
            source_id = excluded.source_id, target_id = excluded.target_id,
            relationship_type = excluded.relationship_type, confidence = excluded.confidence,
            strength = excluded.strength, bidirectional = excluded.bidirectional,
            updated_at = now()
        RETURNING k.id)
    SELECT i.ord, i.id FROM input AS i WHERE i.id IS NOT NULL;

    RETURN QUERY
    WITH input AS (
        SELECT e.ord, r.source_id::uuid AS source_id, r.target_id::uuid AS target_id,
               r.relationship_type, COALESCE(NULLIF(r.confidence, 0), 1) AS confidence,
               COALESCE(NULLIF(r.strength, 0), 1) AS strength,
               COALESCE(r.bidirectional, false) AS bidirectional
        FROM json_array_elements(items) WITH ORDINALITY AS e(j, ord),
             json_to_record(e.j) AS r(id text, source_id text, target_id text,
                                      relationship_type text, confidence float8,
                                      strength float8, bidirectional boolean)
        WHERE COALESCE(r.id, '') = ''),
    up AS (
        INSERT INTO kg_relationships AS k (source_id, target_id, relationship_type, confidence,
                                           strength, bidirectional)
        SELECT DISTINCT ON (i.source_id, i.target_id, i.relationship_type) i.source_id,
               i.target_id, i.relationship_type, i.confidence, i.strength, i.bidirectional
        FROM input AS i ORDER BY i.source_id, i.target_id, i.relationship_type, i.ord DESC
        ON CONFLICT (tenant_id, source_id, target_id, relationship_type) DO UPDATE SET
            confidence = excluded.confidence, strength = excluded.strength,
            bidirectional = excluded.bidirectional, updated_at = now()
        RETURNING k.id, k.source_id, k.target_id, k.relationship_type)
    SELECT i.ord, up.id FROM input AS i
    JOIN up ON (up.source_id, up.target_id, up.relationship_type)
             = (i.source_id, i.target_id, i.relationship_type);
END
$$;

-- ---- traversal ----------------------------------------------------------

-- One step of a walk as kg_walk answers it (HybridSearch keeps them in an
-- array between its statements).
CREATE TYPE kg_walk_step AS (
    seed uuid, id uuid, hop integer, confidence float8, strength float8, path uuid[],
    relationship_path text[], visited bigint
);

-- Walks out of every seed, level by level, up to max_hops: along outgoing
-- edges and bidirectional edges both ways, of the given types (all when
-- empty), dropping walks whose cumulative confidence (the product of the
-- confidences) falls below min_confidence. Each level keeps, per (seed,
-- entity), only the most confident walk (ties: the smaller path, then the
-- type), so the work grows with the edges, not with the number of paths.
-- Answers each entity reached from each seed once, at the first level it
-- was reached, with that level's most confident walk. That walk is
-- cycle-free: were it not, cutting out the cycle would give a shorter walk
-- at least as confident, and the entity would have been reached earlier.
-- strength is the product of the strengths along the walk; visited counts
-- the (entity, level) states the walk produced, for the search log.
CREATE FUNCTION kg_walk(seeds uuid[], max_hops integer, min_confidence float8, types text[])
RETURNS TABLE (seed uuid, id uuid, hop integer, confidence float8, strength float8,
               path uuid[], relationship_path text[], visited bigint)
LANGUAGE sql STABLE
AS $$
WITH RECURSIVE walk (seed, id, hop, confidence, strength, path, rels, visited) AS (
    SELECT s, s, 0, 1::float8, 1::float8, ARRAY[s], '{}'::text[],
           cardinality(seeds)::bigint
    FROM unnest(seeds) AS s
    UNION ALL
    SELECT step.seed, step.id, step.hop, step.confidence, step.strength, step.path, step.rels,
           step.visited + count(*) OVER ()
    FROM (
        SELECT w.seed, e.to_id AS id, w.hop + 1 AS hop, w.confidence * e.confidence AS confidence,
               w.strength * e.strength AS strength, w.path || e.to_id AS path,
               w.rels || e.relationship_type AS rels, w.visited,
               row_number() OVER (PARTITION BY w.seed, e.to_id
                                  ORDER BY w.confidence * e.confidence DESC, w.path,
                                           e.relationship_type) AS rank
        FROM walk AS w
        -- OFFSET 0 keeps this a lookup per walk (an index scan of each
        -- branch of kg_edges): flattened into a join, the planner hashes
        -- every edge of the tenant for a handful of walks
        CROSS JOIN LATERAL (SELECT * FROM kg_edges AS x WHERE x.from_id = w.id OFFSET 0) AS e
        WHERE w.hop < max_hops
          AND w.confidence * e.confidence >= min_confidence
          AND (cardinality(types) = 0 OR e.relationship_type = ANY (types))
    ) AS step
    WHERE step.rank = 1
)
SELECT DISTINCT ON (w.seed, w.id) w.seed, w.id, w.hop, w.confidence, w.strength, w.path, w.rels,
       max(w.visited) OVER ()
FROM walk AS w
WHERE w.id <> w.seed
ORDER BY w.seed, w.id, w.hop
$$;

-- An entity as the JSON of message Entity (for replies built in SQL).
CREATE FUNCTION kg_entity_json(e kg_entities, with_embedding boolean) RETURNS json
LANGUAGE sql STABLE
AS $$
SELECT json_build_object('id', e.id, 'entity_type', e.entity_type, 'name', e.name,
                         'content', e.content,
                         'embedding', CASE WHEN with_embedding THEN e.embedding END,
                         'confidence', e.confidence, 'attributes_json', e.attributes::text,
                         'ref_id', e.ref_id, 'created_at', e.created_at,
                         'updated_at', e.updated_at)
$$;

-- Traverse: the nodes (JSON of repeated TraversalNode) reached from start,
-- nearest first, then most confident; no row at all when start is not an
-- entity of the caller's tenant (NOT_FOUND).
CREATE FUNCTION kg_traverse(start uuid, max_hops integer, min_confidence float8, types text[],
                            lim integer)
RETURNS SETOF json
LANGUAGE plpgsql
AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
    nodes json;
    n integer;
    visited bigint;
    ms double precision;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM kg_entities AS e WHERE e.id = start) THEN
        RETURN;
    END IF;
    SELECT COALESCE(json_agg(json_build_object(
               'entity', kg_entity_json(e, false), 'hop_distance', w.hop,
               'cumulative_confidence', w.confidence, 'path_ids', w.path,
               'relationship_path', w.relationship_path)
               ORDER BY w.hop, w.confidence DESC, w.id), '[]'),
           count(*), COALESCE(max(w.visited), 1)
    INTO nodes, n, visited
    FROM (SELECT * FROM kg_walk(ARRAY[start], max_hops, min_confidence, types) AS k
          ORDER BY k.hop, k.confidence DESC, k.id LIMIT lim) AS w
    JOIN kg_entities AS e ON e.id = w.id;
    ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
    PERFORM kg_log_without_flush();
    INSERT INTO kg_search_log (search_type, result_count, nodes_visited, duration_ms, graph_ms)
    VALUES ('TRAVERSE', n, visited, ms, ms);
    RETURN NEXT nodes;
END
$$;

-- FindPath: the shortest path from source to target (among equal lengths
-- the most confident), or found = false; no row at all when an end is not
-- an entity of the caller's tenant (NOT_FOUND). The walk stops at the
-- level that reaches the target (a recursive query is evaluated lazily).
CREATE FUNCTION kg_find_path(source uuid, target uuid, max_hops integer)
RETURNS TABLE (found boolean, path_ids uuid[], relationship_types text[],
               total_confidence float8, hops integer)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    t0 timestamptz := clock_timestamp();
    r record;
    ms double precision;
BEGIN
    IF (SELECT count(*) FROM kg_entities AS e WHERE e.id IN (source, target))
       < (CASE WHEN source = target THEN 1 ELSE 2 END) THEN
        RETURN;
    END IF;
    IF source = target THEN
        SELECT true AS found, ARRAY[source] AS path, '{}'::text[] AS rels, 1::float8 AS confidence,
               0 AS hop, 1::bigint AS visited INTO r;
    ELSE
        WITH RECURSIVE walk (id, hop, confidence, path, rels, visited) AS (
            SELECT source, 0, 1::float8, ARRAY[source], '{}'::text[], 1::bigint
            UNION ALL
            SELECT step.id, step.hop, step.confidence, step.path, step.rels,
                   step.visited + count(*) OVER ()
            FROM (
                SELECT e.to_id AS id, w.hop + 1 AS hop, w.confidence * e.confidence AS confidence,
                       w.path || e.to_id AS path, w.rels || e.relationship_type AS rels,
                       w.visited,
                       row_number() OVER (PARTITION BY e.to_id
                                          ORDER BY w.confidence * e.confidence DESC, w.path,
                                                   e.relationship_type) AS rank
                FROM walk AS w
                CROSS JOIN LATERAL (SELECT * FROM kg_edges AS x WHERE x.from_id = w.id
                                    OFFSET 0) AS e
                WHERE w.hop < max_hops
            ) AS step
            WHERE step.rank = 1
        )
        SELECT true AS found, w.path, w.rels, w.confidence, w.hop, w.visited INTO r
        FROM walk AS w WHERE w.id = target LIMIT 1;
    END IF;
    ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
    PERFORM kg_log_without_flush();
    INSERT INTO kg_search_log (search_type, result_count, nodes_visited, duration_ms, graph_ms)
    VALUES ('FIND_PATH', CASE WHEN r.found THEN 1 ELSE 0 END, COALESCE(r.visited, 0), ms, ms);
    IF r.found IS NULL THEN
        RETURN QUERY SELECT false, '{}'::uuid[], '{}'::text[], 0::float8, 0;
    ELSE
        RETURN QUERY SELECT true, r.path, r.rels, r.confidence, r.hop;
    END IF;
END
$$;

-- ---- searches -----------------------------------------------------------

-- Every search writes one kg_search_log row, which would make each search
-- wait for a WAL flush at its commit (about 4.5 ms on this machine's disk,
-- as much as the search). The log is telemetry: the search's transaction
-- commits without waiting (synchronous_commit, transaction-local like SET
-- LOCAL; a crash may lose the last lines, never a half row).
CREATE FUNCTION kg_log_without_flush() RETURNS void
LANGUAGE sql
AS $$ SELECT set_config('synchronous_commit', 'off', true) $$;

-- Raised by the searches when the query vector's dimension matches none
-- of the stored vectors (while there are some): INVALID_ARGUMENT naming
-- the request field "embedding".
CREATE FUNCTION kg_check_dims(n integer) RETURNS void
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM kg_entities AS e WHERE e.dims = n)
       AND EXISTS (SELECT 1 FROM kg_entities AS e WHERE e.dims IS NOT NULL) THEN
        RAISE EXCEPTION 'no stored vector has % dimensions', n
            USING ERRCODE = '22000', CONSTRAINT = 'embedding';
    END IF;
END
$$;

-- VectorSearch: the exact cosine top-k (stored vectors are unit vectors,
-- so cosine similarity is the dot product with the normalised query);
-- recall 1.0 by construction. Entities of other dimensions are not
-- compared.
CREATE FUNCTION kg_vector_search(q real[], k integer, types text[], min_similarity float8,
                                 with_embedding boolean)
RETURNS TABLE (id uuid, entity_type text, name text, content text, embedding real[],
               confidence float8, attributes_json text, ref_id text, created_at timestamptz,
               updated_at timestamptz, score float8)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    t0 timestamptz := clock_timestamp();
    n integer := cardinality(q);
    found_rows integer;
    visited bigint;
    ms double precision;
BEGIN
    RETURN QUERY
    WITH qv AS MATERIALIZED (SELECT arbiter_normalize(q) AS v),
    top AS (
        SELECT e.id, arbiter_dot(e.embedding, qv.v) AS score
        FROM kg_entities AS e, qv
        WHERE e.dims = n AND (cardinality(types) = 0 OR e.entity_type = ANY (types))
        ORDER BY 2 DESC, e.id
        LIMIT k)
    SELECT e.id, e.entity_type, e.name, e.content,
           CASE WHEN with_embedding THEN e.embedding END, e.confidence, e.attributes::text,
           e.ref_id, e.created_at, e.updated_at, top.score
    FROM top JOIN kg_entities AS e ON e.id = top.id
    WHERE top.score >= COALESCE(min_similarity, '-Infinity')
    ORDER BY top.score DESC, e.id;
    GET DIAGNOSTICS found_rows = ROW_COUNT;
    IF found_rows = 0 THEN
        PERFORM kg_check_dims(n);
    END IF;
    SELECT count(*) INTO visited FROM kg_entities AS e WHERE e.dims = n;
    ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
    PERFORM kg_log_without_flush();
    INSERT INTO kg_search_log (search_type, result_count, nodes_visited, duration_ms, seeds_ms)
    VALUES ('VECTOR', found_rows, visited, ms, ms);
END
$$;

-- HybridSearch (the formula is documented in knowledge_graph.proto):
-- 1. seeds: the vector top-k and the text top-k (ts_rank_cd over the
--    tsvector of name and content, websearch syntax), both from one pass
--    over the tenant's rows, fused by Reciprocal Rank Fusion, seed score =
--    sum of 1 / (60 + rank) over both lists;
-- 2. every seed walks up to hops (kg_walk, min_confidence pruning), and a
--    reached entity scores seed score * cumulative confidence * cumulative
--    strength / (hop + 1);
-- 3. each entity once, with its best score; the filters (types,
--    min_confidence on the entity) apply to seeds and answers, while walks
--    pass through any entity. The vector and text scores of the answers are
--    computed for the k answers only.
CREATE FUNCTION kg_hybrid_search(q real[], query_text text, k integer, hops integer,
                                 types text[], min_confidence float8, with_embedding boolean)
RETURNS TABLE (id uuid, entity_type text, name text, content text, embedding real[],
               confidence float8, attributes_json text, ref_id text, created_at timestamptz,
               updated_at timestamptz, score float8, vector_score float8, text_score float8,
               graph_score float8, source text, hop_distance integer, via_id uuid,
               path_ids uuid[])
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    t0 timestamptz := clock_timestamp();
    t1 timestamptz;
    n integer := cardinality(q);
    tsq tsquery;
    v_ids uuid[];
    t_ids uuid[];
    seed_ids uuid[];
    walked kg_walk_step[];
    found_rows integer;
    n_visited bigint;
    ms double precision;
BEGIN
    IF n = 0 AND btrim(COALESCE(query_text, '')) = '' THEN
        RAISE EXCEPTION 'give an embedding, a query_text or both'
            USING ERRCODE = '22023', CONSTRAINT = 'query_text';
    END IF;
    IF btrim(COALESCE(query_text, '')) <> '' THEN
        tsq := websearch_to_tsquery('english'::regconfig, query_text);
    END IF;
    -- One pass over the tenant's rows for both lists. The normalised query
    -- comes from a materialized CTE, a flat value: a plpgsql array variable
    -- is an expanded object, which arbiter_dot would flatten once per row.
    WITH qv AS MATERIALIZED (SELECT CASE WHEN n > 0 THEN arbiter_normalize(q) END AS v),
    scan AS MATERIALIZED (
        SELECT e.id, CASE WHEN e.dims = n THEN arbiter_dot(e.embedding, qv.v) END AS vs,
               CASE WHEN e.search @@ tsq THEN ts_rank_cd(e.search, tsq) END AS ts
        FROM kg_entities AS e, qv
        WHERE (e.dims = n OR e.search @@ tsq)
          AND (cardinality(types) = 0 OR e.entity_type = ANY (types))
          AND e.confidence >= min_confidence)
    SELECT COALESCE((SELECT array_agg(v.id ORDER BY v.vs DESC, v.id) FROM
                     (SELECT * FROM scan WHERE vs IS NOT NULL ORDER BY vs DESC, id LIMIT k) AS v),
                    '{}'),
           COALESCE((SELECT array_agg(t.id ORDER BY t.ts DESC, t.id) FROM
                     (SELECT * FROM scan WHERE ts IS NOT NULL ORDER BY ts DESC, id LIMIT k) AS t),
                    '{}'),
           (SELECT count(*) FROM scan)
    INTO v_ids, t_ids, n_visited;
    IF n > 0 AND cardinality(v_ids) = 0 THEN
        PERFORM kg_check_dims(n);
    END IF;
    t1 := clock_timestamp();
    seed_ids := ARRAY(SELECT DISTINCT u FROM unnest(v_ids || t_ids) AS u);
    IF hops > 0 THEN
        SELECT array_agg(w::kg_walk_step), n_visited + COALESCE(max(w.visited), 0)
        INTO walked, n_visited
        FROM kg_walk(seed_ids, hops, min_confidence, '{}') AS w;
    END IF;

    RETURN QUERY
    WITH ranked AS (
        SELECT u.id, u.rank, 'VECTOR' AS list FROM unnest(v_ids) WITH ORDINALITY AS u(id, rank)
        UNION ALL
        SELECT u.id, u.rank, 'TEXT' FROM unnest(t_ids) WITH ORDINALITY AS u(id, rank)),
    seeds AS (
        SELECT r.id, sum(1.0::float8 / (60 + r.rank)) AS seed_score,
               min(r.rank) FILTER (WHERE r.list = 'VECTOR') AS vrank,
               min(r.rank) FILTER (WHERE r.list = 'TEXT') AS trank
        FROM ranked AS r GROUP BY r.id),
    walks AS (
        SELECT w.*, s.seed_score * w.confidence * w.strength / (w.hop + 1) AS graph_score
        FROM unnest(walked) AS w JOIN seeds AS s ON s.id = w.seed),
    best_walk AS (
        SELECT DISTINCT ON (w.id) w.id, w.graph_score, w.hop, w.seed, w.path
        FROM walks AS w ORDER BY w.id, w.graph_score DESC, w.hop, w.seed),
    hits AS (
        SELECT COALESCE(s.id, g.id) AS id,
               GREATEST(COALESCE(s.seed_score, 0), COALESCE(g.graph_score, 0)) AS score,
               COALESCE(g.graph_score, 0) AS graph_score,
               s.id IS NOT NULL AND s.seed_score >= COALESCE(g.graph_score, 0) AS as_seed,
               CASE WHEN s.trank IS NULL OR s.vrank <= s.trank THEN 'VECTOR' ELSE 'TEXT' END AS list,
               g.hop, g.seed, g.path
        FROM seeds AS s FULL JOIN best_walk AS g ON g.id = s.id),
    -- best first, then the entity's filters, until k pass: the ordered
    -- hits drive the lookups, so a few hundred reached entities cost k
    -- lookups and not one each
    best AS (
        SELECT h.*, f.tenant_id
        FROM (SELECT * FROM hits ORDER BY score DESC, CASE WHEN as_seed THEN 0 ELSE hop END, id
              OFFSET 0) AS h
        CROSS JOIN LATERAL (
            SELECT e.tenant_id FROM kg_entities AS e
            WHERE e.id = h.id AND (cardinality(types) = 0 OR e.entity_type = ANY (types))
              AND e.confidence >= min_confidence) AS f
        LIMIT k)
    SELECT e.id, e.entity_type, e.name, e.content,
           CASE WHEN with_embedding THEN e.embedding END, e.confidence, e.attributes::text,
           e.ref_id, e.created_at, e.updated_at, b.score,
           CASE WHEN e.dims = n THEN arbiter_dot(e.embedding, qv.v) ELSE 0 END,
           CASE WHEN tsq IS NOT NULL THEN ts_rank_cd(e.search, tsq)::float8 ELSE 0 END,
           b.graph_score,
           CASE WHEN b.as_seed THEN b.list ELSE 'GRAPH' END,
           CASE WHEN b.as_seed THEN 0 ELSE b.hop END,
           CASE WHEN b.as_seed THEN NULL ELSE b.seed END,
           CASE WHEN b.as_seed THEN ARRAY[e.id] ELSE b.path END
    FROM best AS b
    JOIN kg_entities AS e ON e.tenant_id = b.tenant_id AND e.id = b.id
    CROSS JOIN (SELECT CASE WHEN n > 0 THEN arbiter_normalize(q) END AS v) AS qv
    ORDER BY b.score DESC, CASE WHEN b.as_seed THEN 0 ELSE b.hop END, e.id;
    GET DIAGNOSTICS found_rows = ROW_COUNT;
    ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
    PERFORM kg_log_without_flush();
    INSERT INTO kg_search_log (search_type, query_hash, result_count, nodes_visited, duration_ms,
                               seeds_ms, graph_ms)
    VALUES ('HYBRID',
            CASE WHEN tsq IS NOT NULL THEN encode(sha256(convert_to(query_text, 'UTF8')), 'hex') END,
            found_rows, n_visited, ms, extract(epoch FROM t1 - t0) * 1000,
            extract(epoch FROM clock_timestamp() - t1) * 1000);
END
$$;

-- ---- the server's rights ------------------------------------------------

-- Rows only, and only what the handlers do: the search log is append-only.
CALL arbiter_grant_app('SELECT, INSERT, UPDATE, DELETE', 'TABLE kg_entities');
CALL arbiter_grant_app('SELECT, INSERT, UPDATE, DELETE', 'TABLE kg_relationships');
CALL arbiter_grant_app('SELECT, INSERT', 'TABLE kg_search_log');
CALL arbiter_grant_app('SELECT', 'TABLE kg_edges');

DO $$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'kg_upsert_entities(json, bytea, integer[])', 'kg_upsert_relationships(json)',
        'kg_walk(uuid[], integer, float8, text[])', 'kg_entity_json(kg_entities, boolean)',
        'kg_traverse(uuid, integer, float8, text[], integer)',
        'kg_find_path(uuid, uuid, integer)', 'kg_check_dims(integer)', 'kg_log_without_flush()',
        'kg_vector_search(real[], integer, text[], float8, boolean)',
        'kg_hybrid_search(real[], text, integer, integer, text[], float8, boolean)'] LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        CALL arbiter_grant_app('EXECUTE', 'FUNCTION ' || f);
    END LOOP;
END
$$;
