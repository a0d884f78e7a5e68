/* arbiter.v1.AgentRegistry: the upstream AgentRegistryDatabaseClient
 * (UPSTREAM.md §2.1) as a gRPC service over migrations/0002_agent_registry.sql.
 *
 * Every method needs x-tenant-id (RPC_NEEDS_TENANT); tenant scoping is done
 * by the database alone: the pool sets app.current_tenant for the call's
 * transaction, the tables default tenant_id from it and forced row-level
 * security hides and protects every other tenant's rows. So no statement
 * here mentions a tenant, another tenant's agent is simply "not found", and
 * a write aimed at it changes nothing.
 *
 * Each handler validates, queues its statements (one transaction, one round
 * trip) and maps rows. Writes that answer an Agent add the shared
 * agent_by_id (or agent_by_name) SELECT after the write: it runs in the same
 * transaction, so it sees the write.
 */
#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#include "agent_registry.pb-c.h"
#include "db/db.h"
#include "rpc/method.h"
#include "server.h"
#include "services/services.h"
#include "services/svc_util.h"

#define NAME_MAX_CHARS 255
#define CAP_MAX_ITEMS 64
#define CAP_MAX_CHARS 255
#define LIST_DEFAULT 50
#define LIST_MAX 1000
#define LATENCY_MAX_MS 1e12

/* Upstream defaults for a new agent (UPSTREAM.md §2.1, migration 001). */
#define DEFAULT_SUCCESS_RATE 0.8
#define DEFAULT_QUALITY 0.7
#define DEFAULT_LATENCY_MS 5000.0
#define DEFAULT_CAPACITY 10

/* The columns of one Agent, in the order agent_from_row() reads them. */
#define AGENT_COLS                                                                                 \
    "id, name, model_family, task_types, languages, specializations, "                             \
    "success_rate, average_quality, average_latency_ms, task_count, "                              \
    "active_tasks, queued_tasks, utilization_percent, capacity, "                                  \
    "registered_at, last_active_at"

static const db_stmt agent_by_id = {
    .name = "agent_by_id",
    .sql = "SELECT " AGENT_COLS " FROM agent_view WHERE id = $1::uuid",
    .nparams = 1,
    .flags = DB_STMT_ONE_ROW,
    .not_found = "agent not found",
};

static const db_stmt agent_by_name = {
    .name = "agent_by_name",
    .sql = "SELECT " AGENT_COLS " FROM agent_view WHERE name = $1",
    .nparams = 1,
    .flags = DB_STMT_ONE_ROW,
    .not_found = "agent not found",
};

/* All four tables in one statement; capabilities keep the caller's order
 * and drop duplicates. tenant_id comes from the column defaults. */
static const db_stmt agent_register = {
    .name = "agent_register",
    .sql = "WITH a AS ("
           " INSERT INTO agents (id, name, model_family)"
           " VALUES (COALESCE($1::uuid, gen_random_uuid()), $2, $3) RETURNING id),"
           " caps AS ("
           " INSERT INTO agent_capabilities (agent_id, kind, value, ord)"
           " SELECT a.id, k.kind, k.value, min(k.ord) FROM a, ("
           "  SELECT 'task_type' AS kind, v AS value, o AS ord"
           "   FROM unnest($4::text[]) WITH ORDINALITY AS u(v, o)"
           "  UNION ALL SELECT 'language', v, o FROM unnest($5::text[]) WITH ORDINALITY AS u(v, o)"
           "  UNION ALL SELECT 'specialization', v, o"
           "   FROM unnest($6::text[]) WITH ORDINALITY AS u(v, o)) k"
           " GROUP BY a.id, k.kind, k.value),"
           " perf AS ("
           " INSERT INTO agent_performance"
           " (agent_id, success_rate, average_quality, average_latency_ms, task_count)"
           " SELECT a.id, $7::float8, $8::float8, $9::float8, $10::int8 FROM a),"
           " l AS ("
           " INSERT INTO agent_load (agent_id, active_tasks, queued_tasks, capacity)"
           " SELECT a.id, $11::int4, $12::int4, $13::int4 FROM a)"
           " SELECT id FROM a",
    .nparams = 13,
};

static const db_stmt agent_list_first = {
    .name = "agent_list_first",
    .sql = "SELECT " AGENT_COLS " FROM agent_view"
           " ORDER BY last_active_at DESC, id DESC LIMIT $1::int4",
    .nparams = 1,
};

