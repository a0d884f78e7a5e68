/* One PostgreSQL connection: non-blocking connect, the start-up role check,
 * and one pipelined segment per call (settings + statements + Sync). See
 * conn.h for the state machine. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/pool_priv.h"
#include "util/log.h"

/* The first column reads the tenant before this call sets it: anything but
 * NULL (never set on this connection) or '' (reverted at the last Sync)
 * means a setting leaked from an earlier call, and the connection is
 * destroyed. */
#define SETTINGS_SQL                                                                               \
    "SELECT current_setting('app.current_tenant', true), "                                         \
    "set_config('app.current_tenant', $1, true), set_config('app.current_user', $2, true), "       \
    "set_config('app.current_session', $3, true), set_config('statement_timeout', $4, true)"
/* The role check: superuser, BYPASSRLS, or owning (being a member of the
 * owner of) any non-system table means row level security does not bind. */
#define CHECK_SQL                                                                                  \
    "SELECT r.rolname, r.rolsuper, r.rolbypassrls, "                                               \
    "(SELECT count(*) FROM pg_catalog.pg_class c "                                                 \
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "                                    \
    "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') "                                                \
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "                                   \
    "AND n.nspname NOT LIKE 'pg\\_toast%' "                                                        \
    "AND pg_catalog.pg_has_role(r.oid, c.relowner, 'MEMBER')) "                                    \
    "FROM pg_catalog.pg_roles r WHERE r.rolname = current_user"

static const db_stmt settings_stmt = {
    .name = "arbiter_settings", .sql = SETTINGS_SQL, .nparams = 4};

struct db_cancel_req {
    uv_work_t work;
    PGcancel *cancel; /* owned */
    db_conn *conn;    /* borrowed; NULL once the connection closed */
    db_pool *pool;    /* borrowed */
};

static void on_poll(uv_poll_t *h, int status, int events);
static void conn_lost(db_conn *c, const char *why);

static void conn_free(db_conn *c)
{
    db_pool *p = c->pool;

    PQfinish(c->pg);
    list_remove(&c->node);
    p->n[c->state]--;
    alloc_free(p->mem, c->prepared);
    free(c);
    db_pool_conn_freed(p);
}

static void on_conn_poll_closed(uv_handle_t *h)
{
    struct db_poll *pp = h->data;
    db_conn *c = pp->owner;

    free(pp);
    conn_free(c);
}

/* Polls PQsocket() for |events| (db/sock.h: the handle follows libpq's
 * socket, and is restarted while connecting). */
static int conn_watch(db_conn *c, int events)
{
    return db_sock_watch(&c->sock, c->pool->loop, c->pg, events, c->state == DB_CONN_CONNECTING,
                         on_poll, c);
}

/* The i-th segment in flight, 0 the oldest. */
static struct db_segment *seg_at(db_conn *c, unsigned i)
{
    return &c->seg[(c->seg0 + i) % DB_CONN_MAX_DEPTH];
}

/* A new segment at the tail (the caller checked that there is room). */
static struct db_segment *seg_push(db_conn *c, db_txn *t)
{
    struct db_segment *sg = seg_at(c, c->nseg++);

    sg->nexpect = sg->iexpect = 0;
    sg->got_result = sg->failed = sg->fatal = sg->sent = sg->check = false;
    sg->txn = t;
    sg->start_ns = uv_hrtime();
    return sg;
}

static void seg_pop(db_conn *c)
{
    c->seg0 = (c->seg0 + 1) % DB_CONN_MAX_DEPTH;
    c->nseg--;
}

/* Tells the owner of every write whose Sync just left libpq that its
 * outcome is now in doubt until the Sync result arrives. */
static void mark_sent(db_conn *c)
{
    for (unsigned i = 0; i < c->nseg; i++) {
        struct db_segment *sg = seg_at(c, i);

        if (sg->sent)
            continue;
        sg->sent = true;
        if (sg->txn != NULL && !sg->txn->ctx.read_only && sg->txn->ctx.set_in_doubt != NULL)
            sg->txn->ctx.set_in_doubt(sg->txn->ctx.owner, true);
    }
}

