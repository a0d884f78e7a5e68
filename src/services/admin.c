/* arbiter.v1.Admin: operator calls, allowed only from the server's own uid
 * or root (SO_PEERCRED through rpc_call_peer_uid()); every other caller
 * gets PERMISSION_DENIED before anything else happens. No tenant is
 * needed: tenants are not tenant-owned rows (migrations/0001_tenants.sql).
 */
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "admin.pb-c.h"
#include "config.h"
#include "db/db.h"
#include "db/pool.h"
#include "rpc/method.h"
#include "server.h"
#include "services/services.h"
#include "services/svc_util.h"

#define TENANT_NAME_MAX 255
#define TENANT_ID_MAX 64
#define LIST_DEFAULT 50
#define LIST_MAX 1000

#define TENANT_COLS "id, name, created_at"

static const db_stmt tenant_create = {
    .name = "tenant_create",
    .sql = "INSERT INTO tenants (id, name) VALUES ($1, $2) RETURNING " TENANT_COLS,
    .nparams = 2,
};

static const db_stmt tenant_get = {
    .name = "tenant_get",
    .sql = "SELECT " TENANT_COLS " FROM tenants WHERE id = $1",
    .nparams = 1,
    .flags = DB_STMT_ONE_ROW,
    .not_found = "tenant not found",
};

static const db_stmt tenant_list_first = {
    .name = "tenant_list_first",
    .sql = "SELECT " TENANT_COLS " FROM tenants ORDER BY id LIMIT $1::int4",
    .nparams = 1,
};

static const db_stmt tenant_list_next = {
    .name = "tenant_list_next",
    .sql = "SELECT " TENANT_COLS " FROM tenants WHERE id > $1 ORDER BY id LIMIT $2::int4",
    .nparams = 2,
};

/* True when the caller may use Admin; otherwise finishes the call with
 * PERMISSION_DENIED. */
static bool admin_allowed(rpc_call *call)
{
    uid_t uid = rpc_call_peer_uid(call);

    if (uid == 0 || uid == rpc_call_server(call)->uid)
        return true;
    rpc_call_finishf(call, RPC_PERMISSION_DENIED,
                     "Admin is only for the server's own uid or root (caller uid %ld)", (long)uid);
    return false;
}

/* ---- GetPoolStats / GetServerInfo -------------------------------------- */

static bool pool_stats_errors(rpc_call *call, const struct db_pool_stats *s,
                              Arbiter__V1__PoolStats *out)
{
    Arbiter__V1__SqlStateCount *items;
    uint32_t i, n = s->n_error_classes;

    if (n > sizeof(s->errors_by_class) / sizeof(s->errors_by_class[0]))
        n = sizeof(s->errors_by_class) / sizeof(s->errors_by_class[0]);
    items = svc_alloc_array(call, n, sizeof(*items));
    out->errors_by_class = svc_alloc_array(call, n, sizeof(*out->errors_by_class));
    if (n > 0 && (!items || !out->errors_by_class))
        return false;
    for (i = 0; i < n; i++) {
        arbiter__v1__sql_state_count__init(&items[i]);
        items[i].sqlstate_class =
            arena_strndup(rpc_call_arena(call), s->errors_by_class[i].sqlclass, 2);
        if (!items[i].sqlstate_class)
            return false;
        items[i].count = (int64_t)s->errors_by_class[i].count;
        out->errors_by_class[i] = &items[i];
    }
    out->n_errors_by_class = n;
    return true;
}

static void get_pool_stats(rpc_call *call, const ProtobufCMessage *msg, void *data)
{
    Arbiter__V1__PoolStats out = ARBITER__V1__POOL_STATS__INIT;
    struct db_pool *pool = svc_pool(call);
    struct db_pool_stats s;

    if (!admin_allowed(call))
        return;
    if (!pool) { /* no --database-url: nothing to report, and nothing reachable */
        out.status = (char *)"no database configured";
        rpc_call_reply(call, &out.base);
        return;
    }
    memset(&s, 0, sizeof(s));
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
    out.status = (char *)(s.status ? s.status : "");
    out.database_reachable = s.reachable;
    if (!pool_stats_errors(call, &s, &out)) {
        svc_oom(call);
        return;
    }
    rpc_call_reply(call, &out.base);
}

static void get_server_info(rpc_call *call, const ProtobufCMessage *msg, void *data)
{
    Arbiter__V1__ServerInfo out = ARBITER__V1__SERVER_INFO__INIT;
    Arbiter__V1__StatusCount items[RPC_STATUS_COUNT];
    Arbiter__V1__StatusCount *ptrs[RPC_STATUS_COUNT];
    struct server *srv = rpc_call_server(call);
    int i;

    if (!admin_allowed(call))
        return;
    out.version = (char *)ARBITER_VERSION;
    out.uptime_seconds = (double)(uv_now(srv->loop) - srv->started_at_ms) / 1000.0;
    out.open_connections = (int32_t)srv->stats.open_connections;
    out.calls_in_flight = (int32_t)srv->stats.calls_in_flight;
    out.calls_total = (int64_t)srv->stats.calls_total;
    for (i = 0; i < RPC_STATUS_COUNT; i++) {
        arbiter__v1__status_count__init(&items[i]);
        items[i].code = i;
        items[i].name = (char *)rpc_status_name((rpc_status)i);
        items[i].count = (int64_t)srv->stats.calls_by_status[i];
        ptrs[i] = &items[i];
    }
    out.calls_by_status = ptrs;
    out.n_calls_by_status = RPC_STATUS_COUNT;
    rpc_call_reply(call, &out.base); /* serialised now: stack memory is fine */
}