/* Keyset continuation after (last_active_at, id) of the previous page's
 * last row; the position travels as microseconds since the epoch, exact. */
static const db_stmt agent_list_next = {
    .name = "agent_list_next",
    .sql = "SELECT " AGENT_COLS " FROM agent_view"
           " WHERE (last_active_at, id) <"
           " (timestamptz 'epoch' + $1::int8 * interval '1 microsecond', $2::uuid)"
           " ORDER BY last_active_at DESC, id DESC LIMIT $3::int4",
    .nparams = 3,
};

/* Filters and ordering run on the base tables; only the page's rows are
 * then read through agent_view, so the capability arrays are aggregated
 * for page_size agents rather than for every match. */
static const db_stmt agent_query = {
    .name = "agent_query",
    .sql = "SELECT " AGENT_COLS " FROM agent_view WHERE (tenant_id, id) IN ("
           " SELECT a.tenant_id, a.id FROM agents a"
           " JOIN agent_performance p ON p.tenant_id = a.tenant_id AND p.agent_id = a.id"
           " JOIN agent_load l ON l.tenant_id = a.tenant_id AND l.agent_id = a.id"
           " WHERE ($1 = '' OR EXISTS (SELECT 1 FROM agent_capabilities c"
           "  WHERE c.tenant_id = a.tenant_id AND c.agent_id = a.id"
           "  AND c.kind = 'task_type' AND c.value = $1))"
           " AND (cardinality($2::text[]) = 0 OR EXISTS (SELECT 1 FROM agent_capabilities c"
           "  WHERE c.tenant_id = a.tenant_id AND c.agent_id = a.id"
           "  AND c.kind = 'language' AND c.value = ANY ($2::text[])))"
           " AND (cardinality($3::text[]) = 0 OR EXISTS (SELECT 1 FROM agent_capabilities c"
           "  WHERE c.tenant_id = a.tenant_id AND c.agent_id = a.id"
           "  AND c.kind = 'specialization' AND c.value = ANY ($3::text[])))"
           " AND ($4::float8 IS NULL OR l.utilization_percent <= $4::float8)"
           " AND ($5::float8 IS NULL OR p.success_rate >= $5::float8)"
           " ORDER BY p.success_rate DESC, a.id LIMIT $6::int4)"
           " ORDER BY success_rate DESC, id",
    .nparams = 6,
};

/* Running averages exactly as upstream, (old * n + x) / (n + 1), in one
 * statement. The agents row is locked first (as a cascading delete does),
 * then the performance row; concurrent updates queue on the row locks and
 * PostgreSQL re-evaluates the SET expressions on the newest row version,
 * so none is lost. */
static const db_stmt agent_update_perf = {
    .name = "agent_update_perf",
    .sql = "WITH a AS ("
           " UPDATE agents SET last_active_at = now() WHERE id = $1::uuid"
           " RETURNING tenant_id, id),"
           " p AS ("
           " UPDATE agent_performance p SET"
           " success_rate = (p.success_rate * p.task_count"
           "  + CASE WHEN $2::bool THEN 1 ELSE 0 END) / (p.task_count + 1),"
           " average_quality = (p.average_quality * p.task_count + $3::float8)"
           "  / (p.task_count + 1),"
           " average_latency_ms = (p.average_latency_ms * p.task_count + $4::float8)"
           "  / (p.task_count + 1),"
           " task_count = p.task_count + 1"
           " FROM a WHERE p.tenant_id = a.tenant_id AND p.agent_id = a.id"
           " RETURNING p.agent_id)"
           " INSERT INTO agent_performance_events"
           " (agent_id, success, quality_score, latency_ms, tokens_used, task_type, task_id)"
           " SELECT agent_id, $2::bool, $3::float8, $4::float8, $5::int8, $6, $7 FROM p"
           " RETURNING agent_id",
    .nparams = 7,
    .flags = DB_STMT_ONE_ROW,
    .not_found = "agent not found",
};

