/* arbiter.v1.KnowledgeGraph: entities with embeddings, relationships,
 * traversal, shortest paths, exact vector search and hybrid search (issue
 * 10), as a method table over migrations/0004_knowledge_graph.sql.
 *
 * Every method but one is a table entry: the writes, the walks and the
 * searches are SQL functions of the migration (one statement each, so one
 * round trip), and their rows map to the reply by column name.
 * UpsertEntities is hand-written only to bind the embeddings as bytes
 * instead of text (see upsert_packed). Tenant scoping is the
 * database's alone (forced row-level security), so no statement names a
 * tenant. The searches log themselves (kg_search_log) and so are not
 * read-only.
 *
 * What a table cannot say lives in the migration: Traverse and FindPath
 * answer no row for an unknown start or end (NOT_FOUND through SVC_ROW),
 * Traverse's nodes come as one JSON column (a repeated message), and the
 * searches raise INVALID_ARGUMENT naming the field ("embedding",
 * "query_text") for what only the data can tell.
 *
 * Besides the methods, the service asks the database, whenever it becomes
 * reachable, which implementation of the vector functions it has (the C
 * extension arbiter_vector or the plain-SQL fallback), logs it and keeps it
 * in svc_env.vector_impl for Admin.GetServerInfo and the metrics. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "knowledge_graph.pb-c.h"
#include "services/services.h"
#include "services/svc_json.h"
#include "services/svc_table.h"
#include "util/log.h"
#include "util/strbuf.h"

#define MAX_DIMS 2000
#define MAX_BATCH 1000
#define TEXT_MAX (64u << 20) /* one bound parameter's text; requests are smaller */

/* One Entity from kg_entities, without its embedding. */
#define ENTITY_COLS                                                                                \
    "id, entity_type, name, content, confidence, attributes::text AS attributes_json, ref_id, "    \
    "created_at, updated_at"
/* One Relationship from kg_relationships. */
#define RELATIONSHIP_COLS                                                                          \
    "id, source_id, target_id, relationship_type, confidence, strength, bidirectional, created_at"
/* The entity of a search hit, from a search function's row h. */
#define HIT_ENTITY_COLS                                                                            \
    "h.id AS \"entity.id\", h.entity_type AS \"entity.entity_type\", h.name AS \"entity.name\", "  \
    "h.content AS \"entity.content\", h.embedding AS \"entity.embedding\", "                       \
    "h.confidence AS \"entity.confidence\", h.attributes_json AS \"entity.attributes_json\", "     \
    "h.ref_id AS \"entity.ref_id\", h.created_at AS \"entity.created_at\", "                       \
    "h.updated_at AS \"entity.updated_at\""

/* Per element of Entity, under |p| ("entity." or "entities."). */
#define ENTITY_CHECKS(p)                                                                           \
    SVC_UUID_OPT(p "id"), SVC_ENUM(p "entity_type"), SVC_LEN(p "name", 1, 500),                    \
        SVC_LEN(p "content", 0, 100000), SVC_VECTOR_OPT(p "embedding", MAX_DIMS),                  \
        SVC_RANGE(p "confidence", 0, 1), SVC_JSON_OBJECT(p "attributes_json"),                     \
        SVC_LEN(p "ref_id", 0, 255)
#define RELATIONSHIP_CHECKS(p)                                                                     \
    SVC_UUID_OPT(p "id"), SVC_UUID(p "source_id"), SVC_UUID(p "target_id"),                        \
        SVC_LEN(p "relationship_type", 1, 64), SVC_RANGE(p "confidence", 0, 1),                    \
        SVC_RANGE(p "strength", 0, 1)

/* The written entity: by id, or by (entity_type, name) when upserted
 * without one. */
static const char entity_after_upsert[] =
    "SELECT " ENTITY_COLS ", embedding FROM kg_entities WHERE id = COALESCE(NULLIF($1, '')::uuid,"
    " (SELECT id FROM kg_entities WHERE entity_type = $2 AND name = $3))";

static const char relationship_after_upsert[] =
    "SELECT " RELATIONSHIP_COLS " FROM kg_relationships WHERE id = COALESCE(NULLIF($1, '')::uuid,"
    " (SELECT id FROM kg_relationships WHERE source_id = $2::uuid AND target_id = $3::uuid"
    " AND relationship_type = $4))";

/* A keyset page by id; the sentinel is the smallest uuid and the previous
 * page's last id is excluded, so that the index serves both pages. */
