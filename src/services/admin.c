/* arbiter.v1.Admin: operator calls, allowed only from the server's own uid
 * or root (SVC_ADMIN, checked by the rpc layer from SO_PEERCRED before the
 * request is read). No tenant is needed: tenants and tenant grants are not
 * tenant-owned rows (migrations/0001_tenants.sql, 0008_tenant_grants.sql).
 * Admin also owns the grants snapshot of --tenant-auth=peer
 * (tenant_auth.h). */
#include <string.h>

#include "admin.pb-c.h"
#include "config.h"
#include "db/pool.h"
#include "services/services.h"
#include "services/svc_table.h"
#include "services/tenant_auth.h"

#define TENANT_COLS "id, name, created_at"
#define GRANT_COLS "tenant_id, uid, gid, created_at"
#define ONE_PRINCIPAL                                                                              \
    SVC_VIOLATIONS({"tenant_grants_one_principal", "exactly one of uid and gid must be set"})

/* The grant a request names, for the snapshot --tenant-auth=peer checks. */
static void request_principal(const ProtobufCMessage *msg, enum tenant_principal *kind,
                              uint32_t *id)
{
    /* GrantTenantRequest and RevokeTenantRequest have the same fields. */
    const Arbiter__V1__GrantTenantRequest *req = (const void *)msg;

    /* The statement refused anything but exactly one of them. */
    *kind = req->uid != NULL ? TENANT_UID : TENANT_GID;
    *id = req->uid != NULL ? req->uid->value : req->gid != NULL ? req->gid->value : 0;
}

static void grant_committed(rpc_call *call, const svc_entry *e, const ProtobufCMessage *msg,
                            const db_txn *t)
{
    const Arbiter__V1__GrantTenantRequest *req = (const void *)msg;
    enum tenant_principal kind;
    uint32_t id;

    (void)call;
    (void)t;
    request_principal(msg, &kind, &id);
    tenant_auth_changed(svc_entry_env(e), req->tenant_id, kind, id, true);
}

static void revoke_committed(rpc_call *call, const svc_entry *e, const ProtobufCMessage *msg,
                             const db_txn *t)
{
    const Arbiter__V1__RevokeTenantRequest *req = (const void *)msg;
    enum tenant_principal kind;
    uint32_t id;

    (void)call;
    request_principal(msg, &kind, &id);
    if (db_affected(t, 0) > 0)
        tenant_auth_changed(svc_entry_env(e), req->tenant_id, kind, id, false);
}

static bool pool_errors(rpc_call *call, const struct db_pool_stats *s, Arbiter__V1__PoolStats *out)
{
    Arbiter__V1__SqlStateCount *items = svc_alloc_array(call, s->n_error_classes, sizeof(*items));

    out->errors_by_class = svc_alloc_array(call, s->n_error_classes, sizeof(void *));
    if (s->n_error_classes > 0 && (!items || !out->errors_by_class))
        return false;
    for (uint32_t i = 0; i < s->n_error_classes; i++) {
        arbiter__v1__sql_state_count__init(&items[i]);
        items[i].sqlstate_class =
            arena_strndup(rpc_call_arena(call), s->errors_by_class[i].sqlclass, 2);
        items[i].count = (int64_t)s->errors_by_class[i].count;
        out->errors_by_class[i] = &items[i];
        if (!items[i].sqlstate_class)
            return false;
    }
    out->n_errors_by_class = s->n_error_classes;
    return true;
}

static void get_pool_stats(rpc_call *call, const ProtobufCMessage *msg, void *data)
{
    Arbiter__V1__PoolStats out = ARBITER__V1__POOL_STATS__INIT;
    struct db_pool *pool = svc_entry_env(data)->pool;
    struct db_pool_stats s;

    if (!pool) { /* no --database-url: nothing to report, and nothing reachable */
        out.status = (char *)"no database configured";
        rpc_call_reply(call, &out.base);
        return;
    }
    db_pool_get_stats(pool, &s);
    out.total = (int32_t)s.total;
    out.idle = (int32_t)s.idle;
    out.busy = (int32_t)s.busy;
    out.connecting = (int32_t)s.connecting;
    out.waiting = (int32_t)s.waiting;
    out.peak_waiting = (int32_t)s.peak_waiting;
    out.min = (int32_t)s.min;
    out.max = (int32_t)s.max;
    out.acquired = (int64_t)s.acquired;
    out.acquire_timeouts = (int64_t)s.acquire_timeouts;
    out.queue_full_rejections = (int64_t)s.queue_full_rejections;
    out.connect_errors = (int64_t)s.connect_errors;
    out.reconnects = (int64_t)s.reconnects;
    out.acquire_wait_p50_ms = s.acquire_wait_p50_ms;
    out.acquire_wait_p95_ms = s.acquire_wait_p95_ms;
    out.acquire_wait_p99_ms = s.acquire_wait_p99_ms;
    out.utilization_percent = s.utilization_percent;
    out.status = (char *)s.status;
    out.database_reachable = s.reachable;
    if (!pool_errors(call, &s, &out)) {
        svc_oom(call);
        return;
    }
    rpc_call_reply(call, &out.base);
}