/* Counts clamped to [0, INT32_MAX]; utilization is a generated column. */
static const db_stmt agent_update_load = {
    .name = "agent_update_load",
    .sql = "UPDATE agent_load SET"
           " active_tasks = LEAST(GREATEST(0, active_tasks::int8 + $2::int8), 2147483647),"
           " queued_tasks = LEAST(GREATEST(0, queued_tasks::int8 + $3::int8), 2147483647)"
           " WHERE agent_id = $1::uuid RETURNING agent_id",
    .nparams = 3,
    .flags = DB_STMT_ONE_ROW,
    .not_found = "agent not found",
};

static const db_stmt agent_unregister = {
    .name = "agent_unregister",
    .sql = "DELETE FROM agents WHERE id = $1::uuid",
    .nparams = 1,
};

/* Active: at least one running task; idle: none. */
static const db_stmt agent_stats = {
    .name = "agent_stats",
    .sql = "SELECT count(*), count(*) FILTER (WHERE l.active_tasks > 0),"
           " count(*) FILTER (WHERE l.active_tasks = 0),"
           " COALESCE(avg(l.utilization_percent), 0), COALESCE(avg(p.success_rate), 0),"
           " now()"
           " FROM agents a"
           " JOIN agent_load l ON l.tenant_id = a.tenant_id AND l.agent_id = a.id"
           " JOIN agent_performance p ON p.tenant_id = a.tenant_id AND p.agent_id = a.id",
    .nparams = 0,
};

static const db_stmt agent_cleanup = {
    .name = "agent_cleanup",
    .sql = "DELETE FROM agents"
           " WHERE last_active_at < now() - $1::int8 * interval '1 millisecond'",
    .nparams = 1,
};

/* ---- rows → messages -------------------------------------------------- */

/* One Agent and its parts in one arena block. */
struct agent_msg {
    Arbiter__V1__Agent agent;
    Arbiter__V1__Capabilities caps;
    Arbiter__V1__PerformanceHistory perf;
    Arbiter__V1__CurrentLoad load;
};

/* Builds the Agent of row |row| of statement |stmt| (AGENT_COLS order).
 * Returns NULL when out of memory. */
static Arbiter__V1__Agent *agent_from_row(rpc_call *call, const db_txn *t, int stmt, int row)
{
    struct agent_msg *m = rpc_call_alloc(call, sizeof(*m));
    svc_row r = svc_row_at(call, t, stmt, row);

    if (!m)
        return NULL;
    arbiter__v1__agent__init(&m->agent);
    arbiter__v1__capabilities__init(&m->caps);
    arbiter__v1__performance_history__init(&m->perf);
    arbiter__v1__current_load__init(&m->load);
    m->agent.id = svc_row_text(&r);
    m->agent.name = svc_row_text(&r);
    m->agent.model_family = svc_row_text(&r);
    m->caps.task_types = svc_row_text_array(&r, &m->caps.n_task_types);
    m->caps.languages = svc_row_text_array(&r, &m->caps.n_languages);
    m->caps.specializations = svc_row_text_array(&r, &m->caps.n_specializations);
    m->perf.success_rate = svc_row_double(&r);
    m->perf.average_quality = svc_row_double(&r);
    m->perf.average_latency_ms = svc_row_double(&r);
    m->perf.task_count = svc_row_int64(&r);
    m->load.active_tasks = svc_row_int32(&r);
    m->load.queued_tasks = svc_row_int32(&r);
    m->load.utilization_percent = svc_row_double(&r);
    m->load.capacity = svc_row_int32(&r);
    m->agent.registered_at = svc_row_timestamp(&r);
    m->agent.last_active_at = svc_row_timestamp(&r);
    if (r.oom || r.bad)
        return NULL;
    m->agent.capabilities = &m->caps;
    m->agent.performance = &m->perf;
    m->agent.load = &m->load;
    return &m->agent;
}

/* Done callback of every method that answers one Agent: |data| is the
 * index of the statement that selected it. */
static void on_agent(rpc_call *call, db_txn *t, void *data)
{
    Arbiter__V1__Agent *agent;

    if (db_txn_failed(call, t))
        return;
    agent = agent_from_row(call, t, (int)(intptr_t)data, 0);
    if (!agent) {
        svc_oom(call);
        return;
    }
    rpc_call_reply(call, &agent->base);
}