static const char list_entities[] =
    "SELECT " ENTITY_COLS " FROM kg_entities"
    " WHERE id >= COALESCE($2::uuid, '00000000-0000-0000-0000-000000000000')"
    " AND id IS DISTINCT FROM $2::uuid AND entity_type = COALESCE($3, entity_type)"
    " ORDER BY id LIMIT $1";

static const char vector_search[] =
    "SELECT " HIT_ENTITY_COLS ", h.score, h.score AS vector_score, 'VECTOR' AS source,"
    " ARRAY[h.id::text] AS path_ids"
    " FROM kg_vector_search($1::real[], COALESCE(NULLIF($2::int, 0), 10), $3::text[],"
    " $4::float8, $5::bool) AS h";

static const char hybrid_search[] =
    "SELECT " HIT_ENTITY_COLS ", h.score, h.vector_score, h.text_score, h.graph_score, h.source,"
    " h.hop_distance, h.via_id, h.path_ids::text[] AS path_ids"
    " FROM kg_hybrid_search($1::real[], $2, COALESCE(NULLIF($3::int, 0), 10),"
    " COALESCE($4::int, 2), $5::text[], COALESCE($6::float8, 0.5), $7::bool) AS h";

/* Every search type, also those not used lately (count 0). */
static const char search_stats[] =
    "SELECT t.search_type, count(l.id) AS count,"
    " COALESCE(percentile_cont(0.5) WITHIN GROUP (ORDER BY l.duration_ms), 0) AS p50_ms,"
    " COALESCE(percentile_cont(0.95) WITHIN GROUP (ORDER BY l.duration_ms), 0) AS p95_ms,"
    " COALESCE(percentile_cont(0.99) WITHIN GROUP (ORDER BY l.duration_ms), 0) AS p99_ms,"
    " count(l.id) FILTER (WHERE l.duration_ms > 200) AS slow_count,"
    " COALESCE(avg(l.result_count), 0) AS avg_results,"
    " COALESCE(avg(l.nodes_visited), 0) AS avg_nodes_visited"
    " FROM unnest('{VECTOR,HYBRID,TRAVERSE,FIND_PATH}'::text[])"
    " WITH ORDINALITY AS t(search_type, o)"
    " LEFT JOIN kg_search_log AS l"
    " ON l.search_type = t.search_type AND l.created_at > now() - interval '7 days'"
    " GROUP BY t.search_type, t.o ORDER BY t.o";

/* ---- UpsertEntities: the embeddings packed into one bytea ---------------- */

/* A table entry would bind the batch as JSON, and PostgreSQL would parse
 * every embedding value as text: about a second per 1,000 x 768 values on
 * this machine. Here the entities go as JSON without their embeddings,
 * and the embeddings as one bytea of little-endian float32s (one copy, no
 * parsing; arbiter_vector_unpack) with each entity's dimension. */
static const db_stmt upsert_packed = {
    .name = "kg_upsert_entities_packed",
    .sql = "SELECT COALESCE(array_agg(id::text ORDER BY ord), '{}')"
           " FROM kg_upsert_entities($1::json, $2::bytea, $3::int[])",
    .nparams = 3,
};

struct batch {
    rpc_call *call;
    const svc_entry *entry;
};

/* $1: the entities as JSON, embeddings left out (shallow copies). Returns
 * 0, -EINVAL for a value without a JSON form (a Timestamp out of range) or
 * -ENOMEM. */
static int bind_entities(rpc_call *call, db_txn *t, const Arbiter__V1__UpsertEntitiesRequest *req)
{
    Arbiter__V1__UpsertEntitiesRequest bare = *req;
    Arbiter__V1__Entity *items = svc_alloc_array(call, req->n_entities, sizeof(*items));
    Arbiter__V1__Entity **ptrs = svc_alloc_array(call, req->n_entities, sizeof(*ptrs));
    alloc *mem = rpc_call_arena(call)->mem;
    strbuf b;
    char *json;
    size_t len;
    bool ok, failed;

    if (req->n_entities > 0 && (!items || !ptrs))
        return -ENOMEM;
    for (size_t i = 0; i < req->n_entities; i++) {
        items[i] = *req->entities[i];
        items[i].n_embedding = 0;
        items[i].embedding = NULL;
        ptrs[i] = &items[i];
    }
    bare.entities = ptrs;
    strbuf_init(&b, TEXT_MAX, mem);
    ok = svc_json_write_field(&b, &bare.base,
                              protobuf_c_message_descriptor_get_field_by_name(
                                  &arbiter__v1__upsert_entities_request__descriptor, "entities"));
    failed = b.failed;
    json = strbuf_take(&b, &len);
    if (ok && json)
        db_param_textn(t, json, len);
    alloc_free(mem, json);
    return ok && json ? 0 : !failed && json ? -EINVAL : -ENOMEM;
}

