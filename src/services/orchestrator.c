/* arbiter.v1.Orchestrator: a task queue per tenant (UPSTREAM.md §2.5 and
 * migration 002's task_queue and task_assignments) as a method table over
 * migrations/0007_orchestrator.sql, plus what a table cannot say: the long
 * poll (orchestrator_poll.c), the stream (orchestrator_watch.c) and the
 * server's housekeeping (orchestrator_house.c). orchestrator.h tells how a
 * change travels.
 *
 * Upstream's orchestrator client exposed generic query() and transaction()
 * calls; nothing here runs caller-supplied SQL: every statement is below,
 * and every one is scoped to the caller's tenant by row-level security. */
#include "services/orchestrator.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/pool.h"
#include "services/services.h"
#include "util/log.h"
#include "util/strbuf.h"

#define CHANNEL "arbiter_queue"
#define HINT_DEBOUNCE_MS 3
#define JOB_DEADLINE_MS 10000

/* A tenant to NOTIFY about when the debounce ends. */
struct orch_hint {
    list_node link;
    bool available;
    char tenant[ORCH_TENANT_MAX + 1];
};

/* A column named after a field under |p| ("task." or ""). */
#define COL(p, c) c " AS \"" p c "\""
/* One Task, and one Assignment, as every method answers them: one column
 * a line (bench/orchestrator.sh reads the list too). */
/* clang-format off */
#define TASK_COLS_AS(p)                                                                            \
    COL(p, "id") ", "                                                                              \
    COL(p, "task_type") ", "                                                                       \
    COL(p, "priority") ", "                                                                        \
    COL(p, "payload_json") ", "                                                                    \
    COL(p, "status") ", "                                                                          \
    COL(p, "attempts") ", "                                                                        \
    COL(p, "max_attempts") ", "                                                                    \
    COL(p, "timeout_ms") ", "                                                                      \
    COL(p, "run_after") ", "                                                                       \
    COL(p, "lease_token") ", "                                                                     \
    COL(p, "lease_expires_at") ", "                                                                \
    COL(p, "leased_by") ", "                                                                       \
    COL(p, "idempotency_key") ", "                                                                 \
    COL(p, "last_error") ", "                                                                      \
    COL(p, "result_json") ", "                                                                     \
    COL(p, "created_at") ", "                                                                      \
    COL(p, "updated_at") ", "                                                                      \
    COL(p, "budget_max_files") ", "                                                                \
    COL(p, "budget_max_loc")
#define ASSIGNMENT_COLS_AS(p)                                                                      \
    COL(p, "id") ", "                                                                              \
    COL(p, "task_id") ", "                                                                         \
    COL(p, "agent_id") ", "                                                                        \
    COL(p, "routing_strategy") ", "                                                                \
    COL(p, "status") ", "                                                                          \
    COL(p, "assigned_at") ", "                                                                     \
    COL(p, "updated_at")
/* clang-format on */
#define TASK_COLS TASK_COLS_AS("")

#define INT32_MAX_D 2147483647
#define DAY_MS 86400000
#define TASK_CHECKS(t)                                                                             \
    SVC_LEN(t ".task_type", 1, 255), SVC_RANGE(t ".priority", 0, 10),                              \
        SVC_JSON_OBJECT(t ".payload_json"), SVC_RANGE(t ".max_attempts", 0, 100),                  \
        SVC_RANGE(t ".timeout_ms", 0, DAY_MS), SVC_LEN(t ".idempotency_key", 0, 255),              \
        SVC_RANGE(t ".budget_max_files", 0, INT32_MAX_D),                                          \
        SVC_RANGE(t ".budget_max_loc", 0, INT32_MAX_D)
#define FULL_QUEUE                                                                                 \
    {                                                                                              \
        RPC_RESOURCE_EXHAUSTED, "the tenant's task queue is at capacity (Admin.SetQueueCapacity)"  \
    }
#define LEASE_LOST                                                                                 \
    {                                                                                              \
        RPC_FAILED_PRECONDITION,                                                                   \
            "lease lost: the task is not leased with this token any more (expired, taken back, "   \
            "cancelled or finished)"                                                               \
    }

