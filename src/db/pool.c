/* The pool: connection lists, the FIFO wait queue, recovery with backoff,
 * housekeeping, statistics. The per-connection protocol work lives in
 * conn.c; both share pool_priv.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "db/pool_priv.h"
#include "util/log.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CONNECT_TIMEOUT_MIN_MS 2000
#define CONNECT_TIMEOUT_MAX_MS 10000

static void pool_check_closed(db_pool *p);
static void on_maint_timer(uv_timer_t *h);
static void on_wait_timer(uv_timer_t *h);
static void on_retry_timer(uv_timer_t *h);

uint64_t db_pool_rand(db_pool *p)
{
    /* xorshift64*: jitter only, no security use */
    p->rng ^= p->rng >> 12;
    p->rng ^= p->rng << 25;
    p->rng ^= p->rng >> 27;
    return p->rng * 2685821657736338717ull;
}

/* The sizes of the configuration, clamped to what the pool can do. */
static void take_sizes(db_pool *p)
{
    const struct cfg *cfg = p->cfg;

    p->pool_max = cfg->pool_max ? cfg->pool_max : 1;
    p->pool_min = cfg->pool_min < p->pool_max ? cfg->pool_min : p->pool_max;
    p->depth = cfg->pipeline_depth < 1                   ? 1
               : cfg->pipeline_depth > DB_CONN_MAX_DEPTH ? DB_CONN_MAX_DEPTH
                                                         : cfg->pipeline_depth;
}

void db_pool_reconfigure(db_pool *p)
{
    take_sizes(p);
    p->tick_ms = db_pool_tick_ms(p->cfg);
    uv_timer_start(&p->maint_timer, on_maint_timer, p->tick_ms, p->tick_ms);
    db_pool_maintain(p);
}

int db_pool_new(uv_loop_t *loop, const struct cfg *cfg, const struct db_pool_events *events,
                alloc *mem, db_pool **out)
{
    db_pool *p;
    db_hosts *hosts;
    int rv;

    if (cfg->database_url == NULL)
        return -EINVAL;
    rv = db_hosts_parse(cfg->database_url, &hosts);
    if (rv < 0)
        return rv;
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        db_hosts_free(hosts);
        return -ENOMEM;
    }
    p->hosts = hosts;
    p->mem = mem;
    p->loop = loop;
    p->cfg = cfg;
    if (events != NULL)
        p->events = *events;
    take_sizes(p);
    p->rng = (uint64_t)uv_hrtime() | 1;
    for (int i = 0; i < DB_CONN_NSTATES; i++)
        list_init(&p->lists[i]);
    list_init(&p->waiters);
    uv_timer_init(loop, &p->maint_timer);
    p->maint_timer.data = p;
    uv_timer_init(loop, &p->wait_timer);
    p->wait_timer.data = p;
    uv_timer_init(loop, &p->retry_timer);
    p->retry_timer.data = p;
    p->handles_open = 3;
    p->tick_ms = db_pool_tick_ms(cfg);
    uv_timer_start(&p->maint_timer, on_maint_timer, p->tick_ms, p->tick_ms);
    db_pool_maintain(p);
    *out = p;
    return 0;
}

/* Housekeeping period: fine enough for short test timeouts, at most 1 s. */
uint64_t db_pool_tick_ms(const struct cfg *cfg)
{
    uint64_t t = 1000;

    if (cfg->idle_timeout_ms && cfg->idle_timeout_ms / 4 < t)
        t = cfg->idle_timeout_ms / 4;
    if (cfg->max_lifetime_ms && cfg->max_lifetime_ms / 10 < t)
        t = cfg->max_lifetime_ms / 10;
    return t < 20 ? 20 : t;
}

bool db_pool_serving(const db_pool *p)
{
    return p->ever_ok && !p->down && !p->fatal && !p->closing;
}

/* Tells the server when serving flips. */
static void pool_set_serving(db_pool *p)
{
    bool s = db_pool_serving(p);

    if (s == p->reported_serving)
        return;
    p->reported_serving = s;
    log_info("db: %s", s ? "database reachable, serving" : "database unreachable, not serving");
    if (p->events.serving_changed != NULL)
        p->events.serving_changed(p->events.data, s);
}

