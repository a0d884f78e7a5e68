/* WatchQueue: server-streaming calls fed from the outbox (task_events),
 * read once per tenant for all of its streams.
 *
 * A read takes the rows the previous read's snapshot could not see, with
 * the snapshot of the read itself, and that snapshot becomes the cursor:
 * every committed change is read exactly once, in seq order (per task,
 * commit order), however transactions interleave. A stream goes live with
 * a resync event once the tenant has a cursor; from then on it gets every
 * change of its tenant (filtered by its task types), and a resync event
 * when changes may have been missed (a reconnect, a read over the
 * FETCH_LIMIT, reads that failed longer than half the outbox retention).
 *
 * The tenant is the transaction's tenant: row-level security returns the
 * caller's tenant's rows only, so a stream never sees another tenant's. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "services/orchestrator.h"
#include "util/log.h"

#define FETCH_LIMIT 10000

/* One WatchQueue call; lives in the call's arena. */
struct orch_watcher {
    list_node link; /* in the tenant's watchers */
    rpc_call *call;
    const Arbiter__V1__WatchQueueRequest *req;
    bool live; /* got its opening resync */
};

/* The previous read's snapshot in, this read's snapshot and the changes
 * in between out (row 0 always exists: it carries the snapshot). */
static const db_stmt fetch_stmt = {
    .name = "orch_watch_fetch",
    .sql = "SELECT pg_current_snapshot()::text AS _snapshot, e.task_id, e.task_type, e.status,"
           " e.at FROM (SELECT 1) AS one LEFT JOIN LATERAL ("
           " SELECT seq, task_id, task_type, status, at FROM task_events"
           " WHERE xid >= pg_snapshot_xmin($1::pg_snapshot)"
           " AND NOT pg_visible_in_snapshot(xid, $1::pg_snapshot)"
           " ORDER BY seq LIMIT 10000) AS e ON true ORDER BY e.seq",
    .nparams = 1,
};

static void end(struct orch_watcher *w, rpc_status status, const char *why)
{
    list_remove(&w->link);
    rpc_call_finish(w->call, status, why);
}

static bool send_event(struct orch_watcher *w, const Arbiter__V1__QueueEvent *ev)
{
    int rv = rpc_call_send(w->call, &ev->base);

    if (rv == 0)
        return true;
    if (rv == -ENOBUFS)
        end(w, RPC_RESOURCE_EXHAUSTED, "the client does not read its events fast enough");
    else
        end(w, RPC_INTERNAL, "cannot send the event");
    return false;
}

static void resync(struct orch_watcher *w)
{
    Arbiter__V1__QueueEvent ev = ARBITER__V1__QUEUE_EVENT__INIT;

    ev.resync = true;
    if (send_event(w, &ev))
        w->live = true;
}

static bool wants(const struct orch_watcher *w, const char *task_type)
{
    if (!w->live)
        return false;
    for (size_t i = 0; i < w->req->n_task_types; i++)
        if (strcmp(w->req->task_types[i], task_type) == 0)
            return true;
    return w->req->n_task_types == 0;
}

/* Calls |fn| for each stream of |t| (which may end inside). */
static void each_watcher(struct orch_tenant *t, void (*fn)(struct orch_watcher *w))
{
    list_node *n, *next;

    for (n = t->watchers.next; n != &t->watchers; n = next) {
        next = n->next;
        fn(container_of(n, struct orch_watcher, link));
    }
}

static void resync_live(struct orch_watcher *w)
{
    if (w->live)
        resync(w);
}

static void go_live(struct orch_watcher *w)
{
    if (!w->live)
        resync(w);
}

/* Row |row| of the read to every stream that wants it. */
static void publish(struct orch_job *j, struct orch_tenant *t, const db_txn *txn, int row)
{
    struct orchestrator *o = j->o;
    const db_result *r = db_txn_result(txn, 0);
    Arbiter__V1__QueueEvent ev = ARBITER__V1__QUEUE_EVENT__INIT;
    char err[256];
    list_node *n, *next;

    if (o->event_map == NULL || !svc_map_fits(o->event_map, r)) {
        svc_map_free(o->event_map);
        o->event_map = svc_map_new(&arbiter__v1__queue_event__descriptor, r, err, sizeof(err));
    }
    if (o->event_map == NULL ||
        svc_map_row(o->event_map, r, row, &ev.base, &j->arena, err, sizeof(err)) < 0) {
        log_error("orchestrator: an outbox row does not fit QueueEvent: %s", err);
        return;
    }
    for (n = t->watchers.next; n != &t->watchers; n = next) {
        struct orch_watcher *w = container_of(n, struct orch_watcher, link);

        next = n->next;
        if (wants(w, ev.task_type))
            send_event(w, &ev);
    }
}