/* The dequeue (DequeueTasks' handler runs it): the LIMIT runs once, in a
 * MATERIALIZED CTE; locked rows are skipped, not waited for; NO KEY
 * UPDATE leaves the key share locks of assignments being made alone. */
static const char dequeue_sql[] =
    "WITH picked AS MATERIALIZED ("
    " SELECT tenant_id, id FROM tasks"
    " WHERE status = 'QUEUED' AND run_after <= now()"
    " AND (cardinality($2::text[]) = 0 OR task_type = ANY ($2::text[]))"
    " ORDER BY priority DESC, run_after, id"
    " LIMIT COALESCE(NULLIF($3::integer, 0), 1)"
    " FOR NO KEY UPDATE SKIP LOCKED),"
    " leased AS (UPDATE tasks t SET status = 'LEASED', attempts = t.attempts + 1,"
    " lease_token = gen_random_uuid(),"
    " lease_expires_at = now() + COALESCE(NULLIF($4::integer, 0), t.timeout_ms)"
    " * interval '1 millisecond',"
    " leased_by = $1, leased_at = now(), updated_at = now()"
    " FROM picked p WHERE t.tenant_id = p.tenant_id AND t.id = p.id RETURNING t.*)"
    " SELECT " TASK_COLS " FROM leased ORDER BY priority DESC, run_after, id";

/* Everything in one pass over the tenant's tasks. */
static const char stats_sql[] =
    "SELECT count(*) FILTER (WHERE status = 'QUEUED') AS queued,"
    " count(*) FILTER (WHERE status = 'LEASED') AS leased,"
    " count(*) FILTER (WHERE status = 'COMPLETED') AS completed,"
    " count(*) FILTER (WHERE status = 'FAILED') AS failed,"
    " count(*) FILTER (WHERE status = 'DEAD') AS dead,"
    " count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled,"
    " COALESCE(extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'QUEUED'))"
    " * 1000, 0)::float8 AS oldest_queued_age_ms,"
    " count(*) FILTER (WHERE status = 'COMPLETED' AND finished_at > now() - interval '1 minute')"
    " AS completed_last_minute,"
    " count(*) FILTER (WHERE last_failed_at > now() - interval '1 minute')"
    " AS failed_last_minute,"
    " COALESCE(avg(extract(epoch FROM leased_at - run_after) * 1000)"
    " FILTER (WHERE leased_at > now() - interval '1 minute'), 0)::float8 AS average_wait_ms,"
    " COALESCE(avg(extract(epoch FROM finished_at - leased_at) * 1000)"
    " FILTER (WHERE status = 'COMPLETED' AND finished_at > now() - interval '1 minute'), 0)::float8"
    " AS average_run_ms,"
    " count(*) FILTER (WHERE last_rescued_at > now() - interval '1 minute') AS rescued_last_minute,"
    " COALESCE(sum(rescues), 0) AS rescued_total,"
    " COALESCE((SELECT capacity FROM queue_settings), 1000) AS capacity,"
    " now() AS as_of FROM tasks";

/* The new row first, then the agent's load row: the lock order of
 * orchestrator_update_assignment, so the two cannot deadlock. */
static const char assign_sql[] =
    "WITH a AS (INSERT INTO task_assignments (task_id, agent_id, routing_strategy)"
    " VALUES ($1::uuid, $2::uuid, $3) RETURNING *),"
    " l AS (UPDATE agent_load SET active_tasks = active_tasks + 1 FROM a"
    " WHERE agent_load.agent_id = a.agent_id RETURNING 1)"
    " SELECT " ASSIGNMENT_COLS_AS("") " FROM a";

static void changed(rpc_call *call, const svc_entry *e, const ProtobufCMessage *req,
                    const db_txn *t)
{
    (void)req;
    (void)t;
    orch_changed(svc_entry_env(e)->orchestrator, rpc_call_tenant(call), false);
}

static void made_available(rpc_call *call, const svc_entry *e, const ProtobufCMessage *req,
                           const db_txn *t)
{
    (void)req;
    (void)t;
    orch_changed(svc_entry_env(e)->orchestrator, rpc_call_tenant(call), true);
}