/* Sends what libpq buffered; polls for writability while some is left. */
static int conn_flush(db_conn *c)
{
    int r = PQflush(c->pg);

    if (r < 0)
        return -EIO;
    if (r == 0)
        mark_sent(c);
    return conn_watch(c, r == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

static void conn_expect(struct db_segment *sg, enum db_expect_kind kind, int item,
                        const db_stmt *stmt)
{
    struct db_expect *e = &sg->expect[sg->nexpect++];

    e->kind = (unsigned char)kind;
    e->item = (unsigned char)item;
    e->stmt = stmt;
}

/* Server notices would go to stderr by default, possibly with row data:
 * keep them at debug level, and only their severity. */
static void on_notice(void *arg, const char *message)
{
    db_conn *c = arg;

    log_debug("db: connection %" PRIu64 ": notice (%.*s)", c->id, (int)strcspn(message, ":"),
              message);
}

PGconn *db_connect_start(const char *conninfo, const char *application_name,
                         const struct db_hosts_target *target)
{
    static const char *const kw[] = {"options", "dbname", "application_name", "host", "hostaddr",
                                     "port",    NULL};
    const char *vals[] = {
        "-c TimeZone=UTC -c DateStyle=ISO", conninfo, application_name, NULL, NULL, NULL, NULL};
    PGconn *pg;

    if (target != NULL) {
        vals[3] = target->host;
        vals[4] = target->hostaddr;
        vals[5] = target->port; /* NULL: the conninfo's port serves every entry */
    }
    pg = PQconnectStartParams(kw, vals, 1);
    if (pg != NULL && PQstatus(pg) == CONNECTION_BAD) {
        log_debug("db: connect: %s", PQerrorMessage(pg));
        PQfinish(pg);
        pg = NULL;
    }
    return pg;
}

/* Starts libpq's non-blocking connect. |target| (may be NULL) replaces the
 * conninfo's host list with resolved addresses, so libpq never does a
 * blocking host name lookup. Returns 0 or -ECONNREFUSED (the connection
 * is then still registered: the caller closes it). */
static int conn_begin(db_conn *c, const struct db_hosts_target *target)
{
    c->pg = db_connect_start(c->pool->cfg->database_url, "arbiterd", target);
    if (c->pg == NULL)
        return -ECONNREFUSED;
    PQsetNoticeProcessor(c->pg, on_notice, c);
    /* "behave as if PQconnectPoll last returned PGRES_POLLING_WRITING" */
    if (conn_watch(c, UV_WRITABLE) < 0)
        return -ECONNREFUSED;
    return 0;
}

/* On the libuv thread pool: the blocking host name lookups. Reads only
 * the pool's immutable host list and writes only this connection's
 * target, which the loop does not touch while |resolving|. */
static void resolve_work(uv_work_t *w)
{
    db_conn *c = container_of(w, db_conn, resolve);

    c->resolve_rv = db_hosts_resolve(c->pool->hosts, db_hosts_lookup_system, &c->target);
}

/* The host names of the conninfo were resolved (or the lookup cancelled). */
static void on_resolved(uv_work_t *w, int status)
{
    db_conn *c = container_of(w, db_conn, resolve);
    db_pool *p = c->pool;
    int rv = status < 0 ? status : c->resolve_rv;

    c->resolving = false;
    if (c->state == DB_CONN_CLOSING) {
        if (rv == 0)
            db_hosts_target_deinit(&c->target);
        conn_free(c); /* closed while resolving */
        return;
    }
    if (rv == 0) {
        log_debug("db: connection %" PRIu64 ": trying %s (%zu address%s)", c->id,
                  c->target.hostaddr, c->target.count, c->target.count == 1 ? "" : "es");
        rv = conn_begin(c, &c->target);
        db_hosts_target_deinit(&c->target); /* libpq copied the lists */
        if (rv == 0)
            return;
    } else if (!p->down) {
        log_warn("db: cannot resolve %s: %s", db_hosts_name(p->hosts),
                 rv == -ENOMEM ? "out of memory" : "no address");
    }
    db_conn_close(c, "connect failed");
    db_pool_connect_failed(p);
}

int db_conn_open(db_pool *p)
{
    uint64_t lt = p->cfg->max_lifetime_ms;
    db_conn *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return -ENOMEM;
    c->pool = p;
    c->id = ++p->next_conn_id;
    c->created_ms = uv_now(p->loop);
    /* lifetime jittered by +-10 % so connections do not expire together */
    c->expires_ms = c->created_ms + lt - lt / 10 + (lt ? db_pool_rand(p) % (lt / 5 + 1) : 0);
    c->state = DB_CONN_CONNECTING;
    list_push(&p->lists[DB_CONN_CONNECTING], &c->node);
    p->n[DB_CONN_CONNECTING]++;
    p->n_conns++;
    if (p->hosts != NULL) {
        /* libpq would resolve the names inside PQconnectStartParams,
         * blocking the loop: resolve on the thread pool instead. */
        if (uv_queue_work(p->loop, &c->resolve, resolve_work, on_resolved) == 0) {
            c->resolving = true;
            return 0;
        }
        db_conn_close(c, "cannot start resolving");
        return -EIO;
    }
    if (conn_begin(c, NULL) < 0) {
        db_conn_close(c, "connect failed");
        return -ECONNREFUSED;
    }
    return 0;
}

/* Connected: switch to non-blocking pipeline mode and run the check. */
static void conn_established(db_conn *c)
{
    db_pool *p = c->pool;

    if (PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1) {
        conn_lost(c, "cannot enter pipeline mode");
        return;
    }
    c->backend_pid = PQbackendPID(c->pg);
    if (p->lost_pending > 0) {
        p->lost_pending--;
        p->stats_reconnects++;
    }
    db_pool_list_move(p, c, DB_CONN_CHECKING, false);
    c->seg0 = c->nseg = 0;
    if (PQsendQueryParams(c->pg, CHECK_SQL, 0, NULL, NULL, NULL, NULL, 0) != 1 ||
        PQpipelineSync(c->pg) != 1) {
        conn_lost(c, "cannot send the role check");
        return;
    }
    seg_push(c, NULL)->check = true;
    conn_expect(seg_at(c, 0), DB_EXP_CHECK, 0, NULL);
    if (conn_flush(c) < 0)
        conn_lost(c, "flush failed");
}

static void conn_connect_step(db_conn *c)
{
    db_pool *p = c->pool;
    int rv = db_sock_connect_step(&c->sock, p->loop, c->pg, on_poll, c);

    if (rv == 1) {
        conn_established(c);
        return;
    }
    if (rv < 0) {
        if (!p->down) {
            const char *msg = PQerrorMessage(c->pg);

            log_warn("db: connecting failed: %.*s", (int)strcspn(msg, "\n"), msg);
        }
        db_conn_close(c, "connect failed");
        db_pool_connect_failed(p);
    }
}

/* Whether |stmt| is prepared on |c|, or its Prepare is in this segment.
 * Statements are known by address (db.h), which costs no string compare. */
static bool conn_has_prepared(const db_conn *c, const db_stmt *stmt)
{
    for (size_t i = 0; i < c->nprepared; i++)
        if (c->prepared[i] == stmt)
            return true;
    for (unsigned k = 0; k < c->nseg; k++) {
        const struct db_segment *sg = seg_at((db_conn *)c, k);

        for (int i = 0; i < sg->nexpect; i++)
            if (sg->expect[i].kind == DB_EXP_PREPARE && sg->expect[i].stmt == stmt)
                return true;
    }
    return false;
}

static void conn_mark_prepared(db_conn *c, const db_stmt *stmt)
{
    if (c->nprepared == c->cap_prepared) {
        size_t cap = c->cap_prepared ? c->cap_prepared * 2 : 16;
        const db_stmt **v = alloc_realloc(c->pool->mem, c->prepared, cap * sizeof(*v));

        if (v == NULL) {
            c->poisoned = true; /* it would be prepared again and fail: start afresh */
            return;
        }
        c->prepared = v;
        c->cap_prepared = cap;
    }
    c->prepared[c->nprepared++] = stmt;
}

/* Sends one statement (preparing it first when this connection has not). */
static int send_stmt(db_conn *c, struct db_segment *sg, const db_stmt *stmt, int n,
                     const char *const *v, int item, enum db_expect_kind kind)
{
    if (c->pool->cfg->no_prepared_statements || (stmt->flags & DB_STMT_UNNAMED)) {
        if (PQsendQueryParams(c->pg, stmt->sql, n, NULL, v, NULL, NULL, 0) != 1)
            return -EIO;
    } else {
        if (!conn_has_prepared(c, stmt)) {
            if (PQsendPrepare(c->pg, stmt->name, stmt->sql, 0, NULL) != 1)
                return -EIO;
            conn_expect(sg, DB_EXP_PREPARE, 0, stmt);
        }
        if (PQsendQueryPrepared(c->pg, stmt->name, n, v, NULL, NULL, 0) != 1)
            return -EIO;
    }
    conn_expect(sg, kind, item, NULL);
    return 0;
}

/* PostgreSQL's statement_timeout is an int of milliseconds. */
#define STATEMENT_TIMEOUT_MAX_MS UINT64_C(2147483647)

/* statement_timeout for this call: min(remaining deadline, the flag),
 * clamped to what PostgreSQL accepts (a grpc-timeout of 99999999H would
 * otherwise make every such call fail). */
static void call_timeout(const db_conn *c, uint64_t remaining, char *buf, size_t len)
{
    uint64_t st =
        c->pool->cfg->statement_timeout_ms ? c->pool->cfg->statement_timeout_ms : UINT64_MAX;
    uint64_t to = remaining < st ? remaining : st;

    if (to == UINT64_MAX)
        snprintf(buf, len, "0");
    else
        snprintf(buf, len, "%" PRIu64,
                 to == 0 ? (uint64_t)1 : to > STATEMENT_TIMEOUT_MAX_MS ? STATEMENT_TIMEOUT_MAX_MS : to);
}

static int send_segment(db_conn *c, struct db_segment *sg, db_txn *t, uint64_t remaining)
{
    char timeout[32];
    const char *tenant = t->ctx.tenant, *user = t->ctx.user, *session = t->ctx.session;
    const char *sv[4];

    call_timeout(c, remaining, timeout, sizeof(timeout));
    sv[0] = tenant ? tenant : "";
    sv[1] = user ? user : "";
    sv[2] = session ? session : "";
    sv[3] = timeout;
    if (send_stmt(c, sg, &settings_stmt, 4, sv, 0, DB_EXP_SETTINGS) < 0)
        return -EIO;
    for (int i = 0; i < t->nitems; i++) {
        const struct db_txn_item *it = &t->items[i];

        if (send_stmt(c, sg, it->stmt, it->nvalues, (const char *const *)it->values, i,
                      DB_EXP_EXEC) < 0)
            return -EIO;
    }
    if (PQpipelineSync(c->pg) != 1)
        return -EIO;
    return conn_flush(c);
}

void db_conn_start(db_conn *c, db_txn *t)
{
    uint64_t remaining = db_txn_remaining_ms(t, uv_now(c->pool->loop));

    if (remaining == 0) {
        db_txn_fail(t, RPC_DEADLINE_EXCEEDED, NULL, "deadline exceeded");
        db_txn_complete(t);
        return;
    }
    t->state = DB_TXN_RUNNING;
    t->conn = c;
    if (c->state == DB_CONN_IDLE)
        db_pool_list_move(c->pool, c, DB_CONN_BUSY, false);
    if (send_segment(c, seg_push(c, t), t, remaining) < 0)
        conn_lost(c, "sending failed");
}

/* Only behind work that started this recently does a segment wait in
 * line on a connection; behind anything slower it waits for a free one. */
#define PIPELINE_FRESH_NS (5 * 1000 * 1000)

bool db_conn_can_pipeline(const db_conn *c)
{
    return c->state == DB_CONN_BUSY && c->nseg < c->pool->depth && !c->poisoned &&
           c->cancel == NULL && !c->sync_seen &&
           uv_hrtime() - c->seg[c->seg0].start_ns < PIPELINE_FRESH_NS;
}

/* Builds the refusal text for an unsafe role into the pool's buffer. */
static const char *refusal(db_pool *p, const PGresult *r)
{
    const char *role = PQgetvalue(r, 0, 0);
    long owned = strtol(PQgetvalue(r, 0, 3), NULL, 10);
    char what[96];

    if (PQgetvalue(r, 0, 1)[0] == 't')
        snprintf(what, sizeof(what), "is a superuser");
    else if (PQgetvalue(r, 0, 2)[0] == 't')
        snprintf(what, sizeof(what), "has BYPASSRLS");
    else if (owned > 0)
        snprintf(what, sizeof(what), "owns (or is a member of the owner of) %ld table(s)", owned);
    else
        return NULL;
    snprintf(p->fatal_why, sizeof(p->fatal_why),
             "database role \"%.63s\" %s, so row level security would not isolate tenants; "
             "connect as the unprivileged application role instead (--database-url "
             "\"... user=arbiter_app\": LOGIN NOSUPERUSER NOBYPASSRLS, owning nothing, granted "
             "by `arbiterd migrate`), or pass --allow-rls-bypass for local experiments only",
             role, what);
    return p->fatal_why;
}

static void conn_check_result(db_conn *c, struct db_segment *sg, const PGresult *r)
{
    db_pool *p = c->pool;
    const char *why;

    if (PQntuples(r) != 1 || PQnfields(r) != 4) {
        sg->failed = true;
        return;
    }
    why = refusal(p, r);
    if (why == NULL)
        return;
    if (p->cfg->allow_rls_bypass) {
        if (!p->warned_bypass)
            log_warn("db: WARNING: %s (serving anyway because of --allow-rls-bypass)", why);
        p->warned_bypass = true;
        return;
    }
    c->check_failed = true;
    db_pool_fatal(p, why);
}

/* An error result of segment |sg| (|e| is NULL for an error at the Sync:
 * the commit itself failed, e.g. a deferred constraint or a serialization
 * failure). */
static void conn_segment_error(db_conn *c, struct db_segment *sg, const struct db_expect *e,
                               const PGresult *r)
{
    const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    db_txn *t = sg->txn;

    if (sg->failed)
        return;
    sg->failed = true;
    sg->fatal = ss != NULL && (strncmp(ss, "57P", 3) == 0 || strncmp(ss, "08", 2) == 0);
    db_pool_count_error(c->pool, ss);
    /* 25006: read-only transaction, i.e. a primary demoted behind our back
     * (failover): this connection will never write again. */
    if (ss != NULL && strcmp(ss, "25006") == 0)
        c->poisoned = true;
    if (t == NULL) {
        if (sg->check)
            log_warn("db: connection check failed (SQLSTATE %s)", ss ? ss : "none");
        return;
    }
    if (ss == NULL && PQstatus(c->pg) == CONNECTION_BAD) {
        /* libpq's own error: the connection broke with the answer pending */
        if (sg->sent && !t->ctx.read_only)
            db_txn_fail(t, RPC_UNKNOWN, NULL,
                        "database connection lost after the commit was sent; the outcome is "
                        "unknown");
        else
            db_txn_fail(t, RPC_UNAVAILABLE, NULL, "database connection lost");
        return;
    }
    /* 26000: a statement this connection believes prepared is gone (e.g.
     * DEALLOCATE behind our back, or a pooler in between): start afresh. */
    if (ss != NULL && strcmp(ss, "26000") == 0)
        c->poisoned = true;
    db_txn_fail_sqlstate(t, ss, PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME));
    if (t->status == RPC_INTERNAL)
        log_warn("db: %s %s failed with SQLSTATE %s", e ? "statement" : "the commit of",
                 e && e->kind == DB_EXP_EXEC ? t->items[e->item].stmt->name
                 : e                         ? settings_stmt.name
                 : t->nitems > 0             ? t->items[t->nitems - 1].stmt->name
                                             : "(none)",
                 ss ? ss : "none");
}

static void conn_settings_result(db_conn *c, struct db_segment *sg, const PGresult *r)
{
    if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) && PQgetvalue(r, 0, 0)[0] != '\0') {
        log_error("db: connection %" PRIu64 ": app.current_tenant leaked from an earlier call; "
                  "destroying the connection",
                  c->id);
        c->poisoned = true;
        sg->failed = true;
        if (sg->txn != NULL)
            db_txn_fail(sg->txn, RPC_INTERNAL, NULL, "database error");
    }
}