void db_pool_conn_established(db_pool *p)
{
    p->failures = 0;
    p->retry_at_ms = 0;
    p->down = false;
    p->ever_ok = true;
    pool_set_serving(p);
}

void db_pool_fatal(db_pool *p, const char *why)
{
    if (p->fatal)
        return;
    p->fatal = true;
    log_error("db: %s", why);
    db_pool_fail_waiters(p, RPC_UNAVAILABLE, "database role refused");
    pool_set_serving(p);
    if (p->events.fatal != NULL)
        p->events.fatal(p->events.data, why);
}

/* A connect attempt failed: back off, and when nothing works any more,
 * fail fast. */
void db_pool_connect_failed(db_pool *p)
{
    uint64_t delay;

    p->stats_connect_errors++;
    p->failures++;
    delay = BACKOFF_MIN_MS;
    for (uint32_t i = 1; i < p->failures && delay < BACKOFF_MAX_MS; i++)
        delay *= 2;
    if (delay > BACKOFF_MAX_MS)
        delay = BACKOFF_MAX_MS;
    delay = delay / 2 + db_pool_rand(p) % (delay / 2 + 1); /* jitter in [d/2, d] */
    p->retry_at_ms = uv_now(p->loop) + delay;
    if (!p->closing)
        uv_timer_start(&p->retry_timer, on_retry_timer, delay, 0);
    if (db_pool_live(p) == 0) {
        if (!p->down)
            log_warn("db: cannot connect to the database; retrying with backoff");
        p->down = true;
        db_pool_fail_waiters(p, RPC_UNAVAILABLE, "database unavailable");
        pool_set_serving(p);
    }
}

uint32_t db_pool_live(const db_pool *p)
{
    return p->n[DB_CONN_IDLE] + p->n[DB_CONN_BUSY];
}

/* How many connections should exist (or be on their way) right now. */
static uint32_t pool_target(const db_pool *p)
{
    uint32_t t = p->n[DB_CONN_BUSY] + p->n_waiting;

    if (t < p->pool_min)
        t = p->pool_min;
    if (t == 0 && (!p->ever_ok || p->down))
        t = 1; /* probe, so Health can turn SERVING */
    return t > p->pool_max ? p->pool_max : t;
}

/* Opens connections up to the target; one at a time while failing. */
void db_pool_maintain(db_pool *p)
{
    uint32_t have, target;
    uint64_t now = uv_now(p->loop);

    if (p->closing || p->fatal)
        return;
    if (p->retry_at_ms > now)
        return; /* the maintenance tick retries */
    target = pool_target(p);
    have = db_pool_live(p) + p->n[DB_CONN_CONNECTING] + p->n[DB_CONN_CHECKING];
    while (have < target) {
        if (p->failures > 0 && p->n[DB_CONN_CONNECTING] + p->n[DB_CONN_CHECKING] > 0)
            break;
        if (db_conn_open(p) < 0) {
            db_pool_connect_failed(p);
            break;
        }
        have++;
    }
}

/* The connection state machine's legal transitions (conn.h), as bit masks
 * of the target states per source state. */
#define ST(s) (1u << (s))
static const unsigned legal_next[DB_CONN_NSTATES] = {
    [DB_CONN_CONNECTING] = ST(DB_CONN_CHECKING) | ST(DB_CONN_CLOSING),
    [DB_CONN_CHECKING] = ST(DB_CONN_IDLE) | ST(DB_CONN_CLOSING),
    [DB_CONN_IDLE] = ST(DB_CONN_BUSY) | ST(DB_CONN_CLOSING),
    [DB_CONN_BUSY] = ST(DB_CONN_IDLE) | ST(DB_CONN_CLOSING),
    [DB_CONN_CLOSING] = 0,
};

static const char *const state_names[DB_CONN_NSTATES] = {"connecting", "checking", "idle", "busy",
                                                         "closing"};