static const svc_method methods[] = {
    {
        .name = "EnqueueTask",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_REQUIRED("task"), TASK_CHECKS("task")),
        .stmts = {{"SELECT " TASK_COLS " FROM orchestrator_enqueue(jsonb_build_array($1::jsonb))",
                   SVC_PARAMS("task")}},
        .errors = SVC_ERRORS(FULL_QUEUE),
        .committed = made_available,
    },
    {
        .name = "EnqueueTasks",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_ITEMS("tasks", 1000, 0, 0), TASK_CHECKS("tasks")),
        .stmts = {{"SELECT " TASK_COLS " FROM orchestrator_enqueue($1::jsonb) WITH ORDINALITY"
                   " ORDER BY ordinality",
                   SVC_PARAMS("tasks")}},
        .reply = SVC_ROWS,
        .field = "tasks",
        .errors = SVC_ERRORS(FULL_QUEUE),
        .committed = made_available,
    },
    {
        .name = "DequeueTasks",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_LEN("worker_id", 1, 255), SVC_ITEMS("task_types", 64, 1, 255),
                             SVC_RANGE("max", 0, 100), SVC_RANGE("lease_ms", 0, DAY_MS),
                             SVC_RANGE("wait_ms", 0, 30000)),
        .stmts = {{dequeue_sql, SVC_PARAMS("worker_id", "task_types", "max", "lease_ms"),
                   &arbiter__v1__task__descriptor}},
        .handler = orch_dequeue,
    },
    {
        .name = "Heartbeat",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_UUID("task_id"), SVC_UUID("lease_token"),
                             SVC_RANGE("extend_ms", 0, DAY_MS)),
        .stmts = {{"SELECT " TASK_COLS " FROM orchestrator_heartbeat($1::uuid, $2::uuid, $3)",
                   SVC_PARAMS("task_id", "lease_token", "extend_ms")}},
        .not_found = "task not found",
        .errors = SVC_ERRORS(LEASE_LOST),
    },
    {
        .name = "CompleteTask",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_UUID("task_id"), SVC_UUID("lease_token"),
                             SVC_JSON_OBJECT("result_json")),
        .stmts = {{"SELECT " TASK_COLS_AS("task.") " FROM orchestrator_complete($1::uuid,"
                                                   " $2::uuid, $3)",
                   SVC_PARAMS("task_id", "lease_token", "result_json")}},
        .not_found = "task not found",
        .errors = SVC_ERRORS(LEASE_LOST),
        .committed = changed,
    },
    {
        /* Back to QUEUED after a backoff in the future, so no long poll
         * can take it now: polling finds it once run_after passed. */
        .name = "FailTask",
        .flags = SVC_TENANT,
        .checks =
            SVC_CHECKS(SVC_UUID("task_id"), SVC_UUID("lease_token"), SVC_LEN("error", 0, 10000)),
        .stmts = {{"SELECT " TASK_COLS_AS("task.") " FROM orchestrator_fail($1::uuid, $2::uuid,"
                                                   " $3, $4::boolean)",
                   SVC_PARAMS("task_id", "lease_token", "error", "retryable")}},
        .not_found = "task not found",
        .errors = SVC_ERRORS(LEASE_LOST),
        .committed = changed,
    },
    {
        .name = "CancelTask",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_UUID("id")),
        .stmts = {{"SELECT " TASK_COLS_AS("task.") " FROM orchestrator_cancel($1::uuid)",
                   SVC_PARAMS("id")}},
        .not_found = "task not found",
        .errors = SVC_ERRORS({RPC_FAILED_PRECONDITION, "task already completed"}),
        .committed = changed,
    },
    {
        .name = "RetryDeadTask",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_UUID("id")),
        .stmts = {{"SELECT " TASK_COLS_AS("task.") " FROM orchestrator_retry_dead($1::uuid)",
                   SVC_PARAMS("id")}},
        .not_found = "task not found",
        .errors = SVC_ERRORS({RPC_FAILED_PRECONDITION, "task is not DEAD"}),
        .committed = made_available,
    },
    {
        .name = "GetTask",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .checks = SVC_CHECKS(SVC_UUID("id")),
        .stmts = {{"SELECT " TASK_COLS_AS("task.") " FROM tasks WHERE id = $1::uuid",
                   SVC_PARAMS("id")}},
        .not_found = "task not found",
    },
    {
        .name = "ListTasks",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .checks = SVC_CHECKS(SVC_ENUM_OPT("status"), SVC_LEN("task_type", 0, 255)),
        .stmts = {{"SELECT " TASK_COLS " FROM tasks"
                   " WHERE ($3::text IS NULL OR status = $3) AND ($4 = '' OR task_type = $4)"
                   " AND (created_at, id) < (COALESCE($2::timestamptz, 'infinity'),"
                   " COALESCE($5::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))"
                   " ORDER BY created_at DESC, id DESC LIMIT $1",
                   SVC_PARAMS("@limit", "@after.1", "status", "task_type", "@after.2")}},
        .reply = SVC_PAGE,
        .field = "tasks",
        .keys = SVC_KEYS("created_at", "id"),
    },
    {
        .name = "GetQueueStats",
        .flags = SVC_TENANT | SVC_READ_ONLY,
        .stmts = {{stats_sql, NULL}},
    },
    {
        .name = "AssignTask",
        .flags = SVC_TENANT,
        .checks =
            SVC_CHECKS(SVC_UUID("task_id"), SVC_UUID("agent_id"), SVC_ENUM("routing_strategy")),
        .stmts = {{assign_sql, SVC_PARAMS("task_id", "agent_id", "routing_strategy")}},
        .errors = SVC_ERRORS(
            {RPC_FAILED_PRECONDITION, "task_id, agent_id: no such task or agent in this tenant"},
            {RPC_ALREADY_EXISTS, "task_id: the task already has an assignment in progress"}),
    },
    {
        .name = "UpdateAssignment",
        .flags = SVC_TENANT,
        .checks = SVC_CHECKS(SVC_UUID("id"), SVC_ENUM("status")),
        .stmts = {{"SELECT " ASSIGNMENT_COLS_AS(
                       "assignment.") " FROM"
                                      " orchestrator_update_assignment($1::uuid, $2)",
                   SVC_PARAMS("id", "status")}},
        .not_found = "assignment not found",
        .errors = SVC_ERRORS({RPC_FAILED_PRECONDITION, "status: assignments move forward only"}),
    },
    {
        .name = "WatchQueue",
        .flags = SVC_TENANT | SVC_STREAMING | SVC_READ_ONLY,
        .checks = SVC_CHECKS(SVC_ITEMS("task_types", 64, 1, 255)),
        .handler = orch_watch,
    },
};