/* Fills |resp| with the first |n| rows of statement 0. */
static bool agents_from_rows(rpc_call *call, db_txn *t, int n,
                             Arbiter__V1__ListAgentsResponse *resp)
{
    int i;

    resp->agents = svc_alloc_array(call, (size_t)n, sizeof(*resp->agents));
    if (n > 0 && !resp->agents)
        return false;
    for (i = 0; i < n; i++) {
        resp->agents[i] = agent_from_row(call, t, 0, i);
        if (!resp->agents[i])
            return false;
    }
    resp->n_agents = (size_t)n;
    return true;
}

/* ---- RegisterAgent ------------------------------------------------------ */

static bool register_valid(rpc_call *call, const Arbiter__V1__Agent *a)
{
    const Arbiter__V1__Capabilities *c = a->capabilities;
    const Arbiter__V1__PerformanceHistory *p = a->performance;
    const Arbiter__V1__CurrentLoad *l = a->load;

    if (!svc_check_uuid_opt(call, "agent.id", a->id) ||
        !svc_check_len(call, "agent.name", a->name, 1, NAME_MAX_CHARS) ||
        !svc_check_len(call, "agent.model_family", a->model_family, 0, NAME_MAX_CHARS))
        return false;
    if (c && (!svc_check_strings(call, "agent.capabilities.task_types", c->task_types,
                                 c->n_task_types, CAP_MAX_ITEMS, CAP_MAX_CHARS) ||
              !svc_check_strings(call, "agent.capabilities.languages", c->languages, c->n_languages,
                                 CAP_MAX_ITEMS, CAP_MAX_CHARS) ||
              !svc_check_strings(call, "agent.capabilities.specializations", c->specializations,
                                 c->n_specializations, CAP_MAX_ITEMS, CAP_MAX_CHARS)))
        return false;
    if (p &&
        (!svc_check_range(call, "agent.performance.success_rate", p->success_rate, 0, 1) ||
         !svc_check_range(call, "agent.performance.average_quality", p->average_quality, 0, 1) ||
         !svc_check_range(call, "agent.performance.average_latency_ms", p->average_latency_ms, 0,
                          LATENCY_MAX_MS) ||
         !svc_check_range(call, "agent.performance.task_count", (double)p->task_count, 0, 9e18)))
        return false;
    if (l && (!svc_check_range(call, "agent.load.active_tasks", l->active_tasks, 0, INT32_MAX) ||
              !svc_check_range(call, "agent.load.queued_tasks", l->queued_tasks, 0, INT32_MAX) ||
              !svc_check_range(call, "agent.load.capacity", l->capacity, 0, INT32_MAX)))
        return false;
    return true;
}

static void on_registered(rpc_call *call, db_txn *t, void *data)
{
    switch (db_txn_status(t)) {
    case RPC_ALREADY_EXISTS:
        rpc_call_finish(call, RPC_ALREADY_EXISTS,
                        "agent.name: an agent with this name (or agent.id: this id) already "
                        "exists");
        return;
    case RPC_FAILED_PRECONDITION:
        rpc_call_finishf(call, RPC_FAILED_PRECONDITION,
                         "tenant %s does not exist (create it with Admin.CreateTenant)",
                         rpc_call_tenant(call));
        return;
    default:
        on_agent(call, t, data);
    }
}

static void register_agent(rpc_call *call, const ProtobufCMessage *msg, void *data)
{
    const Arbiter__V1__RegisterAgentRequest *req = (const void *)msg;
    const Arbiter__V1__Agent *a = req->agent;
    const Arbiter__V1__Capabilities *c;
    const Arbiter__V1__PerformanceHistory *p;
    const Arbiter__V1__CurrentLoad *l;
    db_txn *t;

    if (!a) {
        svc_invalid(call, "agent", "is required");
        return;
    }
    if (!register_valid(call, a))
        return;
    c = a->capabilities;
    p = a->performance;
    l = a->load;
    t = db_txn_new(svc_pool(call), call);
    db_txn_stmt(t, &agent_register);
    db_param_text(t, a->id[0] ? a->id : NULL);
    db_param_text(t, a->name);
    db_param_text(t, a->model_family);
    db_param_text_array(t, c ? c->task_types : NULL, c ? c->n_task_types : 0);
    db_param_text_array(t, c ? c->languages : NULL, c ? c->n_languages : 0);
    db_param_text_array(t, c ? c->specializations : NULL, c ? c->n_specializations : 0);
    db_param_double(t, p ? p->success_rate : DEFAULT_SUCCESS_RATE);
    db_param_double(t, p ? p->average_quality : DEFAULT_QUALITY);
    db_param_double(t, p ? p->average_latency_ms : DEFAULT_LATENCY_MS);
    db_param_int64(t, p ? p->task_count : 0);
    db_param_int64(t, l ? l->active_tasks : 0);
    db_param_int64(t, l ? l->queued_tasks : 0);
    db_param_int64(t, l && l->capacity > 0 ? l->capacity : DEFAULT_CAPACITY);
    db_txn_stmt(t, &agent_by_name);
    db_param_text(t, a->name);
    db_txn_run(t, on_registered, (void *)(intptr_t)1);
}