/* One result for the current expected item of the oldest segment. Takes
 * ownership of |r|. */
static void conn_take(db_conn *c, struct db_segment *sg, PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    const struct db_expect *e = sg->iexpect < sg->nexpect ? &sg->expect[sg->iexpect] : NULL;

    if (st == PGRES_PIPELINE_ABORTED) {
        /* skipped after the segment's first error */
    } else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        /* Past the last statement, an error can only be the commit's. */
        conn_segment_error(c, sg, e, r);
    } else if (e == NULL) {
        c->poisoned = true; /* more results than commands: never reuse */
    } else if (e->kind == DB_EXP_CHECK) {
        conn_check_result(c, sg, r);
    } else if (e->kind == DB_EXP_PREPARE) {
        conn_mark_prepared(c, e->stmt);
    } else if (e->kind == DB_EXP_SETTINGS) {
        conn_settings_result(c, sg, r);
    } else if (sg->txn != NULL && sg->txn->items[e->item].res == NULL) {
        sg->txn->items[e->item].res = r;
        return;
    }
    PQclear(r);
}

/* A successful segment still fails when a DB_STMT_ONE_ROW found nothing. */
static void check_one_row(db_txn *t)
{
    for (int i = 0; i < t->nitems && !t->failed; i++) {
        const db_stmt *s = t->items[i].stmt;

        if ((s->flags & DB_STMT_ONE_ROW) && PQntuples(t->items[i].res) == 0)
            db_txn_fail(t, RPC_NOT_FOUND, NULL, s->not_found ? s->not_found : "not found");
    }
}