/* The one transition function: moves |c| to the list of state |to| (at the
 * front for LIFO reuse of idle connections). An impossible transition is a
 * bug in this module: log it and abort. */
void db_pool_list_move(db_pool *p, db_conn *c, enum db_conn_state to, bool front)
{
    if (!(legal_next[c->state] & ST(to))) {
        log_error("db: connection %" PRIu64 ": impossible transition %s -> %s", c->id,
                  state_names[c->state], state_names[to]);
        abort();
    }
    log_debug("db: connection %" PRIu64 ": %s -> %s", c->id, state_names[c->state],
              state_names[to]);
    list_remove(&c->node);
    p->n[c->state]--;
    c->state = to;
    p->n[to]++;
    if (front)
        list_push_front(&p->lists[to], &c->node);
    else
        list_push(&p->lists[to], &c->node);
}

/* Acquire-wait samples for the percentiles. */
static void record_wait(db_pool *p, uint64_t us)
{
    p->wait_ring[p->wait_pos % DB_WAIT_RING] = (uint32_t)(us > UINT32_MAX ? UINT32_MAX : us);
    p->wait_pos++;
}

/* The busy connection with the fewest segments in flight that can take
 * one more, or NULL. Only once every connection the pool may have is up:
 * a new or nearly connected one serves better than a place in line. */
static db_conn *pipeline_target(db_pool *p)
{
    db_conn *best = NULL;

    if (p->depth < 2 || db_pool_live(p) < p->pool_max)
        return NULL;
    for (list_node *n = p->lists[DB_CONN_BUSY].next; n != &p->lists[DB_CONN_BUSY]; n = n->next) {
        db_conn *c = container_of(n, db_conn, node);

        if (db_conn_can_pipeline(c) && (best == NULL || c->nseg < best->nseg))
            best = c;
    }
    return best;
}

/* A connection for the next txn: an idle one, else (with
 * --pipeline-depth > 1) a busy one that can queue it behind its own. */
static db_conn *next_conn(db_pool *p)
{
    if (!list_empty(&p->lists[DB_CONN_IDLE]))
        return container_of(p->lists[DB_CONN_IDLE].next, db_conn, node);
    return pipeline_target(p);
}

/* Hands connections to waiters, oldest waiter first. */
void db_pool_dispatch(db_pool *p)
{
    db_conn *c;

    while (!list_empty(&p->waiters) && (c = next_conn(p)) != NULL) {
        db_txn *t = container_of(p->waiters.next, db_txn, node);

        list_remove(&t->node);
        p->n_waiting--;
        p->stats_acquired++;
        record_wait(p, (uv_hrtime() - t->enqueued_ns) / 1000);
        db_conn_start(c, t);
    }
    if (list_empty(&p->waiters)) {
        uv_timer_stop(&p->wait_timer);
        p->wait_due_ms = UINT64_MAX;
    }
}

void db_pool_fail_waiters(db_pool *p, rpc_status status, const char *msg)
{
    while (!list_empty(&p->waiters)) {
        db_txn *t = container_of(p->waiters.next, db_txn, node);

        list_remove(&t->node);
        p->n_waiting--;
        db_txn_fail(t, status, NULL, msg);
        db_txn_complete(t);
    }
    uv_timer_stop(&p->wait_timer);
}

/* The cancel hook of an owner whose txn is queued or in flight. */
static void on_owner_cancel(void *data)
{
    db_txn *t = data;
    db_pool *p = t->pool;

    if (t->state == DB_TXN_QUEUED) {
        list_remove(&t->node);
        p->n_waiting--;
    } else if (t->state == DB_TXN_RUNNING && t->conn != NULL) {
        db_conn_detach(t->conn, t);
    }
    t->state = DB_TXN_DONE;
    db_txn_clear_results(t);
}

