-- arbiter_vector 1.0 (see arbiter_vector.c). Loaded by CREATE EXTENSION.
\echo Use "CREATE EXTENSION arbiter_vector" to load this file. \quit

CREATE FUNCTION arbiter_dot(real[], real[]) RETURNS float8
AS 'MODULE_PATHNAME', 'arbiter_dot'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE COST 10;

CREATE FUNCTION arbiter_cosine_distance(real[], real[]) RETURNS float8
AS 'MODULE_PATHNAME', 'arbiter_cosine_distance'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE COST 10;

CREATE FUNCTION arbiter_norm(real[]) RETURNS float8
AS 'MODULE_PATHNAME', 'arbiter_norm'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE COST 10;

CREATE FUNCTION arbiter_normalize(real[]) RETURNS real[]
AS 'MODULE_PATHNAME', 'arbiter_normalize'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE COST 10;

CREATE FUNCTION arbiter_vector_unpack(bytea) RETURNS real[]
AS 'MODULE_PATHNAME', 'arbiter_vector_unpack'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE COST 10;

CREATE FUNCTION arbiter_vector_source() RETURNS text
AS 'MODULE_PATHNAME', 'arbiter_vector_source'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Which implementation serves the functions above; the plain-SQL fallback
-- of migrations/0004_knowledge_graph.sql defines the same function.
CREATE FUNCTION arbiter_vector_impl() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 'arbiter_vector 1.0 (C extension)'::text $$;