static void conn_check_done(db_conn *c, bool failed)
{
    db_pool *p = c->pool;

    if (c->check_failed) {
        db_conn_close(c, "role refused");
        return;
    }
    if (failed) {
        db_conn_close(c, "check failed");
        db_pool_connect_failed(p);
        return;
    }
    db_pool_conn_established(p);
    db_pool_conn_release(p, c);
}

/* Finishes the txn of a segment that is over (or lost): clears the
 * owner's doubt, fills in NOT_FOUND, runs |done|. */
static void finish_txn(db_txn *t)
{
    if (t == NULL)
        return;
    t->conn = NULL;
    if (t->ctx.set_in_doubt != NULL)
        t->ctx.set_in_doubt(t->ctx.owner, false);
    if (!t->failed)
        check_one_row(t);
    db_txn_complete(t);
}

/* The Sync result of the oldest segment arrived: it is over. */
static void conn_segment_done(db_conn *c)
{
    struct db_segment *sg = seg_at(c, 0);
    db_txn *t = sg->txn;
    bool check = sg->check, failed = sg->failed;

    seg_pop(c);
    if (check) {
        conn_check_done(c, failed);
        return;
    }
    finish_txn(t);
    if (c->state != DB_CONN_BUSY)
        return; /* closed meanwhile (e.g. the handler shut the server down) */
    if (c->nseg > 0) {
        db_pool_dispatch(c->pool); /* room for another segment behind the rest */
        return;
    }
    if (c->cancel != NULL) {
        c->sync_seen = true; /* released when the cancel request is done */
        return;
    }
    db_pool_conn_release(c->pool, c);
}