/* $2: every embedding value, little-endian float32, one entity after the
 * other; $3: the number of values of each entity. */
static bool bind_embeddings(rpc_call *call, db_txn *t,
                            const Arbiter__V1__UpsertEntitiesRequest *req)
{
    size_t total = 0, at = 0;
    uint8_t *bytes;
    strbuf dims;
    char *text;

    for (size_t i = 0; i < req->n_entities; i++)
        total += req->entities[i]->n_embedding;
    bytes = rpc_call_alloc(call, total * 4 + 1);
    if (!bytes)
        return false;
    strbuf_init(&dims, TEXT_MAX, rpc_call_arena(call)->mem);
    strbuf_putc(&dims, '{');
    for (size_t i = 0; i < req->n_entities; i++) {
        const Arbiter__V1__Entity *e = req->entities[i];

        for (size_t k = 0; k < e->n_embedding; k++, at += 4) {
            uint32_t w;

            memcpy(&w, &e->embedding[k], sizeof(w));
            bytes[at] = (uint8_t)w;
            bytes[at + 1] = (uint8_t)(w >> 8);
            bytes[at + 2] = (uint8_t)(w >> 16);
            bytes[at + 3] = (uint8_t)(w >> 24);
        }
        strbuf_printf(&dims, "%s%zu", i > 0 ? "," : "", e->n_embedding);
    }
    strbuf_putc(&dims, '}');
    text = strbuf_take(&dims, NULL);
    db_param_bytes(t, bytes, total * 4);
    if (text)
        db_param_text(t, text);
    alloc_free(rpc_call_arena(call)->mem, text);
    return text != NULL;
}

static void on_upserted(db_txn *t, void *data)
{
    struct batch *b = data;
    Arbiter__V1__UpsertEntitiesResponse resp = ARBITER__V1__UPSERT_ENTITIES_RESPONSE__INIT;

    if (svc_entry_failed(b->call, b->entry, t))
        return;
    if (db_parse_text_array(db_text(t, 0, 0, 0), rpc_call_arena(b->call), &resp.ids, &resp.n_ids) <
        0) {
        rpc_call_finish(b->call, RPC_INTERNAL, "the database's answer does not fit the reply");
        return;
    }
    rpc_call_reply(b->call, &resp.base);
}

static void upsert_entities(rpc_call *call, const ProtobufCMessage *msg, void *data)
{
    const Arbiter__V1__UpsertEntitiesRequest *req = (const void *)msg;
    struct batch *b = rpc_call_alloc(call, sizeof(*b));
    db_txn *t;
    int rv;

    if (!b) {
        svc_oom(call);
        return;
    }
    b->call = call;
    b->entry = data;
    t = svc_txn_new(call, svc_entry_env(data));
    if (!t)
        return;
    db_txn_stmt(t, &upsert_packed);
    rv = bind_entities(call, t, req);
    if (rv == 0 && !bind_embeddings(call, t, req))
        rv = -ENOMEM;
    if (rv == -EINVAL)
        svc_invalid(call, "entities", "has no valid value");
    else if (rv < 0)
        svc_oom(call);
    else
        db_txn_run(t, on_upserted, b);
}