static void get_server_info(rpc_call *call, const ProtobufCMessage *msg, void *data)
{
    const svc_env *env = svc_entry_env(data);
    const struct rpc_stats *st = &env->rpc->stats;
    Arbiter__V1__ServerInfo out = ARBITER__V1__SERVER_INFO__INIT;
    Arbiter__V1__StatusCount items[RPC_STATUS_COUNT], *ptrs[RPC_STATUS_COUNT];

    out.version = (char *)ARBITER_VERSION;
    out.uptime_seconds = (double)(uv_now(env->loop) - env->started_at_ms) / 1000.0;
    out.open_connections = (int32_t)st->open_connections;
    out.calls_in_flight = (int32_t)st->calls_in_flight;
    out.calls_total = (int64_t)st->calls_total;
    out.vector_implementation = env->vector_impl ? env->vector_impl : (char *)"";
    for (int i = 0; i < RPC_STATUS_COUNT; i++) {
        arbiter__v1__status_count__init(&items[i]);
        items[i].code = i;
        items[i].name = (char *)rpc_status_name((rpc_status)i);
        items[i].count = (int64_t)st->calls_by_status[i];
        ptrs[i] = &items[i];
    }
    out.calls_by_status = ptrs;
    out.n_calls_by_status = RPC_STATUS_COUNT;
    rpc_call_reply(call, &out.base); /* serialised now: stack memory is fine */
}

static const svc_method methods[] = {
    {.name = "GetPoolStats", .flags = SVC_ADMIN, .handler = get_pool_stats},
    {.name = "GetServerInfo", .flags = SVC_ADMIN, .handler = get_server_info},
    {
        .name = "CreateTenant",
        .flags = SVC_ADMIN,
        .checks = SVC_CHECKS(SVC_NAME("id", 64), SVC_LEN("name", 0, 255)),
        .stmts = {{"INSERT INTO tenants (id, name) VALUES ($1, $2) RETURNING " TENANT_COLS,
                   SVC_PARAMS("id", "name")}},
        .errors = SVC_ERRORS({RPC_ALREADY_EXISTS, "id: a tenant with this id already exists"}),
    },
    {
        .name = "GetTenant",
        .flags = SVC_ADMIN | SVC_READ_ONLY,
        .checks = SVC_CHECKS(SVC_NAME("id", 64)),
        .stmts = {{"SELECT " TENANT_COLS " FROM tenants WHERE id = $1", SVC_PARAMS("id")}},
        .not_found = "tenant not found",
    },
    {
        .name = "ListTenants",
        .flags = SVC_ADMIN | SVC_READ_ONLY,
        .stmts = {{"SELECT " TENANT_COLS " FROM tenants WHERE id > COALESCE($2, '')"
                   " ORDER BY id LIMIT $1",
                   SVC_PARAMS("@limit", "@after.1")}},
        .reply = SVC_PAGE,
        .field = "tenants",
        .keys = SVC_KEYS("id"),
    },
    {
        .name = "GrantTenant",
        .flags = SVC_ADMIN,
        .checks = SVC_CHECKS(SVC_NAME("tenant_id", 64)),
        .stmts = {{"INSERT INTO tenant_grants (tenant_id, uid, gid) VALUES ($1, $2, $3)"
                   " ON CONFLICT ON CONSTRAINT tenant_grants_unique"
                   " DO UPDATE SET tenant_id = EXCLUDED.tenant_id RETURNING " GRANT_COLS,
                   SVC_PARAMS("tenant_id", "uid", "gid")}},
        .violations = ONE_PRINCIPAL,
        .errors = SVC_ERRORS({RPC_FAILED_PRECONDITION,
                              "tenant_id: no such tenant (create it with Admin.CreateTenant)"}),
        .committed = grant_committed,
    },
    {
        .name = "RevokeTenant",
        .flags = SVC_ADMIN,
        .checks = SVC_CHECKS(SVC_NAME("tenant_id", 64)),
        .stmts = {{"DELETE FROM tenant_grants WHERE tenant_grant_principal($2, $3)"
                   " AND tenant_id = $1 AND uid IS NOT DISTINCT FROM $2::bigint"
                   " AND gid IS NOT DISTINCT FROM $3::bigint",
                   SVC_PARAMS("tenant_id", "uid", "gid")}},
        .reply = SVC_COUNT,
        .field = "revoked",
        .violations = ONE_PRINCIPAL,
        .committed = revoke_committed,
    },
    {
        .name = "ListTenantGrants",
        .flags = SVC_ADMIN | SVC_READ_ONLY,
        .stmts = {{"SELECT id AS _id, " GRANT_COLS " FROM tenant_grants"
                   " WHERE ($3 = '' OR tenant_id = $3) AND id > COALESCE($2::bigint, 0)"
                   " ORDER BY id LIMIT $1",
                   SVC_PARAMS("@limit", "@after.1", "tenant_id")}},
        .reply = SVC_PAGE,
        .field = "grants",
        .keys = SVC_KEYS("_id"),
    },
    {
        /* queue_settings is a tenant table (migrations/0007): the first
         * statement names the tenant for this transaction only. */
        .name = "SetQueueCapacity",
        .flags = SVC_ADMIN,
        .checks = SVC_CHECKS(SVC_NAME("tenant_id", 64), SVC_RANGE("capacity", 0, 100000000)),
        .stmts = {{"SELECT set_config('app.current_tenant', $1, true)", SVC_PARAMS("tenant_id")},
                  {"INSERT INTO queue_settings (capacity) VALUES ($1) ON CONFLICT (tenant_id)"
                   " DO UPDATE SET capacity = EXCLUDED.capacity, updated_at = now()"
                   " RETURNING tenant_id, capacity",
                   SVC_PARAMS("capacity")}},
        .errors = SVC_ERRORS({RPC_FAILED_PRECONDITION, "tenant_id: no such tenant"}),
    },
};

static int start(svc_env *env)
{
    int rv = svc_table_register(env, &arbiter__v1__admin__descriptor, methods,
                                sizeof(methods) / sizeof(methods[0]));

    return rv < 0 ? rv : tenant_auth_start(env);
}

const struct svc_service svc_admin = {
    .name = "Admin",
    .start = start,
    .serving_changed = tenant_auth_serving,
    .shutdown = tenant_auth_shutdown,
    .stop = tenant_auth_stop,
};