/* Reads every result that is complete, segment after segment. May close
 * or release |c|. */
static void conn_read(db_conn *c)
{
    while (c->state != DB_CONN_CLOSING && c->nseg > 0 && !PQisBusy(c->pg)) {
        struct db_segment *sg = seg_at(c, 0);
        PGresult *r = PQgetResult(c->pg);

        if (r == NULL) {
            if (!sg->got_result)
                break;
            sg->got_result = false;
            sg->iexpect++;
            continue;
        }
        if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            conn_segment_done(c);
            continue;
        }
        conn_take(c, sg, r);
        sg->got_result = true;
    }
    if (c->state != DB_CONN_CLOSING && PQstatus(c->pg) == CONNECTION_BAD)
        conn_lost(c, "connection lost");
}

static void conn_io(db_conn *c, int events)
{
    PGnotify *n;

    if ((events & UV_READABLE) && PQconsumeInput(c->pg) != 1) {
        conn_lost(c, "connection lost");
        return;
    }
    while ((n = PQnotifies(c->pg)) != NULL)
        PQfreemem(n);
    if (conn_flush(c) < 0) {
        conn_lost(c, "flush failed");
        return;
    }
    conn_read(c);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct db_poll *pp = h->data;
    db_conn *c = pp->owner;

    if (c == NULL)
        return;
    if (status < 0 && c->state != DB_CONN_CONNECTING) {
        conn_lost(c, uv_strerror(status));
        return;
    }
    switch (c->state) {
    case DB_CONN_CONNECTING:
        conn_connect_step(c);
        break;
    case DB_CONN_CHECKING:
    case DB_CONN_IDLE:
    case DB_CONN_BUSY:
        conn_io(c, events);
        break;
    case DB_CONN_CLOSING:
        break;
    }
}