static const svc_method methods[] = {
    {
        .name = "UpsertEntity",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_REQUIRED("entity"), ENTITY_CHECKS("entity.")),
        .stmts = {{"SELECT count(*) FROM kg_upsert_entities(json_build_array($1::json))",
                   SVC_PARAMS("entity")},
                  {entity_after_upsert,
                   SVC_PARAMS("entity.id", "entity.entity_type", "entity.name")}},
        .errors = SVC_ERRORS(
            {RPC_ALREADY_EXISTS, "entity.name: another entity has this entity_type and name"}),
    },
    {
        .name = "UpsertEntities",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_ITEMS("entities", MAX_BATCH, 0, 0), ENTITY_CHECKS("entities.")),
        .handler = upsert_entities,
        .errors = SVC_ERRORS({RPC_ALREADY_EXISTS, "entities: two entities with different ids "
                                                  "would share an entity_type and name"}),
    },
    {
        .name = "GetEntity",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .checks = SVC_CHECKS(SVC_UUID("id")),
        .stmts = {{"SELECT " ENTITY_COLS ", CASE WHEN $2::bool THEN embedding END AS embedding"
                   " FROM kg_entities WHERE id = $1::uuid",
                   SVC_PARAMS("id", "include_embedding")}},
        .not_found = "entity not found",
    },
    {
        /* Its relationships go with it (ON DELETE CASCADE). */
        .name = "DeleteEntity",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_UUID("id")),
        .stmts = {{"DELETE FROM kg_entities WHERE id = $1::uuid", SVC_PARAMS("id")}},
        .reply = SVC_COUNT,
        .field = "removed",
    },
    {
        .name = "ListEntities",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .checks = SVC_CHECKS(SVC_ENUM_OPT("entity_type")),
        .stmts = {{list_entities, SVC_PARAMS("@limit", "@after.1", "entity_type")}},
        .reply = SVC_PAGE,
        .field = "entities",
        .keys = SVC_KEYS("id"),
    },
    {
        .name = "UpsertRelationship",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_REQUIRED("relationship"), RELATIONSHIP_CHECKS("relationship.")),
        .stmts = {{"SELECT count(*) FROM kg_upsert_relationships(json_build_array($1::json))",
                   SVC_PARAMS("relationship")},
                  {relationship_after_upsert,
                   SVC_PARAMS("relationship.id", "relationship.source_id", "relationship.target_id",
                              "relationship.relationship_type")}},
        .errors = SVC_ERRORS({RPC_ALREADY_EXISTS, "relationship: another relationship joins "
                                                  "these entities with this type"}),
    },
    {
        .name = "UpsertRelationships",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_ITEMS("relationships", MAX_BATCH, 0, 0),
                             RELATIONSHIP_CHECKS("relationships.")),
        .stmts = {{"SELECT COALESCE(array_agg(id::text ORDER BY ord), '{}') AS ids"
                   " FROM kg_upsert_relationships($1::json)",
                   SVC_PARAMS("relationships")}},
        .errors = SVC_ERRORS({RPC_INVALID_ARGUMENT,
                              "relationships: a relationship_type must be 1-64 characters "
                              "of [a-z0-9_], and no relationship may join an entity to itself"},
                             {RPC_ALREADY_EXISTS,
                              "relationships: two relationships with different ids would "
                              "join the same entities with the same type"}),
    },
    {
        .name = "DeleteRelationship",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_UUID("id")),
        .stmts = {{"DELETE FROM kg_relationships WHERE id = $1::uuid", SVC_PARAMS("id")}},
        .reply = SVC_COUNT,
        .field = "removed",
    },
    {
        .name = "Traverse",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(
            SVC_UUID("start_id"), SVC_RANGE("max_hops", 0, 6), SVC_RANGE("min_confidence", 0, 1),
            SVC_ITEMS("relationship_types", 64, 1, 64), SVC_RANGE("limit", 0, 10000)),
        .stmts = {{"SELECT n AS nodes FROM kg_traverse($1::uuid, COALESCE(NULLIF($2::int, 0), 2),"
                   " COALESCE($3::float8, 0.5), $4::text[], COALESCE(NULLIF($5::int, 0), 100))"
                   " AS n",
                   SVC_PARAMS("start_id", "max_hops", "min_confidence", "relationship_types",
                              "limit")}},
        .not_found = "start entity not found",
    },
    {
        .name = "FindPath",
        .flags = SVC_TENANT,
        .checks =
            SVC_CHECKS(SVC_UUID("source_id"), SVC_UUID("target_id"), SVC_RANGE("max_hops", 0, 10)),
        .stmts = {{"SELECT found, path_ids::text[] AS path_ids, relationship_types,"
                   " total_confidence, hops"
                   " FROM kg_find_path($1::uuid, $2::uuid, COALESCE(NULLIF($3::int, 0), 5))",
                   SVC_PARAMS("source_id", "target_id", "max_hops")}},
        .not_found = "source or target entity not found",
    },
    {
        .name = "VectorSearch",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_VECTOR("embedding", MAX_DIMS), SVC_RANGE("limit", 0, 100),
                             SVC_RANGE("min_similarity", -1, 1)),
        .stmts = {{vector_search, SVC_PARAMS("embedding", "limit", "entity_types", "min_similarity",
                                             "include_embeddings")}},
        .reply = SVC_ROWS,
        .field = "hits",
        .errors = SVC_ERRORS(
            {RPC_INVALID_ARGUMENT, "embedding: no stored vector has this many dimensions"}),
    },
    {
        .name = "HybridSearch",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_VECTOR_OPT("embedding", MAX_DIMS), SVC_LEN("query_text", 0, 1000),
                             SVC_RANGE("limit", 0, 100), SVC_RANGE("graph_hops", 0, 3),
                             SVC_RANGE("min_confidence", 0, 1)),
        .stmts = {{hybrid_search,
                   SVC_PARAMS("embedding", "query_text", "limit", "graph_hops", "entity_types",
                              "min_confidence", "include_embeddings")}},
        .reply = SVC_ROWS,
        .field = "hits",
    },
    {
        .name = "GetSearchStats",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .stmts = {{search_stats, NULL}},
        .reply = SVC_ROWS,
        .field = "stats",
    },
};