/* Re-arms the wait timer for the earliest acquire expiry. */
static void arm_wait_timer(db_pool *p)
{
    uint64_t first = UINT64_MAX, now = uv_now(p->loop);

    for (list_node *n = p->waiters.next; n != &p->waiters; n = n->next) {
        db_txn *t = container_of(n, db_txn, node);

        if (t->expires_ms < first)
            first = t->expires_ms;
    }
    p->wait_due_ms = first;
    if (first == UINT64_MAX) {
        uv_timer_stop(&p->wait_timer);
        return;
    }
    uv_timer_start(&p->wait_timer, on_wait_timer, first > now ? first - now : 0, 0);
}

static void on_wait_timer(uv_timer_t *h)
{
    db_pool *p = h->data;
    uint64_t now = uv_now(p->loop);
    list_node *n = p->waiters.next;

    while (n != &p->waiters) {
        db_txn *t = container_of(n, db_txn, node);

        n = n->next;
        if (t->expires_ms > now)
            continue;
        list_remove(&t->node);
        p->n_waiting--;
        p->stats_acquire_timeouts++;
        if (t->deadline_bound)
            db_txn_fail(t, RPC_DEADLINE_EXCEEDED, NULL,
                        "deadline exceeded waiting for a database connection");
        else
            db_txn_fail(t, RPC_UNAVAILABLE, NULL, "timed out waiting for a database connection");
        db_txn_complete(t);
    }
    arm_wait_timer(p);
}

/* Whether background work may take an idle connection now: one calls
 * can spare (another stays idle, or no call runs at all). */
static bool spare_connection(const db_pool *p)
{
    return list_empty(&p->waiters) &&
           (p->n[DB_CONN_IDLE] >= 2 || (p->n[DB_CONN_IDLE] == 1 && p->n[DB_CONN_BUSY] == 0));
}

/* Runs |t| on the most recently idle connection. */
static void start_on_idle(db_pool *p, db_txn *t)
{
    db_txn_on_cancel(t, on_owner_cancel);
    db_conn_start(container_of(p->lists[DB_CONN_IDLE].next, db_conn, node), t);
}

static void fail_now(db_txn *t, rpc_status status, const char *msg)
{
    db_txn_fail(t, status, NULL, msg);
    db_txn_complete(t);
}

void db_pool_submit(db_pool *p, db_txn *t)
{
    uint64_t remaining = db_txn_remaining_ms(t, uv_now(p->loop)), wait;
    db_conn *c;

    if (p->closing || p->fatal || p->down) {
        fail_now(t, RPC_UNAVAILABLE, "database unavailable");
        return;
    }
    if (remaining == 0) {
        fail_now(t, RPC_DEADLINE_EXCEEDED, "deadline exceeded");
        return;
    }
    if (t->ctx.background) {
        if (spare_connection(p))
            start_on_idle(p, t);
        else
            fail_now(t, RPC_UNAVAILABLE, "no spare database connection");
        return;
    }
    if (list_empty(&p->waiters) && (c = next_conn(p)) != NULL) {
        p->stats_acquired++;
        record_wait(p, 0);
        db_txn_on_cancel(t, on_owner_cancel);
        db_conn_start(c, t);
        return;
    }
    if (p->n_waiting >= p->cfg->pool_queue) {
        p->stats_queue_full++;
        fail_now(t, RPC_RESOURCE_EXHAUSTED, "too many calls waiting for a database connection");
        return;
    }
    wait = p->cfg->acquire_timeout_ms;
    t->deadline_bound = remaining <= wait;
    if (t->deadline_bound)
        wait = remaining;
    t->enqueued_ns = uv_hrtime();
    t->expires_ms = uv_now(p->loop) + wait;
    t->state = DB_TXN_QUEUED;
    list_push(&p->waiters, &t->node);
    p->n_waiting++;
    if (p->n_waiting > p->peak_waiting)
        p->peak_waiting = p->n_waiting;
    db_txn_on_cancel(t, on_owner_cancel);
    if (p->n_waiting == 1 || t->expires_ms < p->wait_due_ms)
        arm_wait_timer(p);
    db_pool_maintain(p);
}

