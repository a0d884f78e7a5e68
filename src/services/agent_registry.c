/* arbiter.v1.AgentRegistry: the upstream AgentRegistryDatabaseClient
 * (UPSTREAM.md §2.1) as a method table over migrations/0002_agent_registry.sql.
 *
 * Every method needs x-tenant-id; tenant scoping is done by the database
 * alone: the pool sets app.current_tenant for the call's transaction, the
 * tables default tenant_id from it and forced row-level security hides and
 * protects every other tenant's rows. So no statement mentions a tenant,
 * another tenant's agent is simply "not found", and a write aimed at it
 * changes nothing.
 *
 * Writes that answer an Agent run the shared agent_view SELECT after the
 * write in the same transaction (one round trip), which sees the write.
 * Defaults of an absent sub-message live in SQL (COALESCE): absent binds
 * NULL. */
#include "agent_registry.pb-c.h"
#include "services/services.h"
#include "services/svc_table.h"

/* One Agent as every method answers it: columns named after the fields. */
#define AGENT_COLS                                                                                 \
    "id, name, model_family, task_types AS \"capabilities.task_types\", "                          \
    "languages AS \"capabilities.languages\", "                                                    \
    "specializations AS \"capabilities.specializations\", "                                        \
    "success_rate AS \"performance.success_rate\", "                                               \
    "average_quality AS \"performance.average_quality\", "                                         \
    "average_latency_ms AS \"performance.average_latency_ms\", "                                   \
    "task_count AS \"performance.task_count\", active_tasks AS \"load.active_tasks\", "            \
    "queued_tasks AS \"load.queued_tasks\", "                                                      \
    "utilization_percent AS \"load.utilization_percent\", capacity AS \"load.capacity\", "         \
    "registered_at, last_active_at"
#define AGENT_BY_ID "SELECT " AGENT_COLS " FROM agent_view WHERE id = $1::uuid"
#define CAPS(f) SVC_ITEMS("agent.capabilities." f, 64, 1, 255)
#define INT32_RANGE(f) SVC_RANGE(f, 0, 2147483647)

/* All four tables in one statement; capabilities keep the caller's order
 * and drop duplicates; upstream's defaults for what is absent. */
static const char register_sql[] =
    "WITH a AS (INSERT INTO agents (id, name, model_family)"
    " VALUES (COALESCE(NULLIF($1, '')::uuid, gen_random_uuid()), $2, $3) RETURNING id),"
    " caps AS (INSERT INTO agent_capabilities (agent_id, kind, value, ord)"
    " SELECT a.id, k.kind, k.value, min(k.ord) FROM a, ("
    "  SELECT 'task_type' AS kind, v AS value, o AS ord"
    "   FROM unnest($4::text[]) WITH ORDINALITY AS u(v, o)"
    "  UNION ALL SELECT 'language', v, o FROM unnest($5::text[]) WITH ORDINALITY AS u(v, o)"
    "  UNION ALL SELECT 'specialization', v, o FROM unnest($6::text[]) WITH ORDINALITY AS u(v, o)"
    " ) k GROUP BY a.id, k.kind, k.value),"
    " perf AS (INSERT INTO agent_performance"
    " (agent_id, success_rate, average_quality, average_latency_ms, task_count)"
    " SELECT a.id, COALESCE($7::float8, 0.8), COALESCE($8::float8, 0.7),"
    " COALESCE($9::float8, 5000), COALESCE($10::int8, 0) FROM a),"
    " l AS (INSERT INTO agent_load (agent_id, active_tasks, queued_tasks, capacity)"
    " SELECT a.id, COALESCE($11::int4, 0), COALESCE($12::int4, 0),"
    " COALESCE(NULLIF($13::int4, 0), 10) FROM a)"
    " SELECT id FROM a";

/* Filters and ordering run on the base tables; only the page's rows are
 * then read through agent_view, so the capability arrays are aggregated
 * for page_size agents rather than for every match. */