static void on_fetched(db_txn *txn, void *data)
{
    struct orch_job *j = data;
    struct orchestrator *o = j->o;
    struct orch_tenant *t = orch_tenant_find(o, j->tenant);
    uint64_t now = uv_now(o->loop);
    int n = db_rows(txn, 0);
    char *cursor;

    if (t == NULL) { /* cannot happen: a tenant that reads is kept */
        orch_job_free(j);
        return;
    }
    t->fetching = false;
    cursor = db_txn_status(txn) == RPC_OK && n > 0 ? strdup(db_text(txn, 0, 0, 0)) : NULL;
    if (cursor == NULL) {
        /* The next change or poll reads again (not now: the database may
         * be down, and a failure can come back at once). */
        log_debug("orchestrator: reading the outbox of %s failed: %s", t->id, db_txn_message(txn));
        t->fetch_again = false;
        orch_job_free(j);
        return;
    }
    if (t->fetched_ms != 0 && now - t->fetched_ms > ORCH_RETENTION_MS / 2)
        each_watcher(t, resync_live);
    for (int i = 0; i < n; i++)
        if (!db_isnull(txn, 0, i, 1))
            publish(j, t, txn, i);
    if (n >= FETCH_LIMIT)
        each_watcher(t, resync_live);
    each_watcher(t, go_live);
    free(t->cursor);
    t->cursor = cursor;
    t->fetched_ms = now;
    orch_job_free(j);
    if (t->fetch_again) {
        t->fetch_again = false;
        orch_fetch(o, t);
    }
}

void orch_fetch(struct orchestrator *o, struct orch_tenant *t)
{
    struct orch_job *j;
    db_txn *txn;

    if (t->fetching) {
        t->fetch_again = true;
        return;
    }
    if (o->shutting_down || list_empty(&t->watchers))
        return;
    j = orch_job_new(o, t->id);
    txn = j ? orch_job_txn(j, j->tenant, false) : NULL;
    if (txn == NULL) {
        orch_job_free(j);
        return; /* out of memory: the next poll tries again */
    }
    db_txn_stmt(txn, &fetch_stmt);
    db_param_text(txn, t->cursor);
    t->fetching = true;
    db_txn_run(txn, on_fetched, j);
}

void orch_fetch_all(struct orchestrator *o)
{
    for (list_node *n = o->tenants.next; n != &o->tenants; n = n->next)
        orch_fetch(o, container_of(n, struct orch_tenant, link));
}

void orch_resync_all(struct orchestrator *o)
{
    for (list_node *n = o->tenants.next; n != &o->tenants; n = n->next) {
        struct orch_tenant *t = container_of(n, struct orch_tenant, link);

        each_watcher(t, resync_live);
        orch_fetch(o, t);
    }
}

static void on_watcher_cancel(void *data)
{
    struct orch_watcher *w = data;

    list_remove(&w->link);
}

void orch_watch(rpc_call *call, const ProtobufCMessage *request, void *data)
{
    struct orchestrator *o = svc_entry_env(data)->orchestrator;
    struct orch_watcher *w = rpc_call_alloc(call, sizeof(*w));
    struct orch_tenant *t;

    if (o->shutting_down) {
        rpc_call_finish(call, RPC_UNAVAILABLE, "server is shutting down");
        return;
    }
    if (!o->timers) {
        rpc_call_finish(call, RPC_UNAVAILABLE, "no database configured");
        return;
    }
    orch_use(o);
    t = orch_tenant_get(o, rpc_call_tenant(call));
    if (w == NULL || t == NULL) {
        svc_oom(call);
        return;
    }
    w->call = call;
    w->req = (const Arbiter__V1__WatchQueueRequest *)request;
    if (list_empty(&t->watchers)) {
        /* Nobody watched: an old cursor would replay what came before. */
        free(t->cursor);
        t->cursor = NULL;
        t->fetched_ms = 0;
    }
    list_push(&t->watchers, &w->link);
    rpc_call_on_cancel(call, on_watcher_cancel, w);
    if (t->cursor != NULL)
        go_live(w);
    else
        orch_fetch(o, t);
}

void orch_end_watches(struct orchestrator *o)
{
    for (list_node *n = o->tenants.next; n != &o->tenants; n = n->next) {
        struct orch_tenant *t = container_of(n, struct orch_tenant, link);

        while (!list_empty(&t->watchers))
            end(container_of(t->watchers.next, struct orch_watcher, link), RPC_UNAVAILABLE,
                "server is shutting down");
    }
}