/* The connection broke: fail its call, replace it. */
static void conn_lost(db_conn *c, const char *why)
{
    db_pool *p = c->pool;
    enum db_conn_state was = c->state;

    if (was == DB_CONN_CLOSING)
        return;
    log_debug("db: connection %" PRIu64 " lost: %s", c->id, why);
    db_conn_close(c, why);
    if (was == DB_CONN_CONNECTING || was == DB_CONN_CHECKING) {
        db_pool_connect_failed(p);
        return;
    }
    p->lost_pending++;
    db_pool_maintain(p);
}

/* Fails the txns of every segment still in flight: those whose Sync was
 * sent may have committed (UNKNOWN, so that no retry repeats a write),
 * unless an earlier segment's error ended the session (the backend runs
 * segments in order, so nothing after it ran); the others did not
 * (UNAVAILABLE). */
static void fail_segments(db_conn *c)
{
    bool ended = false;

    while (c->nseg > 0) {
        struct db_segment *sg = seg_at(c, 0);
        db_txn *t = sg->txn;
        bool ran_maybe = sg->sent && !ended && !sg->fatal;

        ended |= sg->fatal;
        seg_pop(c);
        if (t == NULL)
            continue;
        if (ran_maybe && !t->ctx.read_only)
            db_txn_fail(t, RPC_UNKNOWN, NULL,
                        "database connection lost after the commit was sent; the outcome is "
                        "unknown");
        else
            db_txn_fail(t, RPC_UNAVAILABLE, NULL, "database connection lost");
        finish_txn(t);
    }
}