/* ---- tenants ------------------------------------------------------------ */

struct orch_tenant *orch_tenant_find(struct orchestrator *o, const char *id)
{
    for (list_node *n = o->tenants.next; n != &o->tenants; n = n->next) {
        struct orch_tenant *t = container_of(n, struct orch_tenant, link);

        if (strcmp(t->id, id) == 0) {
            t->used_ms = uv_now(o->loop);
            return t;
        }
    }
    return NULL;
}

struct orch_tenant *orch_tenant_get(struct orchestrator *o, const char *id)
{
    struct orch_tenant *t = orch_tenant_find(o, id);

    if (t != NULL || strlen(id) > ORCH_TENANT_MAX)
        return t;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    memcpy(t->id, id, strlen(id) + 1);
    t->serial = ++o->serials;
    t->used_ms = uv_now(o->loop);
    list_init(&t->waiters);
    list_init(&t->watchers);
    list_push(&o->tenants, &t->link);
    return t;
}

static void tenant_free(struct orch_tenant *t)
{
    list_remove(&t->link);
    free(t->cursor);
    free(t);
}

/* Frees the states nothing used for a while (|all|: every one). */
static void tenants_sweep(struct orchestrator *o, bool all)
{
    uint64_t now = uv_now(o->loop);
    list_node *n, *next;

    for (n = o->tenants.next; n != &o->tenants; n = next) {
        struct orch_tenant *t = container_of(n, struct orch_tenant, link);

        next = n->next;
        if (all || (list_empty(&t->waiters) && list_empty(&t->watchers) && !t->fetching &&
                    now - t->used_ms > 10 * ORCH_POLL_UP_MS))
            tenant_free(t);
    }
}