/* A connection finished its segment (or its check): reuse or close it. */
void db_pool_conn_release(db_pool *p, db_conn *c)
{
    uint64_t now = uv_now(p->loop);

    if (p->closing || c->poisoned || PQstatus(c->pg) != CONNECTION_OK ||
        PQtransactionStatus(c->pg) != PQTRANS_IDLE ||
        (p->cfg->max_lifetime_ms && now >= c->expires_ms) ||
        db_pool_live(p) > p->pool_max /* --pool-max was lowered (SIGHUP) */) {
        db_conn_close(c, "released");
        db_pool_maintain(p);
        return;
    }
    c->idle_since_ms = now;
    db_pool_list_move(p, c, DB_CONN_IDLE, true);
    db_pool_dispatch(p);
}

/* Closes idle connections past their idle time (above min) or lifetime,
 * and connection attempts that take too long. */
static void housekeeping(db_pool *p)
{
    uint64_t now = uv_now(p->loop), ct = p->cfg->acquire_timeout_ms;
    list_node *n;

    /* A connection attempt may take as long as a call may wait, within
     * [2 s, 10 s]: short acquire timeouts must not kill slow handshakes. */
    if (ct < CONNECT_TIMEOUT_MIN_MS)
        ct = CONNECT_TIMEOUT_MIN_MS;
    if (ct > CONNECT_TIMEOUT_MAX_MS)
        ct = CONNECT_TIMEOUT_MAX_MS;
    /* Oldest idle first: the tail of the idle list. */
    for (n = p->lists[DB_CONN_IDLE].prev; n != &p->lists[DB_CONN_IDLE];) {
        db_conn *c = container_of(n, db_conn, node);

        n = n->prev;
        if (p->cfg->max_lifetime_ms && now >= c->expires_ms) {
            db_conn_close(c, "lifetime reached");
        } else if (p->cfg->idle_timeout_ms && db_pool_live(p) > p->pool_min &&
                   now - c->idle_since_ms >= p->cfg->idle_timeout_ms) {
            db_conn_close(c, "idle timeout");
        }
    }
    /* A connection whose query finished while its cancel request hangs
     * (a network that swallows it) cannot be reused: the request could
     * still land and cancel the next call's statement. */
    for (n = p->lists[DB_CONN_BUSY].next; n != &p->lists[DB_CONN_BUSY];) {
        db_conn *c = container_of(n, db_conn, node);

        n = n->next;
        if (c->cancel != NULL && now - c->cancel_started_ms >= DB_CANCEL_TIMEOUT_MS) {
            log_warn("db: connection %" PRIu64 ": cancel request unanswered for %d ms; closing it",
                     c->id, DB_CANCEL_TIMEOUT_MS);
            db_conn_close(c, "cancel request hung");
            c->pool->lost_pending++;
        }
    }
    for (int s = DB_CONN_CONNECTING; s <= DB_CONN_CHECKING; s++) {
        for (n = p->lists[s].next; n != &p->lists[s];) {
            db_conn *c = container_of(n, db_conn, node);

            n = n->next;
            if (now - c->created_ms >= ct) {
                db_conn_close(c, "connect timeout");
                db_pool_connect_failed(p);
            }
        }
    }
}

static void on_maint_timer(uv_timer_t *h)
{
    db_pool *p = h->data;

    if (p->closing)
        return;
    housekeeping(p);
    db_pool_maintain(p);
}

/* The backoff after a failed connect is over: try again. */
static void on_retry_timer(uv_timer_t *h)
{
    db_pool *p = h->data;

    if (!p->closing)
        db_pool_maintain(p);
}

static void on_timer_closed(uv_handle_t *h)
{
    db_pool *p = h->data;

    p->handles_open--;
    pool_check_closed(p);
}

/* Runs the close callback once every handle and cancel request is gone. */
static void pool_check_closed(db_pool *p)
{
    void (*done)(void *);

    if (!p->closing || p->handles_open > 0 || p->n_conns > 0 || p->n_cancels > 0)
        return;
    done = p->close_done;
    p->close_done = NULL;
    if (done != NULL)
        done(p->close_data);
}

void db_pool_conn_freed(db_pool *p)
{
    p->n_conns--;
    pool_check_closed(p);
}