/* ---- GetAgent ----------------------------------------------------------- */

static void get_agent(rpc_call *call, const ProtobufCMessage *msg, void *data)
{
    const Arbiter__V1__GetAgentRequest *req = (const void *)msg;
    db_txn *t;

    if (!svc_check_uuid(call, "id", req->id))
        return;
    t = db_txn_new(svc_pool(call), call);
    db_txn_stmt(t, &agent_by_id);
    db_param_text(t, req->id);
    db_txn_run(t, on_agent, (void *)(intptr_t)0);
}

/* ---- ListAgents --------------------------------------------------------- */

/* A ListAgents keyset position: last_active_at in microseconds (big
 * endian) and the id as text. */
#define AGENT_KEY_LEN (8 + 36)

static char *agents_token(rpc_call *call, db_txn *t, int row)
{
    uint8_t key[AGENT_KEY_LEN];
    svc_row r = svc_row_at(call, t, 0, row);
    const char *id = db_text(t, 0, row, 0);
    int64_t us;
    int i;

    r.col = 15; /* last_active_at */
    us = svc_row_micros(&r);
    for (i = 0; i < 8; i++)
        key[i] = (uint8_t)((uint64_t)us >> (56 - 8 * i));
    if (strlen(id) != 36)
        return NULL;
    memcpy(key + 8, id, 36);
    return svc_page_token_encode(call, SVC_PAGE_AGENTS, key, sizeof(key));
}

static void on_list(rpc_call *call, db_txn *t, void *data)
{
    Arbiter__V1__ListAgentsResponse resp = ARBITER__V1__LIST_AGENTS_RESPONSE__INIT;
    int page = (int)(intptr_t)data;
    int n;

    if (db_txn_failed(call, t))
        return;
    n = db_rows(t, 0);
    if (n > page) {
        n = page;
        resp.next_page_token = agents_token(call, t, n - 1);
        if (!resp.next_page_token) {
            svc_oom(call);
            return;
        }
    }
    if (!agents_from_rows(call, t, n, &resp)) {
        svc_oom(call);
        return;
    }
    rpc_call_reply(call, &resp.base);
}

/* A decoded ListAgents position. */
struct agent_key {
    int64_t us;
    char id[37];
};

/* Parses a decoded token key; false (call finished) when it is not a
 * valid position. */
static bool agent_key_parse(rpc_call *call, const uint8_t *key, size_t len, struct agent_key *out)
{
    uint64_t us = 0;
    int i;

    if (len != AGENT_KEY_LEN) {
        svc_invalid(call, "page_token", "is not a page token of this server");
        return false;
    }
    memcpy(out->id, key + 8, 36);
    out->id[36] = '\0';
    if (!svc_check_uuid(call, "page_token", out->id))
        return false;
    for (i = 0; i < 8; i++)
        us = us << 8 | key[i];
    out->us = (int64_t)us;
    return true;
}

static void list_agents(rpc_call *call, const ProtobufCMessage *msg, void *data)
{
    const Arbiter__V1__ListAgentsRequest *req = (const void *)msg;
    uint8_t key[SVC_PAGE_KEY_MAX];
    struct agent_key pos;
    size_t len;
    int32_t page;
    db_txn *t;

    if (!svc_page_size(call, "page_size", req->page_size, LIST_DEFAULT, LIST_MAX, &page) ||
        !svc_page_token_decode(call, "page_token", req->page_token, SVC_PAGE_AGENTS, key,
                               sizeof(key), &len) ||
        (len > 0 && !agent_key_parse(call, key, len, &pos)))
        return;
    t = db_txn_new(svc_pool(call), call);
    if (len == 0) {
        db_txn_stmt(t, &agent_list_first);
    } else {
        db_txn_stmt(t, &agent_list_next);
        db_param_int64(t, pos.us);
        db_param_text(t, pos.id);
    }
    db_param_int64(t, (int64_t)page + 1); /* one more: is there a next page? */
    db_txn_run(t, on_list, (void *)(intptr_t)page);
}