/* ---- changes and hints ----------------------------------------------------- */

static void tenant_changed(struct orchestrator *o, struct orch_tenant *t, bool available)
{
    if (available) {
        t->gen++;
        orch_wake_waiters(o, t);
    }
    if (!list_empty(&t->watchers))
        orch_fetch(o, t);
}

static void on_hint_timer(uv_timer_t *h)
{
    struct orchestrator *o = h->data;
    char payload[ORCH_TENANT_MAX + 32];

    while (!list_empty(&o->hints)) {
        struct orch_hint *x = container_of(o->hints.next, struct orch_hint, link);

        list_remove(&x->link);
        /* The counter keeps payloads distinct: PostgreSQL folds identical
         * ones sent in one transaction into one. */
        snprintf(payload, sizeof(payload), "%c %" PRIu64 " %s", x->available ? 'A' : 'C',
                 ++o->hint_seq, x->tenant);
        if (db_listen_notify(o->listen, payload) == 0)
            o->hints_sent++;
        free(x);
    }
}

/* Queues the NOTIFY for |tenant|: one per tenant per debounce period. */
static void hint(struct orchestrator *o, const char *tenant, bool available)
{
    struct orch_hint *x;

    if (o->listen == NULL || !o->listen_up || o->shutting_down)
        return;
    for (list_node *n = o->hints.next; n != &o->hints; n = n->next) {
        x = container_of(n, struct orch_hint, link);
        if (strcmp(x->tenant, tenant) == 0) {
            x->available = x->available || available;
            return;
        }
    }
    x = calloc(1, sizeof(*x));
    if (x == NULL || strlen(tenant) > ORCH_TENANT_MAX) {
        free(x);
        return; /* a lost hint: the other servers poll */
    }
    memcpy(x->tenant, tenant, strlen(tenant) + 1);
    x->available = available;
    list_push(&o->hints, &x->link);
    if (!uv_is_active((uv_handle_t *)&o->hint_timer))
        uv_timer_start(&o->hint_timer, on_hint_timer, HINT_DEBOUNCE_MS, 0);
}

void orch_changed(struct orchestrator *o, const char *tenant, bool available)
{
    struct orch_tenant *t;

    if (o == NULL || tenant == NULL)
        return;
    orch_use(o);
    t = orch_tenant_find(o, tenant);
    if (t != NULL)
        tenant_changed(o, t, available);
    hint(o, tenant, available);
}

/* A hint from another server: "<A|C> <n> <tenant>". Anything else is
 * ignored: the channel is public to the database's roles. */
static void on_notified(void *data, const char *payload, bool own)
{
    struct orchestrator *o = data;
    const char *sp = strchr(payload, ' ');
    const char *tenant = sp ? strchr(sp + 1, ' ') : NULL;
    struct orch_tenant *t;

    o->notifications++;
    if (own || tenant == NULL || (payload[0] != 'A' && payload[0] != 'C'))
        return;
    t = orch_tenant_find(o, tenant + 1);
    if (t != NULL)
        tenant_changed(o, t, payload[0] == 'A');
}

/* Notifications flow again after a loss: some were missed. */
static void on_listen_up(void *data, bool up)
{
    struct orchestrator *o = data;

    o->listen_up = up;
    if (!up)
        return;
    if (o->listen_was_up)
        orch_resync_all(o);
    o->listen_was_up = true;
    orch_wake_all(o);
    orch_fetch_all(o);
}

uint64_t orch_poll_ms(const struct orchestrator *o)
{
    return o->listen_up ? ORCH_POLL_UP_MS : ORCH_POLL_DOWN_MS;
}

/* ---- jobs ------------------------------------------------------------------ */

struct orch_job *orch_job_new(struct orchestrator *o, const char *tenant)
{
    struct orch_job *j = calloc(1, sizeof(*j));

    if (j == NULL || (tenant != NULL && strlen(tenant) > ORCH_TENANT_MAX)) {
        free(j);
        return NULL;
    }
    j->o = o;
    list_init(&j->link);
    arena_init(&j->arena, 0, NULL);
    if (tenant != NULL)
        memcpy(j->tenant, tenant, strlen(tenant) + 1);
    return j;
}