static const char query_sql[] =
    "SELECT " AGENT_COLS " FROM agent_view WHERE (tenant_id, id) IN ("
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
    " ORDER BY p.success_rate DESC, a.id LIMIT COALESCE(NULLIF($6::int4, 0), 50))"
    " ORDER BY \"performance.success_rate\" DESC, id";

/* Running averages exactly as upstream, (old * n + x) / (n + 1), in one
 * statement. The agents row is locked first (as a cascading delete does),
 * then the performance row; concurrent updates queue on the row locks and
 * PostgreSQL re-evaluates the SET expressions on the newest row version,
 * so none is lost. */
static const char performance_sql[] =
    "WITH a AS (UPDATE agents SET last_active_at = now() WHERE id = $1::uuid"
    " RETURNING tenant_id, id),"
    " p AS (UPDATE agent_performance p SET"
    " success_rate = (p.success_rate * p.task_count + CASE WHEN $2::bool THEN 1 ELSE 0 END)"
    "  / (p.task_count + 1),"
    " average_quality = (p.average_quality * p.task_count + $3::float8) / (p.task_count + 1),"
    " average_latency_ms = (p.average_latency_ms * p.task_count + $4::float8)"
    "  / (p.task_count + 1),"
    " task_count = p.task_count + 1"
    " FROM a WHERE p.tenant_id = a.tenant_id AND p.agent_id = a.id RETURNING p.agent_id)"
    " INSERT INTO agent_performance_events"
    " (agent_id, success, quality_score, latency_ms, tokens_used, task_type, task_id)"
    " SELECT agent_id, $2::bool, $3::float8, $4::float8, $5::int8, $6, $7 FROM p";