/* ---- QueryAgentsByCapability ------------------------------------------- */

static void on_query(rpc_call *call, db_txn *t, void *data)
{
    Arbiter__V1__ListAgentsResponse resp = ARBITER__V1__LIST_AGENTS_RESPONSE__INIT;

    if (db_txn_failed(call, t))
        return;
    if (!agents_from_rows(call, t, db_rows(t, 0), &resp)) {
        svc_oom(call);
        return;
    }
    rpc_call_reply(call, &resp.base);
}

static bool query_valid(rpc_call *call, const Arbiter__V1__QueryAgentsByCapabilityRequest *q)
{
    return svc_check_len(call, "task_type", q->task_type, 0, CAP_MAX_CHARS) &&
           svc_check_strings(call, "languages", q->languages, q->n_languages, CAP_MAX_ITEMS,
                             CAP_MAX_CHARS) &&
           svc_check_strings(call, "specializations", q->specializations, q->n_specializations,
                             CAP_MAX_ITEMS, CAP_MAX_CHARS) &&
           (!q->max_utilization_percent ||
            svc_check_range(call, "max_utilization_percent", q->max_utilization_percent->value, 0,
                            100)) &&
           (!q->min_success_rate ||
            svc_check_range(call, "min_success_rate", q->min_success_rate->value, 0, 1));
}

static void query_agents(rpc_call *call, const ProtobufCMessage *msg, void *data)
{
    const Arbiter__V1__QueryAgentsByCapabilityRequest *q = (const void *)msg;
    int32_t page;
    db_txn *t;

    if (!query_valid(call, q) ||
        !svc_page_size(call, "page_size", q->page_size, LIST_DEFAULT, LIST_MAX, &page))
        return;
    t = db_txn_new(svc_pool(call), call);
    db_txn_stmt(t, &agent_query);
    db_param_text(t, q->task_type);
    db_param_text_array(t, q->languages, q->n_languages);
    db_param_text_array(t, q->specializations, q->n_specializations);
    if (q->max_utilization_percent)
        db_param_double(t, q->max_utilization_percent->value);
    else
        db_param_null(t);
    if (q->min_success_rate)
        db_param_double(t, q->min_success_rate->value);
    else
        db_param_null(t);
    db_param_int64(t, page);
    db_txn_run(t, on_query, NULL);
}

/* ---- UpdatePerformance / UpdateLoad ------------------------------------- */

static void update_performance(rpc_call *call, const ProtobufCMessage *msg, void *data)
{
    const Arbiter__V1__UpdatePerformanceRequest *req = (const void *)msg;
    db_txn *t;

    if (!svc_check_uuid(call, "agent_id", req->agent_id) ||
        !svc_check_range(call, "quality_score", req->quality_score, 0, 1) ||
        !svc_check_range(call, "latency_ms", req->latency_ms, 0, LATENCY_MAX_MS) ||
        !svc_check_range(call, "tokens_used", (double)req->tokens_used, 0, 9e18) ||
        !svc_check_len(call, "task_type", req->task_type, 0, CAP_MAX_CHARS) ||
        !svc_check_len(call, "task_id", req->task_id, 0, NAME_MAX_CHARS))
        return;
    t = db_txn_new(svc_pool(call), call);
    db_txn_stmt(t, &agent_update_perf);
    db_param_text(t, req->agent_id);
    db_param_bool(t, req->success);
    db_param_double(t, req->quality_score);
    db_param_double(t, req->latency_ms);
    db_param_int64(t, req->tokens_used);
    db_param_text(t, req->task_type);
    db_param_text(t, req->task_id);
    db_txn_stmt(t, &agent_by_id);
    db_param_text(t, req->agent_id);
    db_txn_run(t, on_agent, (void *)(intptr_t)1);
}