static void reap(struct orchestrator *o)
{
    while (!list_empty(&o->finished)) {
        struct orch_job *j = container_of(o->finished.next, struct orch_job, link);

        list_remove(&j->link);
        arena_deinit(&j->arena);
        free(j);
    }
}

static void on_reap_timer(uv_timer_t *h)
{
    reap(h->data);
}

void orch_job_free(struct orch_job *j)
{
    if (j == NULL)
        return;
    assert(list_empty(&j->link)); /* freed once */
    list_push(&j->o->finished, &j->link);
    if (j->o->timers && !uv_is_active((uv_handle_t *)&j->o->reap_timer))
        uv_timer_start(&j->o->reap_timer, on_reap_timer, 0, 0);
}

db_txn *orch_job_txn(struct orch_job *j, const char *tenant, bool background)
{
    db_ctx ctx = {
        .arena = &j->arena,
        .tenant = tenant,
        .deadline_ms = uv_now(j->o->loop) + JOB_DEADLINE_MS,
        .background = background,
    };

    return db_txn_new(j->o->env->pool, &ctx);
}

/* ---- the service's hooks ------------------------------------------------ */

static void on_house_timer(uv_timer_t *h)
{
    struct orchestrator *o = h->data;

    o->ticks++;
    if (o->ticks % 2 == 0)
        orch_house_tick(o);
    /* Streams poll the outbox: each tick without notifications, each
     * ORCH_POLL_UP_MS with them (changes by servers without a LISTEN
     * connection send no hint). */
    if (!o->listen_up || o->ticks % (ORCH_POLL_UP_MS / ORCH_TICK_MS) == 0)
        orch_fetch_all(o);
    if (o->ticks % 40 == 0)
        tenants_sweep(o, false);
}

/* Decides on the LISTEN connection at start-up; it opens at first use. */
static int plan_listen(struct orchestrator *o)
{
    const char *url = cfg_listen_url(o->env->cfg);
    int rv;

    if (url == NULL) {
        log_warn("orchestrator: no LISTEN connection (--no-prepared-statements without "
                 "--listen-database-url): DequeueTasks long polls and WatchQueue poll every "
                 "%d ms",
                 ORCH_POLL_DOWN_MS);
        return 0;
    }
    rv = db_listen_check(url);
    if (rv == -EINVAL && o->env->cfg->listen_database_url == NULL)
        return 0; /* the --database-url itself: the pool reports it (exit 2) */
    if (rv == -EINVAL)
        log_error("orchestrator: --listen-database-url: not a valid libpq conninfo string or URI");
    if (rv == 0)
        o->listen_url = url;
    return rv;
}

void orch_use(struct orchestrator *o)
{
    static const struct db_listen_events events = {
        .notified = on_notified,
        .up_changed = on_listen_up,
    };
    struct db_listen_events ev = events;

    if (o == NULL || o->listen != NULL || o->listen_url == NULL || o->shutting_down)
        return;
    ev.data = o;
    if (db_listen_new(o->loop, o->listen_url, CHANNEL, &ev, &o->listen) < 0) {
        log_error("orchestrator: cannot start the LISTEN connection; waits and streams poll");
        o->listen_url = NULL;
    }
}

static void init_timer(struct orchestrator *o, uv_timer_t *t)
{
    uv_timer_init(o->loop, t);
    t->data = o;
}

static int start(svc_env *env)
{
    struct orchestrator *o = calloc(1, sizeof(*o));
    int rv;

    if (o == NULL)
        return -ENOMEM;
    o->env = env;
    o->loop = env->loop;
    list_init(&o->tenants);
    list_init(&o->hints);
    list_init(&o->finished);
    env->orchestrator = o;
    rv = svc_table_register(env, &arbiter__v1__orchestrator__descriptor, methods,
                            sizeof(methods) / sizeof(methods[0]));
    if (rv < 0 || env->cfg->database_url == NULL)
        return rv; /* without a database there is nothing to keep house for */
    init_timer(o, &o->wait_timer);
    init_timer(o, &o->house_timer);
    init_timer(o, &o->hint_timer);
    init_timer(o, &o->reap_timer);
    init_timer(o, &o->step_timer);
    o->timers = true;
    uv_timer_start(&o->house_timer, on_house_timer, ORCH_TICK_MS, ORCH_TICK_MS);
    return plan_listen(o);
}