static const svc_method methods[] = {
    {
        .name = "RegisterAgent",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(
            SVC_REQUIRED("agent"), SVC_UUID_OPT("agent.id"), SVC_LEN("agent.name", 1, 255),
            SVC_LEN("agent.model_family", 0, 255), CAPS("task_types"), CAPS("languages"),
            CAPS("specializations"), SVC_RANGE("agent.performance.success_rate", 0, 1),
            SVC_RANGE("agent.performance.average_quality", 0, 1),
            SVC_RANGE("agent.performance.average_latency_ms", 0, 1e12),
            SVC_RANGE("agent.performance.task_count", 0, 9e18),
            INT32_RANGE("agent.load.active_tasks"), INT32_RANGE("agent.load.queued_tasks"),
            INT32_RANGE("agent.load.capacity")),
        .stmts = {{register_sql,
                   SVC_PARAMS("agent.id", "agent.name", "agent.model_family",
                              "agent.capabilities.task_types", "agent.capabilities.languages",
                              "agent.capabilities.specializations",
                              "agent.performance.success_rate", "agent.performance.average_quality",
                              "agent.performance.average_latency_ms",
                              "agent.performance.task_count", "agent.load.active_tasks",
                              "agent.load.queued_tasks", "agent.load.capacity")},
                  {"SELECT " AGENT_COLS " FROM agent_view WHERE name = $1",
                   SVC_PARAMS("agent.name")}},
        .errors = SVC_ERRORS({RPC_ALREADY_EXISTS, "agent.name: an agent with this name (or "
                                                  "agent.id: this id) already exists"}),
    },
    {
        .name = "GetAgent",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .checks = SVC_CHECKS(SVC_UUID("id")),
        .stmts = {{AGENT_BY_ID, SVC_PARAMS("id")}},
        .not_found = "agent not found",
    },
    {
        .name = "ListAgents",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .stmts = {{"SELECT " AGENT_COLS " FROM agent_view WHERE (last_active_at, id) <"
                   " (COALESCE($2::timestamptz, 'infinity'),"
                   " COALESCE($3::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))"
                   " ORDER BY last_active_at DESC, id DESC LIMIT $1",
                   SVC_PARAMS("@limit", "@after.1", "@after.2")}},
        .reply = SVC_PAGE,
        .field = "agents",
        .keys = SVC_KEYS("last_active_at", "id"),
    },
    {
        .name = "QueryAgentsByCapability",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .checks = SVC_CHECKS(SVC_LEN("task_type", 0, 255), SVC_ITEMS("languages", 64, 1, 255),
                             SVC_ITEMS("specializations", 64, 1, 255),
                             SVC_RANGE("max_utilization_percent", 0, 100),
                             SVC_RANGE("min_success_rate", 0, 1), SVC_RANGE("page_size", 0, 1000)),
        .stmts = {{query_sql,
                   SVC_PARAMS("task_type", "languages", "specializations",
                              "max_utilization_percent", "min_success_rate", "page_size")}},
        .reply = SVC_ROWS,
        .field = "agents",
    },
    {
        .name = "UpdatePerformance",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_UUID("agent_id"), SVC_RANGE("quality_score", 0, 1),
                             SVC_RANGE("latency_ms", 0, 1e12), SVC_RANGE("tokens_used", 0, 9e18),
                             SVC_LEN("task_type", 0, 255), SVC_LEN("task_id", 0, 255)),
        .stmts = {{performance_sql, SVC_PARAMS("agent_id", "success", "quality_score", "latency_ms",
                                               "tokens_used", "task_type", "task_id")},
                  {AGENT_BY_ID, SVC_PARAMS("agent_id")}},
        .not_found = "agent not found",
    },
    {
        /* Counts clamped to [0, INT32_MAX]; utilization is a generated column. */
        .name = "UpdateLoad",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_UUID("agent_id")),
        .stmts = {{"UPDATE agent_load SET"
                   " active_tasks = LEAST(GREATEST(0, active_tasks::int8 + $2::int8), 2147483647),"
                   " queued_tasks = LEAST(GREATEST(0, queued_tasks::int8 + $3::int8), 2147483647)"
                   " WHERE agent_id = $1::uuid",
                   SVC_PARAMS("agent_id", "active_tasks_delta", "queued_tasks_delta")},
                  {AGENT_BY_ID, SVC_PARAMS("agent_id")}},
        .not_found = "agent not found",
    },
    {
        .name = "UnregisterAgent",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_UUID("id")),
        .stmts = {{"DELETE FROM agents WHERE id = $1::uuid", SVC_PARAMS("id")}},
        .reply = SVC_COUNT,
        .field = "removed",
    },
    {
        /* Active: at least one running task; idle: none. */
        .name = "GetRegistryStats",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .stmts = {{"SELECT count(*) AS total_agents,"
                   " count(*) FILTER (WHERE l.active_tasks > 0) AS active_agents,"
                   " count(*) FILTER (WHERE l.active_tasks = 0) AS idle_agents,"
                   " COALESCE(avg(l.utilization_percent), 0) AS average_utilization_percent,"
                   " COALESCE(avg(p.success_rate), 0) AS average_success_rate,"
                   " now() AS last_updated FROM agents a"
                   " JOIN agent_load l ON l.tenant_id = a.tenant_id AND l.agent_id = a.id"
                   " JOIN agent_performance p ON p.tenant_id = a.tenant_id AND p.agent_id = a.id",
                   NULL}},
    },
    {
        .name = "CleanupStaleAgents",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_RANGE("stale_after_ms", 1, 9e18)),
        .stmts = {{"DELETE FROM agents"
                   " WHERE last_active_at < now() - $1::int8 * interval '1 millisecond'",
                   SVC_PARAMS("stale_after_ms")}},
        .reply = SVC_COUNT,
        .field = "removed",
    },
};

static int start(svc_env *env)
{
    return svc_table_register(env, &arbiter__v1__agent_registry__descriptor, methods,
                              sizeof(methods) / sizeof(methods[0]));
}

const struct svc_service svc_agent_registry = {.name = "AgentRegistry", .start = start};