void db_pool_cancel_finished(db_pool *p)
{
    p->n_cancels--;
    pool_check_closed(p);
}

void db_pool_close(db_pool *p, void (*done)(void *data), void *data)
{
    if (p->closing)
        return;
    p->closing = true;
    p->close_done = done;
    p->close_data = data;
    db_pool_fail_waiters(p, RPC_UNAVAILABLE, "server shutting down");
    for (int s = DB_CONN_CONNECTING; s <= DB_CONN_BUSY; s++) {
        while (!list_empty(&p->lists[s]))
            db_conn_close(container_of(p->lists[s].next, db_conn, node), "pool closing");
    }
    uv_close((uv_handle_t *)&p->maint_timer, on_timer_closed);
    uv_close((uv_handle_t *)&p->wait_timer, on_timer_closed);
    uv_close((uv_handle_t *)&p->retry_timer, on_timer_closed);
}

void db_pool_free(db_pool *p)
{
    if (p == NULL)
        return;
    db_hosts_free(p->hosts);
    free(p);
}

void db_pool_count_error(db_pool *p, const char *sqlstate)
{
    char cls[3] = "??";
    uint32_t i;

    if (sqlstate != NULL && strlen(sqlstate) == 5) {
        cls[0] = sqlstate[0];
        cls[1] = sqlstate[1];
    }
    for (i = 0; i < p->n_error_classes; i++) {
        if (memcmp(p->errors[i].sqlclass, cls, 3) == 0) {
            p->errors[i].count++;
            return;
        }
    }
    if (i < DB_MAX_ERROR_CLASSES) {
        memcpy(p->errors[i].sqlclass, cls, 3);
        p->errors[i].count = 1;
        p->n_error_classes++;
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* Percentiles over the most recent acquire waits. */
static void wait_percentiles(const db_pool *p, struct db_pool_stats *out)
{
    uint32_t sorted[DB_WAIT_RING];
    size_t n = p->wait_pos < DB_WAIT_RING ? p->wait_pos : DB_WAIT_RING;

    if (n == 0)
        return;
    memcpy(sorted, p->wait_ring, n * sizeof(uint32_t));
    qsort(sorted, n, sizeof(uint32_t), cmp_u32);
    out->acquire_wait_p50_ms = sorted[(n - 1) * 50 / 100] / 1000.0;
    out->acquire_wait_p95_ms = sorted[(n - 1) * 95 / 100] / 1000.0;
    out->acquire_wait_p99_ms = sorted[(n - 1) * 99 / 100] / 1000.0;
}

void db_pool_get_stats(const db_pool *p, struct db_pool_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->idle = p->n[DB_CONN_IDLE];
    out->busy = p->n[DB_CONN_BUSY];
    out->connecting = p->n[DB_CONN_CONNECTING] + p->n[DB_CONN_CHECKING];
    out->total = out->idle + out->busy + out->connecting;
    out->waiting = p->n_waiting;
    out->peak_waiting = p->peak_waiting;
    out->min = p->pool_min;
    out->max = p->pool_max;
    out->acquired = p->stats_acquired;
    out->acquire_timeouts = p->stats_acquire_timeouts;
    out->queue_full_rejections = p->stats_queue_full;
    out->connect_errors = p->stats_connect_errors;
    out->reconnects = p->stats_reconnects;
    for (uint32_t i = 0; i < p->n_error_classes && i < 32; i++) {
        memcpy(out->errors_by_class[i].sqlclass, p->errors[i].sqlclass, 3);
        out->errors_by_class[i].count = p->errors[i].count;
    }
    out->n_error_classes = p->n_error_classes < 32 ? p->n_error_classes : 32;
    wait_percentiles(p, out);
    out->utilization_percent = 100.0 * out->busy / (p->pool_max ? p->pool_max : 1);
    out->status = out->utilization_percent > 90.0   ? "unhealthy"
                  : out->utilization_percent > 75.0 ? "degraded"
                                                    : "healthy";
    out->reachable = db_pool_serving(p);
}