/* Without a LISTEN connection, the pool's return is the database's
 * reconnect: streams may have missed changes while it was away. */
static void serving_changed(svc_env *env, bool serving)
{
    struct orchestrator *o = env->orchestrator;

    if (o == NULL)
        return;
    if (!serving) {
        o->pool_was_down = true;
        return;
    }
    if (o->pool_was_down && o->listen_url == NULL)
        orch_resync_all(o);
    o->pool_was_down = false;
}

static void on_shutdown(svc_env *env)
{
    struct orchestrator *o = env->orchestrator;

    if (o == NULL || o->shutting_down)
        return;
    o->shutting_down = true;
    orch_end_waits(o);
    orch_end_watches(o);
    while (!list_empty(&o->hints)) {
        struct orch_hint *x = container_of(o->hints.next, struct orch_hint, link);

        list_remove(&x->link);
        free(x);
    }
    db_listen_close(o->listen);
    o->listen = NULL;
    if (o->timers) {
        uv_close((uv_handle_t *)&o->wait_timer, NULL);
        uv_close((uv_handle_t *)&o->house_timer, NULL);
        uv_close((uv_handle_t *)&o->hint_timer, NULL);
        uv_close((uv_handle_t *)&o->reap_timer, NULL);
        uv_close((uv_handle_t *)&o->step_timer, NULL);
        o->timers = false;
    }
    if (o->house_job != NULL) { /* a round between two steps: it ends here */
        orch_job_free(o->house_job);
        o->house_job = NULL;
    }
}

static void stop(svc_env *env)
{
    struct orchestrator *o = env->orchestrator;

    if (o == NULL)
        return;
    tenants_sweep(o, true);
    reap(o);
    svc_map_free(o->event_map);
    free(o);
    env->orchestrator = NULL;
}

static void metrics(svc_env *env, strbuf *out)
{
    const struct orchestrator *o = env->orchestrator;

    if (o == NULL)
        return;
    strbuf_printf(out,
                  "# HELP arbiterd_orchestrator_leases_rescued_total Expired leases the server "
                  "took back, by the task's new status.\n"
                  "# TYPE arbiterd_orchestrator_leases_rescued_total counter\n"
                  "arbiterd_orchestrator_leases_rescued_total{status=\"QUEUED\"} %" PRIu64 "\n"
                  "arbiterd_orchestrator_leases_rescued_total{status=\"DEAD\"} %" PRIu64 "\n"
                  "# HELP arbiterd_orchestrator_events_pruned_total Outbox rows pruned.\n"
                  "# TYPE arbiterd_orchestrator_events_pruned_total counter\n"
                  "arbiterd_orchestrator_events_pruned_total %" PRIu64 "\n"
                  "# HELP arbiterd_orchestrator_hints_sent_total NOTIFY hints sent.\n"
                  "# TYPE arbiterd_orchestrator_hints_sent_total counter\n"
                  "arbiterd_orchestrator_hints_sent_total %" PRIu64 "\n"
                  "# HELP arbiterd_orchestrator_notifications_total Notifications received.\n"
                  "# TYPE arbiterd_orchestrator_notifications_total counter\n"
                  "arbiterd_orchestrator_notifications_total %" PRIu64 "\n"
                  "# HELP arbiterd_orchestrator_listening Whether the LISTEN connection is up.\n"
                  "# TYPE arbiterd_orchestrator_listening gauge\n"
                  "arbiterd_orchestrator_listening %d\n",
                  o->rescued_queued, o->rescued_dead, o->pruned, o->hints_sent, o->notifications,
                  o->listen_up ? 1 : 0);
}

const struct svc_service svc_orchestrator = {
    .name = "Orchestrator",
    .start = start,
    .serving_changed = serving_changed,
    .shutdown = on_shutdown,
    .stop = stop,
    .metrics = metrics,
};
