/* DequeueTasks: the dequeue statement of the method table, and with
 * wait_ms a long poll that holds no pool connection while it waits.
 *
 *   dequeue ──tasks──▶ answer
 *      │ none, wait left
 *      ▼
 *   waiting (in the tenant's list; the call's cancel hook leaves it)
 *      │ woken: tasks became available here or on another server (a
 *      │ hint), or the polling period passed
 *      ▼
 *   dequeue again ... until the wait ends: answer empty.
 *
 * A change that commits while a dequeue runs would wake nobody: so the
 * dequeue notes the tenant's change count first and, when it finds
 * nothing, runs again at once if the count moved. The wait ends
 * WAIT_MARGIN_MS before the call's deadline, so the empty answer still
 * reaches the client in time. */
#include <stdlib.h>

#include "services/orchestrator.h"

#define WAIT_MARGIN_MS 50

/* One DequeueTasks call; lives in the call's arena. */
struct orch_waiter {
    list_node link; /* in the tenant's waiters while waiting */
    rpc_call *call;
    svc_entry *e;
    struct orchestrator *o;
    const Arbiter__V1__DequeueTasksRequest *req;
    uint64_t wait_end_ms, next_poll_ms;
    uint64_t serial, gen; /* the tenant state and its count when the dequeue began */
};

static void dequeue(struct orch_waiter *w);
static void on_wait_timer(uv_timer_t *h);

static void reply(struct orch_waiter *w, const db_txn *t, int n)
{
    Arbiter__V1__DequeueTasksResponse resp = ARBITER__V1__DEQUEUE_TASKS_RESPONSE__INIT;
    Arbiter__V1__Task **items = svc_alloc_array(w->call, (size_t)n, sizeof(*items));

    if (n > 0 && items == NULL) {
        svc_oom(w->call);
        return;
    }
    for (int i = 0; i < n; i++) {
        items[i] = (Arbiter__V1__Task *)svc_entry_row(w->call, w->e, 0, t, i);
        if (items[i] == NULL)
            return;
    }
    resp.tasks = items;
    resp.n_tasks = (size_t)n;
    rpc_call_reply(w->call, &resp.base);
}

static uint64_t due_of(const struct orch_waiter *w)
{
    return w->wait_end_ms < w->next_poll_ms ? w->wait_end_ms : w->next_poll_ms;
}

/* Starts the wait timer for |due| (uv_now() time). */
static void arm_at(struct orchestrator *o, uint64_t due)
{
    uint64_t now = uv_now(o->loop);

    o->wait_due_ms = due;
    uv_timer_start(&o->wait_timer, on_wait_timer, due > now ? due - now : 0, 0);
}

/* Re-arms the wait timer for the earliest end of a wait or poll. */
static void arm(struct orchestrator *o)
{
    uint64_t due = UINT64_MAX;

    if (!o->timers)
        return;
    for (list_node *n = o->tenants.next; n != &o->tenants; n = n->next) {
        struct orch_tenant *t = container_of(n, struct orch_tenant, link);

        for (list_node *m = t->waiters.next; m != &t->waiters; m = m->next) {
            uint64_t d = due_of(container_of(m, struct orch_waiter, link));

            due = d < due ? d : due;
        }
    }
    if (due == UINT64_MAX)
        uv_timer_stop(&o->wait_timer);
    else
        arm_at(o, due);
}

static void on_waiter_cancel(void *data)
{
    struct orch_waiter *w = data;

    list_remove(&w->link);
}

/* Leaves the waiting list (the call is still running). */
static void unwait(struct orch_waiter *w)
{
    list_remove(&w->link);
    rpc_call_on_cancel(w->call, NULL, NULL);
}

static void wait_on(struct orch_waiter *w, struct orch_tenant *t)
{
    w->next_poll_ms = uv_now(w->o->loop) + orch_poll_ms(w->o);
    list_push(&t->waiters, &w->link);
    rpc_call_on_cancel(w->call, on_waiter_cancel, w);
    /* Only an earlier due time moves the timer: waiting stays O(1). */
    if (!uv_is_active((uv_handle_t *)&w->o->wait_timer) || due_of(w) < w->o->wait_due_ms)
        arm_at(w->o, due_of(w));
}

static bool may_wait(const struct orch_waiter *w)
{
    return w->req->wait_ms > 0 && !w->o->shutting_down && w->o->timers &&
           uv_now(w->o->loop) < w->wait_end_ms;
}