/* ---- tenants ------------------------------------------------------------- */

static Arbiter__V1__Tenant *tenant_from_row(rpc_call *call, const db_txn *t, int row)
{
    Arbiter__V1__Tenant *m = rpc_call_alloc(call, sizeof(*m));
    svc_row r = svc_row_at(call, t, 0, row);

    if (!m)
        return NULL;
    arbiter__v1__tenant__init(m);
    m->id = svc_row_text(&r);
    m->name = svc_row_text(&r);
    m->created_at = svc_row_timestamp(&r);
    return r.oom || r.bad ? NULL : m;
}

static void on_tenant(rpc_call *call, db_txn *t, void *data)
{
    Arbiter__V1__Tenant *m;

    if (db_txn_status(t) == RPC_ALREADY_EXISTS) {
        rpc_call_finish(call, RPC_ALREADY_EXISTS, "id: a tenant with this id already exists");
        return;
    }
    if (db_txn_failed(call, t))
        return;
    m = tenant_from_row(call, t, 0);
    if (!m) {
        svc_oom(call);
        return;
    }
    rpc_call_reply(call, &m->base);
}

static void create_tenant(rpc_call *call, const ProtobufCMessage *msg, void *data)
{
    const Arbiter__V1__CreateTenantRequest *req = (const void *)msg;
    db_txn *t;

    if (!admin_allowed(call) || !svc_check_tenant_id(call, "id", req->id) ||
        !svc_check_len(call, "name", req->name, 0, TENANT_NAME_MAX))
        return;
    t = db_txn_new(svc_pool(call), call);
    db_txn_stmt(t, &tenant_create);
    db_param_text(t, req->id);
    db_param_text(t, req->name);
    db_txn_run(t, on_tenant, NULL);
}

static void get_tenant(rpc_call *call, const ProtobufCMessage *msg, void *data)
{
    const Arbiter__V1__GetTenantRequest *req = (const void *)msg;
    db_txn *t;

    if (!admin_allowed(call) || !svc_check_tenant_id(call, "id", req->id))
        return;
    t = db_txn_new(svc_pool(call), call);
    db_txn_stmt(t, &tenant_get);
    db_param_text(t, req->id);
    db_txn_run(t, on_tenant, NULL);
}

static void on_tenants(rpc_call *call, db_txn *t, void *data)
{
    Arbiter__V1__ListTenantsResponse out = ARBITER__V1__LIST_TENANTS_RESPONSE__INIT;
    int page = (int)(intptr_t)data;
    int i, n;

    if (db_txn_failed(call, t))
        return;
    n = db_rows(t, 0);
    if (n > page) {
        const char *last;

        n = page;
        last = db_text(t, 0, n - 1, 0);
        out.next_page_token = svc_page_token_encode(call, SVC_PAGE_TENANTS, last, strlen(last));
        if (!out.next_page_token)
            goto oom;
    }
    out.tenants = svc_alloc_array(call, (size_t)n, sizeof(*out.tenants));
    if (n > 0 && !out.tenants)
        goto oom;
    for (i = 0; i < n; i++) {
        out.tenants[i] = tenant_from_row(call, t, i);
        if (!out.tenants[i])
            goto oom;
    }
    out.n_tenants = (size_t)n;
    rpc_call_reply(call, &out.base);
    return;
oom:
    svc_oom(call);
}

static void list_tenants(rpc_call *call, const ProtobufCMessage *msg, void *data)
{
    const Arbiter__V1__ListTenantsRequest *req = (const void *)msg;
    char key[SVC_PAGE_KEY_MAX + 1];
    size_t len;
    int32_t page;
    db_txn *t;

    if (!admin_allowed(call) ||
        !svc_page_size(call, "page_size", req->page_size, LIST_DEFAULT, LIST_MAX, &page) ||
        !svc_page_token_decode(call, "page_token", req->page_token, SVC_PAGE_TENANTS, key,
                               SVC_PAGE_KEY_MAX, &len))
        return;
    key[len] = '\0';
    if (len > 0 && !svc_check_tenant_id(call, "page_token", key))
        return;
    t = db_txn_new(svc_pool(call), call);
    if (len == 0) {
        db_txn_stmt(t, &tenant_list_first);
    } else {
        db_txn_stmt(t, &tenant_list_next);
        db_param_text(t, key);
    }
    db_param_int64(t, (int64_t)page + 1); /* one more: is there a next page? */
    db_txn_run(t, on_tenants, (void *)(intptr_t)page);
}

/* ---- registration -------------------------------------------------------- */

int svc_admin_register(struct server *srv)
{
    static const struct {
        const char *name;
        rpc_handler_fn fn;
    } methods[] = {
        {"GetPoolStats", get_pool_stats}, {"GetServerInfo", get_server_info},
        {"CreateTenant", create_tenant},  {"GetTenant", get_tenant},
        {"ListTenants", list_tenants},
    };
    size_t i;
    int rc;

    for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        rc = rpc_methods_add(&srv->methods, &arbiter__v1__admin__descriptor, methods[i].name,
                             methods[i].fn, RPC_UNARY, srv);
        if (rc < 0)
            return rc;
    }
    return 0;
}