void db_conn_close(db_conn *c, const char *why)
{
    db_pool *p = c->pool;

    if (c->state == DB_CONN_CLOSING)
        return;
    log_debug("db: closing connection %" PRIu64 " (%s)", c->id, why);
    db_pool_list_move(p, c, DB_CONN_CLOSING, false);
    if (c->cancel != NULL) {
        c->cancel->conn = NULL;
        c->cancel = NULL;
    }
    if (c->resolving) {
        /* freed by on_resolved(), which always runs (UV_ECANCELED at worst) */
        uv_cancel((uv_req_t *)&c->resolve);
    } else if (c->sock.poll != NULL) {
        db_sock_close(&c->sock, NULL, on_conn_poll_closed); /* conn_free() runs PQfinish */
    } else {
        conn_free(c);
        return;
    }
    fail_segments(c);
}

static void cancel_work(uv_work_t *w)
{
    struct db_cancel_req *req = w->data;
    char err[256];

    /* Blocking: connects to the postmaster. Runs on the libuv thread pool. */
    PQcancel(req->cancel, err, sizeof(err));
}

static void cancel_after(uv_work_t *w, int status)
{
    struct db_cancel_req *req = w->data;
    db_conn *c = req->conn;
    db_pool *p = req->pool;

    (void)status;
    PQfreeCancel(req->cancel);
    free(req);
    if (c != NULL) {
        c->cancel = NULL;
        if (c->sync_seen && c->state == DB_CONN_BUSY) {
            c->sync_seen = false;
            db_pool_conn_release(p, c);
        }
    }
    db_pool_cancel_finished(p);
}

void db_conn_detach(db_conn *c, db_txn *t)
{
    db_pool *p = c->pool;
    struct db_cancel_req *req;
    unsigned i;

    for (i = 0; i < c->nseg && seg_at(c, i)->txn != t; i++) {
    }
    if (i == c->nseg)
        return;
    seg_at(c, i)->txn = NULL;
    t->conn = NULL;
    /* PQcancel stops whatever the backend runs right now: only safe when
     * that is this txn alone. Behind or ahead of other segments its results
     * are just dropped (statement_timeout still bounds it). PQcancel blocks
     * a thread of libuv's pool for as long as the network lets it: at most
     * DB_MAX_CANCELS run at once, so that host name lookups always find a
     * thread; past that, statement_timeout bounds the query alone. */
    if (c->nseg != 1 || c->cancel != NULL || p->closing || p->n_cancels >= DB_MAX_CANCELS)
        return;
    req = calloc(1, sizeof(*req));
    if (req == NULL)
        return; /* statement_timeout still bounds the query */
    req->cancel = PQgetCancel(c->pg);
    req->conn = c;
    req->pool = p;
    req->work.data = req;
    if (req->cancel == NULL || uv_queue_work(p->loop, &req->work, cancel_work, cancel_after) < 0) {
        PQfreeCancel(req->cancel);
        free(req);
        return;
    }
    c->cancel = req;
    c->cancel_started_ms = uv_now(p->loop);
    c->sync_seen = false;
    p->n_cancels++;
}
