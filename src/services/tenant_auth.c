/* The in-memory snapshot of tenant_grants and the check the rpc layer runs
 * with it (see tenant_auth.h). */
#include "services/tenant_auth.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "util/arena.h"
#include "util/log.h"

#define LOAD_TIMEOUT_MS 10000
#define LOAD_ARENA_LIMIT (64u << 20)

struct grant {
    char *tenant; /* owned */
    uint32_t id;
    uint8_t kind; /* enum tenant_principal */
};

struct tenant_auth {
    svc_env *env;         /* borrowed */
    struct grant *grants; /* owned, sorted by (tenant, kind, id) */
    size_t n, cap;
    bool loaded;          /* a snapshot was read at least once */
    bool loading;         /* a load is in flight */
    bool stopping;
    uint64_t changes;      /* local changes so far */
    uint64_t changes_seen; /* ... when the load in flight started */
    uv_timer_t timer;     /* the refresh; closed at shutdown */
    arena load_arena; /* the load's transaction and results */
};

static const db_stmt load_stmt = {
    .name = "tenant_grants_load",
    .sql = "SELECT tenant_id, uid, gid FROM tenant_grants",
};

/* ---- the snapshot --------------------------------------------------------- */

static int cmp(const char *tenant, uint8_t kind, uint32_t id, const struct grant *g)
{
    int c = strcmp(tenant, g->tenant);

    if (c != 0)
        return c;
    if (kind != g->kind)
        return kind < g->kind ? -1 : 1;
    return id < g->id ? -1 : id > g->id;
}

static int cmp_grants(const void *a, const void *b)
{
    const struct grant *x = a;

    return cmp(x->tenant, x->kind, x->id, b);
}

/* The index of the grant, or where it would go (*found false). */
static size_t find(const struct tenant_auth *ta, const char *tenant, uint8_t kind, uint32_t id,
                   bool *found)
{
    size_t lo = 0, hi = ta->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp(tenant, kind, id, &ta->grants[mid]);

        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    *found = false;
    return lo;
}

static bool has(const struct tenant_auth *ta, const char *tenant, uint8_t kind, uint32_t id)
{
    bool found;

    find(ta, tenant, kind, id, &found);
    return found;
}

static void grants_free(struct grant *g, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(g[i].tenant);
    free(g);
}

static int insert(struct tenant_auth *ta, const char *tenant, uint8_t kind, uint32_t id)
{
    bool found;
    size_t at = find(ta, tenant, kind, id, &found);
    char *copy;

    if (found)
        return 0;
    if (ta->n == ta->cap) {
        size_t cap = ta->cap ? ta->cap * 2 : 16;
        struct grant *g = realloc(ta->grants, cap * sizeof(*g));

        if (g == NULL)
            return -ENOMEM;
        ta->grants = g;
        ta->cap = cap;
    }
    copy = strdup(tenant);
    if (copy == NULL)
        return -ENOMEM;
    memmove(&ta->grants[at + 1], &ta->grants[at], (ta->n - at) * sizeof(*ta->grants));
    ta->grants[at] = (struct grant){.tenant = copy, .id = id, .kind = kind};
    ta->n++;
    return 0;
}

static void remove_grant(struct tenant_auth *ta, const char *tenant, uint8_t kind, uint32_t id)
{
    bool found;
    size_t at = find(ta, tenant, kind, id, &found);

    if (!found)
        return;
    free(ta->grants[at].tenant);
    memmove(&ta->grants[at], &ta->grants[at + 1], (ta->n - at - 1) * sizeof(*ta->grants));
    ta->n--;
}

void tenant_auth_changed(svc_env *env, const char *tenant, enum tenant_principal kind,
                         uint32_t id, bool granted)
{
    struct tenant_auth *ta = env->tenant_auth;

    if (ta == NULL)
        return;
    ta->changes++; /* a load already in flight may predate this: it is dropped */
    if (!granted) {
        remove_grant(ta, tenant, (uint8_t)kind, id);
    } else if (insert(ta, tenant, (uint8_t)kind, id) < 0) {
        /* The grant is in the database; the next refresh brings it. */
        log_warn("tenant auth: out of memory adding a grant; it applies after the next refresh");
    }
}

/* ---- the check ------------------------------------------------------------ */

static rpc_status authorize(void *data, const net_peer *peer, const char *tenant, arena *a,
                            const char **why)
{
    const struct tenant_auth *ta = data;

    if (peer->uid == 0 || peer->uid == ta->env->rpc->admin_uid)
        return RPC_OK;
    if (!ta->loaded) {
        *why = "tenant grants are not loaded yet (is the database reachable?)";
        return RPC_UNAVAILABLE;
    }
    if (peer->uid != (uid_t)-1) {
        if (has(ta, tenant, TENANT_UID, peer->uid) || has(ta, tenant, TENANT_GID, peer->gid))
            return RPC_OK;
        for (size_t i = 0; i < peer->ngroups; i++)
            if (has(ta, tenant, TENANT_GID, peer->groups[i]))
                return RPC_OK;
    }
    *why = arena_printf(a, "uid %ld may not act for tenant %s (--tenant-auth=peer: see "
                           "Admin.GrantTenant)", (long)(int64_t)peer->uid, tenant);
    if (*why == NULL)
        *why = "this peer may not act for that tenant (--tenant-auth=peer)";
    return RPC_PERMISSION_DENIED;
}