static void update_load(rpc_call *call, const ProtobufCMessage *msg, void *data)
{
    const Arbiter__V1__UpdateLoadRequest *req = (const void *)msg;
    db_txn *t;

    if (!svc_check_uuid(call, "agent_id", req->agent_id))
        return;
    t = db_txn_new(svc_pool(call), call);
    db_txn_stmt(t, &agent_update_load);
    db_param_text(t, req->agent_id);
    db_param_int64(t, req->active_tasks_delta);
    db_param_int64(t, req->queued_tasks_delta);
    db_txn_stmt(t, &agent_by_id);
    db_param_text(t, req->agent_id);
    db_txn_run(t, on_agent, (void *)(intptr_t)1);
}

/* ---- UnregisterAgent / CleanupStaleAgents -------------------------------- */

static void on_unregistered(rpc_call *call, db_txn *t, void *data)
{
    Arbiter__V1__UnregisterAgentResponse resp = ARBITER__V1__UNREGISTER_AGENT_RESPONSE__INIT;

    if (db_txn_failed(call, t))
        return;
    resp.removed = db_affected(t, 0) > 0;
    rpc_call_reply(call, &resp.base);
}

static void unregister_agent(rpc_call *call, const ProtobufCMessage *msg, void *data)
{
    const Arbiter__V1__UnregisterAgentRequest *req = (const void *)msg;
    db_txn *t;

    if (!svc_check_uuid(call, "id", req->id))
        return;
    t = db_txn_new(svc_pool(call), call);
    db_txn_stmt(t, &agent_unregister);
    db_param_text(t, req->id);
    db_txn_run(t, on_unregistered, NULL);
}

static void on_cleaned(rpc_call *call, db_txn *t, void *data)
{
    Arbiter__V1__CleanupStaleAgentsResponse resp = ARBITER__V1__CLEANUP_STALE_AGENTS_RESPONSE__INIT;

    if (db_txn_failed(call, t))
        return;
    resp.removed = db_affected(t, 0);
    rpc_call_reply(call, &resp.base);
}

static void cleanup_stale(rpc_call *call, const ProtobufCMessage *msg, void *data)
{
    const Arbiter__V1__CleanupStaleAgentsRequest *req = (const void *)msg;
    db_txn *t;

    if (req->stale_after_ms <= 0) {
        svc_invalid(call, "stale_after_ms", "must be positive");
        return;
    }
    t = db_txn_new(svc_pool(call), call);
    db_txn_stmt(t, &agent_cleanup);
    db_param_int64(t, req->stale_after_ms);
    db_txn_run(t, on_cleaned, NULL);
}

/* ---- GetRegistryStats --------------------------------------------------- */

static void on_stats(rpc_call *call, db_txn *t, void *data)
{
    Arbiter__V1__RegistryStats resp = ARBITER__V1__REGISTRY_STATS__INIT;
    svc_row r = svc_row_at(call, t, 0, 0);

    if (db_txn_failed(call, t))
        return;
    resp.total_agents = svc_row_int64(&r);
    resp.active_agents = svc_row_int64(&r);
    resp.idle_agents = svc_row_int64(&r);
    resp.average_utilization_percent = svc_row_double(&r);
    resp.average_success_rate = svc_row_double(&r);
    resp.last_updated = svc_row_timestamp(&r);
    if (!svc_row_ok(call, &r))
        return;
    rpc_call_reply(call, &resp.base);
}

static void registry_stats(rpc_call *call, const ProtobufCMessage *msg, void *data)
{
    db_txn *t = db_txn_new(svc_pool(call), call);

    db_txn_stmt(t, &agent_stats);
    db_txn_run(t, on_stats, NULL);
}

/* ---- registration -------------------------------------------------------- */

int svc_agent_registry_register(struct server *srv)
{
    static const struct {
        const char *name;
        rpc_handler_fn fn;
    } methods[] = {
        {"RegisterAgent", register_agent},
        {"GetAgent", get_agent},
        {"ListAgents", list_agents},
        {"QueryAgentsByCapability", query_agents},
        {"UpdatePerformance", update_performance},
        {"UpdateLoad", update_load},
        {"UnregisterAgent", unregister_agent},
        {"GetRegistryStats", registry_stats},
        {"CleanupStaleAgents", cleanup_stale},
    };
    size_t i;
    int rc;

    for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        rc = rpc_methods_add(&srv->methods, &arbiter__v1__agent_registry__descriptor,
                             methods[i].name, methods[i].fn, RPC_NEEDS_TENANT, srv);
        if (rc < 0)
            return rc;
    }
    return 0;
}