/* ---- which vector implementation the database has ----------------------- */

static const db_stmt impl_stmt = {
    .name = "kg_vector_impl",
    .sql = "SELECT arbiter_vector_impl()",
};

struct probe {
    uv_idle_t closer; /* never started: closing it defers the free (see on_probe) */
    arena a;
    svc_env *env; /* borrowed: outlives the probe (the pool completes it first) */
};

static void on_probe_closed(uv_handle_t *h)
{
    struct probe *p = container_of((uv_idle_t *)h, struct probe, closer);

    arena_deinit(&p->a);
    free(p);
}

static void on_probe(db_txn *t, void *data)
{
    struct probe *p = data;
    svc_env *env = p->env;
    const char *impl = db_rows(t, 0) > 0 ? db_text(t, 0, 0, 0) : NULL;
    char *copy = impl ? strdup(impl) : NULL;

    if (db_txn_status(t) != RPC_OK || !copy) {
        log_warn("knowledge graph: cannot tell which vector implementation the database has "
                 "(%s); is migration 0004 applied?",
                 db_txn_status(t) != RPC_OK ? db_txn_message(t) : "out of memory");
    } else if (!env->vector_impl || strcmp(env->vector_impl, copy) != 0) {
        log_info("knowledge graph: vector similarity by %s", copy);
        free((char *)env->vector_impl);
        env->vector_impl = copy;
        copy = NULL;
    }
    free(copy);
    /* The pool may still touch the txn (in p's arena) after this callback
     * returns: free it from a close callback, which runs later. */
    uv_idle_init(env->loop, &p->closer);
    uv_close((uv_handle_t *)&p->closer, on_probe_closed);
}

static void probe_impl(svc_env *env)
{
    struct probe *p = calloc(1, sizeof(*p));
    db_ctx ctx = {.deadline_ms = UINT64_MAX};
    db_txn *t;

    if (!p)
        return;
    arena_init(&p->a, 0, NULL);
    p->env = env;
    ctx.arena = &p->a;
    t = db_txn_new(env->pool, &ctx);
    if (!t) {
        arena_deinit(&p->a);
        free(p);
        return;
    }
    db_txn_stmt(t, &impl_stmt);
    db_txn_run(t, on_probe, p);
}

static void serving_changed(svc_env *env, bool serving)
{
    if (serving && env->pool)
        probe_impl(env);
}

static void stop(svc_env *env)
{
    free((char *)env->vector_impl);
    env->vector_impl = NULL;
}

static int start(svc_env *env)
{
    return svc_table_register(env, &arbiter__v1__knowledge_graph__descriptor, methods,
                              sizeof(methods) / sizeof(methods[0]));
}

/* arbiterd_vector_implementation_info, once the database said which. */
static void metrics(svc_env *env, strbuf *t)
{
    const char *impl = env->vector_impl;

    if (!impl)
        return;
    strbuf_puts(t, "# HELP arbiterd_vector_implementation_info The database's vector functions "
                   "(KnowledgeGraph).\n# TYPE arbiterd_vector_implementation_info gauge\n"
                   "arbiterd_vector_implementation_info{implementation=\"");
    for (; *impl; impl++)
        if (*impl != '"' && *impl != '\\' && *impl != '\n')
            strbuf_putc(t, *impl);
    strbuf_puts(t, "\"} 1\n");
}

const struct svc_service svc_knowledge_graph = {
    .name = "KnowledgeGraph",
    .start = start,
    .serving_changed = serving_changed,
    .stop = stop,
    .metrics = metrics,
};