/* ---- loading --------------------------------------------------------------- */

static void on_timer(uv_timer_t *timer);

static void schedule(struct tenant_auth *ta, uint64_t ms)
{
    if (!ta->stopping)
        uv_timer_start(&ta->timer, on_timer, ms, 0);
}

/* The rows of a load as a sorted array; false when out of memory or a row
 * is malformed. */
static bool build(const db_txn *t, struct grant **out, size_t *nout)
{
    int rows = db_rows(t, 0);
    struct grant *g = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*g));
    size_t n = 0;

    if (g == NULL)
        return false;
    for (int r = 0; r < rows; r++) {
        bool is_uid = !db_isnull(t, 0, r, 1);
        int64_t id;

        if (db_int64(t, 0, r, is_uid ? 1 : 2, &id) < 0 || id < 0 || id > UINT32_MAX)
            continue; /* the table's CHECK makes this impossible */
        g[n].tenant = strdup(db_text(t, 0, r, 0));
        if (g[n].tenant == NULL) {
            grants_free(g, n);
            return false;
        }
        g[n].kind = is_uid ? TENANT_UID : TENANT_GID;
        g[n].id = (uint32_t)id;
        n++;
    }
    qsort(g, n, sizeof(*g), cmp_grants);
    *out = g;
    *nout = n;
    return true;
}

static void on_loaded(db_txn *t, void *data)
{
    struct tenant_auth *ta = data;
    struct grant *g;
    size_t n;
    bool was_loaded = ta->loaded;

    ta->loading = false;
    if (db_txn_status(t) != RPC_OK) {
        log_warn("tenant auth: cannot read tenant_grants: %s%s", db_txn_message(t),
                 ta->loaded ? "; keeping the grants read before" : "");
        schedule(ta, 1000);
    } else if (ta->changes != ta->changes_seen) {
        schedule(ta, 0); /* a local change raced the load: read again */
    } else if (!build(t, &g, &n)) {
        log_warn("tenant auth: out of memory reading tenant_grants");
        schedule(ta, 1000);
    } else {
        grants_free(ta->grants, ta->n);
        ta->grants = g;
        ta->n = ta->cap = n;
        ta->loaded = true;
        if (!was_loaded)
            log_info("tenant auth: %zu grants read; peers act only for tenants granted to "
                     "them", n);
        schedule(ta, ta->env->cfg->tenant_grants_refresh_ms);
    }
    arena_deinit(&ta->load_arena);
}

static void load(struct tenant_auth *ta)
{
    db_ctx ctx = {
        .arena = &ta->load_arena,
        .deadline_ms = uv_now(ta->env->loop) + LOAD_TIMEOUT_MS,
        .read_only = true,
    };
    db_txn *t;

    if (ta->loading || ta->stopping || ta->env->pool == NULL)
        return;
    arena_init(&ta->load_arena, LOAD_ARENA_LIMIT, NULL);
    t = db_txn_new(ta->env->pool, &ctx);
    if (t == NULL) {
        arena_deinit(&ta->load_arena);
        schedule(ta, 1000);
        return;
    }
    db_txn_stmt(t, &load_stmt);
    ta->loading = true;
    ta->changes_seen = ta->changes;
    db_txn_run(t, on_loaded, ta);
}

static void on_timer(uv_timer_t *timer)
{
    load(timer->data);
}

/* ---- life ------------------------------------------------------------------- */

int tenant_auth_start(svc_env *env)
{
    struct tenant_auth *ta;

    if (env->cfg->tenant_auth != CFG_TENANT_AUTH_PEER)
        return 0; /* server.c warns once it listens */
    ta = calloc(1, sizeof(*ta));
    if (ta == NULL)
        return -ENOMEM;
    ta->env = env;
    uv_timer_init(env->loop, &ta->timer);
    ta->timer.data = ta;
    env->tenant_auth = ta;
    env->rpc->tenant_auth = authorize;
    env->rpc->tenant_auth_data = ta;
    if (env->cfg->database_url == NULL) /* env->pool comes later */
        log_warn("tenant auth: peer, but no database: only the server's uid and root may "
                 "name a tenant");
    return 0;
}

void tenant_auth_serving(svc_env *env, bool serving)
{
    struct tenant_auth *ta = env->tenant_auth;

    if (ta != NULL && serving)
        load(ta);
}

void tenant_auth_shutdown(svc_env *env)
{
    struct tenant_auth *ta = env->tenant_auth;

    if (ta == NULL || ta->stopping)
        return;
    ta->stopping = true;
    uv_close((uv_handle_t *)&ta->timer, NULL);
}

void tenant_auth_stop(svc_env *env)
{
    struct tenant_auth *ta = env->tenant_auth;

    if (ta == NULL)
        return;
    env->rpc->tenant_auth = NULL;
    env->rpc->tenant_auth_data = NULL;
    grants_free(ta->grants, ta->n);
    free(ta);
    env->tenant_auth = NULL;
}