static void on_dequeued(db_txn *txn, void *data)
{
    struct orch_waiter *w = data;
    const char *tenant = rpc_call_tenant(w->call);
    struct orch_tenant *t;
    int n;

    if (svc_entry_failed(w->call, w->e, txn))
        return;
    n = db_rows(txn, 0);
    if (n > 0 || !may_wait(w)) {
        if (n > 0)
            orch_changed(w->o, tenant, false); /* before the call may end */
        reply(w, txn, n);
        return;
    }
    t = orch_tenant_get(w->o, tenant);
    if (t == NULL) {
        reply(w, txn, 0);
        return;
    }
    if (t->serial != w->serial || t->gen != w->gen)
        dequeue(w); /* something became available while it ran */
    else
        wait_on(w, t);
}

static void dequeue(struct orch_waiter *w)
{
    struct orch_tenant *t = NULL;
    db_txn *txn;

    if (w->req->wait_ms > 0)
        t = orch_tenant_get(w->o, rpc_call_tenant(w->call));
    w->serial = t ? t->serial : 0;
    w->gen = t ? t->gen : 0;
    txn = svc_txn_new(w->call, svc_entry_env(w->e));
    if (txn == NULL || !svc_entry_add(w->call, w->e, 0, txn, &w->req->base, NULL))
        return;
    db_txn_run(txn, on_dequeued, w);
}

void orch_dequeue(rpc_call *call, const ProtobufCMessage *request, void *data)
{
    struct orch_waiter *w = rpc_call_alloc(call, sizeof(*w));
    uint64_t now, deadline = rpc_call_deadline_ms(call);

    if (w == NULL) {
        svc_oom(call);
        return;
    }
    list_init(&w->link);
    w->call = call;
    w->e = data;
    w->o = svc_entry_env(w->e)->orchestrator;
    w->req = (const Arbiter__V1__DequeueTasksRequest *)request;
    orch_use(w->o);
    now = uv_now(w->o->loop);
    w->wait_end_ms = now + (uint64_t)w->req->wait_ms;
    if (deadline != UINT64_MAX && deadline < w->wait_end_ms + WAIT_MARGIN_MS)
        w->wait_end_ms = deadline > now + WAIT_MARGIN_MS ? deadline - WAIT_MARGIN_MS : now;
    dequeue(w);
}

/* Every waiter of |t| dequeues again. The list is taken first: a dequeue
 * that fails at once must not find itself in it again. */
void orch_wake_waiters(struct orchestrator *o, struct orch_tenant *t)
{
    list_node woken;

    (void)o;
    if (list_empty(&t->waiters))
        return;
    woken = t->waiters;
    woken.next->prev = &woken;
    woken.prev->next = &woken;
    list_init(&t->waiters);
    while (!list_empty(&woken)) {
        struct orch_waiter *w = container_of(woken.next, struct orch_waiter, link);

        unwait(w);
        dequeue(w);
    }
}

void orch_wake_all(struct orchestrator *o)
{
    for (list_node *n = o->tenants.next; n != &o->tenants; n = n->next)
        orch_wake_waiters(o, container_of(n, struct orch_tenant, link));
}

/* Waits that ended answer empty; waits due for a poll dequeue again. */
static void on_wait_timer(uv_timer_t *h)
{
    struct orchestrator *o = h->data;
    uint64_t now = uv_now(o->loop);

    for (list_node *n = o->tenants.next; n != &o->tenants; n = n->next) {
        struct orch_tenant *t = container_of(n, struct orch_tenant, link);
        list_node *m = t->waiters.next, *next;

        for (; m != &t->waiters; m = next) {
            struct orch_waiter *w = container_of(m, struct orch_waiter, link);

            next = m->next;
            if (now >= w->wait_end_ms) {
                unwait(w);
                reply(w, NULL, 0);
            } else if (now >= w->next_poll_ms) {
                unwait(w);
                dequeue(w);
            }
        }
    }
    arm(o);
}

void orch_end_waits(struct orchestrator *o)
{
    for (list_node *n = o->tenants.next; n != &o->tenants; n = n->next) {
        struct orch_tenant *t = container_of(n, struct orch_tenant, link);

        while (!list_empty(&t->waiters)) {
            struct orch_waiter *w = container_of(t->waiters.next, struct orch_waiter, link);

            unwait(w);
            reply(w, NULL, 0);
        }
    }
}
