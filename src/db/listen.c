/* The LISTEN connection (listen.h). A small state machine:
 *
 *   WAITING --timer--> RESOLVING (thread pool) --> CONNECTING (PQconnectPoll)
 *   --connected: LISTEN sent--> STARTING --its result--> UP
 *   any --error, or no UP within CONNECT_TIMEOUT_MS--> WAITING (backoff)
 *
 * The poll handle is the pool's kind (db/sock.h): it follows libpq's
 * socket while connecting, and PQfinish runs only once it is closed, so
 * the fd number cannot be reused while libuv still watches it. */
#include "db/listen.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/conn.h"
#include "db/db.h"
#include "db/hosts.h"
#include "db/sock.h"
#include "util/log.h"
#include "util/strbuf.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CONNECT_TIMEOUT_MS 10000
#define QUEUE_MAX 4096
#define PAYLOAD_MAX 7999 /* PostgreSQL's limit is 8,000 bytes */
#define NOTIFY_SQL "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p"

enum listen_state { L_WAITING, L_RESOLVING, L_CONNECTING, L_STARTING, L_UP, L_CLOSED };

struct db_listen {
    uv_loop_t *loop; /* borrowed */
    char *conninfo;  /* owned */
    char *channel;   /* owned */
    db_hosts *hosts; /* owned; NULL when libpq needs no lookup */
    struct db_listen_events ev;
    enum listen_state state;
    PGconn *pg;        /* owned until its poll handle closes (db/sock.h) */
    db_sock sock;      /* the poll handle on PQsocket() */
    bool closing_poll; /* a closing |l| waits for its handle */
    int backend_pid;
    bool busy;        /* a statement is in flight */
    uv_timer_t timer; /* the backoff, then the connect timeout */
    uv_work_t resolve;
    struct db_hosts_target target;
    int resolve_rv;
    bool resolving; /* the lookup runs: free only in its callback */
    bool timer_closed;
    uint32_t failures;
    uint64_t rng;
    char **queue; /* owned: payloads to send */
    size_t nqueue;
};

static void on_poll(uv_poll_t *h, int status, int events);
static void attempt(db_listen *l);

static uint64_t rand_next(db_listen *l)
{
    /* xorshift64*: jitter only */
    l->rng ^= l->rng >> 12;
    l->rng ^= l->rng << 25;
    l->rng ^= l->rng >> 27;
    return l->rng * 2685821657736338717ull;
}

static void clear_queue(db_listen *l)
{
    for (size_t i = 0; i < l->nqueue; i++)
        free(l->queue[i]);
    l->nqueue = 0;
}

static void free_listen(db_listen *l)
{
    clear_queue(l);
    free(l->queue);
    db_hosts_free(l->hosts);
    free(l->conninfo);
    free(l->channel);
    free(l);
}

/* Frees |l| once it is closed and nothing of it is left on the loop. */
static void maybe_free(db_listen *l)
{
    if (l->state == L_CLOSED && l->timer_closed && !l->resolving && !l->closing_poll)
        free_listen(l);
}

static void on_poll_closed(uv_handle_t *h)
{
    struct db_poll *pp = h->data;
    db_listen *l = pp->owner;

    PQfinish(pp->finish);
    free(pp);
    if (l != NULL) {
        l->closing_poll = false;
        maybe_free(l);
    }
}

/* Closes the PGconn: PQfinish waits for its poll handle to close. A
 * closing |l| waits for that too; a reconnecting one forgets the handle. */
static void drop_conn(db_listen *l)
{
    struct db_poll *pp = l->sock.poll;

    l->busy = false;
    if (pp == NULL) {
        PQfinish(l->pg);
        l->pg = NULL;
        return;
    }
    pp->owner = l->state == L_CLOSED ? l : NULL;
    l->closing_poll = l->state == L_CLOSED;
    db_sock_close(&l->sock, l->pg, on_poll_closed);
    l->pg = NULL;
}

static void on_timer(uv_timer_t *t);

/* The connection broke or could not be made: try again after the backoff. */
static void lost(db_listen *l, const char *why)
{
    bool was_up = l->state == L_UP;
    uint64_t delay = BACKOFF_MIN_MS;

    if (was_up || l->failures == 0)
        log_warn("listen: %s; reconnecting (notifications are missed until then)", why);
    else
        log_debug("listen: %s", why);
    if (l->pg != NULL)
        drop_conn(l);
    clear_queue(l);
    l->state = L_WAITING;
    l->failures++;
    for (uint32_t i = 1; i < l->failures && delay < BACKOFF_MAX_MS; i++)
        delay *= 2;
    if (delay > BACKOFF_MAX_MS)
        delay = BACKOFF_MAX_MS;
    delay = delay / 2 + rand_next(l) % (delay / 2 + 1);
    uv_timer_start(&l->timer, on_timer, delay, 0);
    if (was_up && l->ev.up_changed != NULL)
        l->ev.up_changed(l->ev.data, false);
}

/* Polls PQsocket() for |events| (db/sock.h). */
static int watch(db_listen *l, int events)
{
    return db_sock_watch(&l->sock, l->loop, l->pg, events, l->state == L_CONNECTING, on_poll, l);
}

static int flush(db_listen *l)
{
    return db_sock_flush(&l->sock, l->loop, l->pg, on_poll, l);
}

/* A statement went into libpq's buffer (|ok|): push it out and await its
 * result; or it could not be sent, and the connection is given up. */
static void sent(db_listen *l, bool ok, const char *what)
{
    if (!ok) {
        lost(l, what);
        return;
    }
    l->busy = true;
    if (flush(l) < 0)
        lost(l, "flush failed");
}

static void begin(db_listen *l, const struct db_hosts_target *target)
{
    l->pg = db_connect_start(l->conninfo, "arbiterd-listen", target);
    if (l->pg == NULL) {
        lost(l, "cannot start connecting");
        return;
    }
    l->state = L_CONNECTING;
    uv_timer_start(&l->timer, on_timer, CONNECT_TIMEOUT_MS, 0);
    /* "behave as if PQconnectPoll last returned PGRES_POLLING_WRITING" */
    if (watch(l, UV_WRITABLE) < 0)
        lost(l, "cannot poll the socket");
}

static void resolve_work(uv_work_t *w)
{
    db_listen *l = container_of(w, db_listen, resolve);

    l->resolve_rv = db_hosts_resolve(l->hosts, db_hosts_lookup_system, &l->target);
}

static void on_resolved(uv_work_t *w, int status)
{
    db_listen *l = container_of(w, db_listen, resolve);
    int rv = status < 0 ? status : l->resolve_rv;

    l->resolving = false;
    if (l->state == L_CLOSED) {
        if (rv == 0)
            db_hosts_target_deinit(&l->target);
        maybe_free(l);
        return;
    }
    if (rv < 0) {
        lost(l, "cannot resolve the host name");
        return;
    }
    begin(l, &l->target);
    db_hosts_target_deinit(&l->target); /* libpq copied the lists */
}

static void attempt(db_listen *l)
{
    if (l->hosts == NULL) {
        begin(l, NULL);
        return;
    }
    l->state = L_RESOLVING;
    if (uv_queue_work(l->loop, &l->resolve, resolve_work, on_resolved) < 0) {
        lost(l, "cannot start resolving");
        return;
    }
    l->resolving = true;
    uv_timer_start(&l->timer, on_timer, CONNECT_TIMEOUT_MS, 0);
}

static void on_timer(uv_timer_t *t)
{
    db_listen *l = t->data;

    if (l->state == L_WAITING)
        attempt(l);
    else if (l->state == L_RESOLVING)
        lost(l, "host name lookup timed out"); /* its callback finds WAITING */
    else if (l->state == L_CONNECTING || l->state == L_STARTING)
        lost(l, "connect timeout");
}

/* Connected: LISTEN, in autocommit, on the quoted channel name. */
static void established(db_listen *l)
{
    char sql[160];
    char *ident;
    bool ok;

    if (PQsetnonblocking(l->pg, 1) != 0) {
        lost(l, "cannot switch to non-blocking mode");
        return;
    }
    l->backend_pid = PQbackendPID(l->pg);
    ident = PQescapeIdentifier(l->pg, l->channel, strlen(l->channel));
    l->state = L_STARTING;
    ok = ident != NULL && snprintf(sql, sizeof(sql), "LISTEN %s", ident) < (int)sizeof(sql) &&
         PQsendQuery(l->pg, sql) == 1;
    PQfreemem(ident);
    sent(l, ok, "cannot send LISTEN");
}

static void connect_step(db_listen *l)
{
    int rv = db_sock_connect_step(&l->sock, l->loop, l->pg, on_poll, l);

    if (rv == 1) {
        established(l);
        return;
    }
    if (rv < 0) {
        const char *msg = PQerrorMessage(l->pg);

        if (l->failures == 0)
            log_warn("listen: connecting failed: %.*s", (int)strcspn(msg, "\n"), msg);
        lost(l, "connect failed");
    }
}

/* Sends what queued up, as one statement, when nothing is in flight. */
static void send_queue(db_listen *l)
{
    strbuf arr;
    const char *params[2];
    char *lit;
    bool ok;

    if (l->state != L_UP || l->busy || l->nqueue == 0)
        return;
    strbuf_init(&arr, (size_t)QUEUE_MAX * (PAYLOAD_MAX * 2 + 4) + 3, NULL);
    strbuf_putc(&arr, '{');
    for (size_t i = 0; i < l->nqueue; i++) {
        size_t n = db_array_quote(l->queue[i], NULL);
        char *q = malloc(n + 1);

        if (q != NULL) {
            db_array_quote(l->queue[i], q);
            q[n] = '\0';
            if (i > 0)
                strbuf_putc(&arr, ',');
            strbuf_puts(&arr, q);
        }
        free(q);
    }
    strbuf_putc(&arr, '}');
    clear_queue(l);
    lit = strbuf_take(&arr, NULL);
    params[0] = l->channel;
    params[1] = lit;
    ok = lit != NULL && PQsendQueryParams(l->pg, NOTIFY_SQL, 2, NULL, params, NULL, NULL, 0) == 1;
    free(lit);
    sent(l, ok, "cannot send NOTIFY");
}

static void deliver(db_listen *l)
{
    PGnotify *n;

    while (l->state == L_UP && (n = PQnotifies(l->pg)) != NULL) {
        if (l->ev.notified != NULL && strcmp(n->relname, l->channel) == 0)
            l->ev.notified(l->ev.data, n->extra, n->be_pid == l->backend_pid);
        PQfreemem(n);
    }
}

/* The statement in flight ended (|ok|: without an error). */
static void statement_done(db_listen *l, bool ok)
{
    l->busy = false;
    if (l->state == L_STARTING) {
        if (!ok) {
            lost(l, "LISTEN failed");
            return;
        }
        l->state = L_UP;
        l->failures = 0;
        uv_timer_stop(&l->timer);
        log_info("listen: LISTEN %s: notifications flow", l->channel);
        if (l->ev.up_changed != NULL)
            l->ev.up_changed(l->ev.data, true);
    } else if (!ok) {
        log_warn("listen: NOTIFY failed; the hints are dropped");
    }
    send_queue(l);
}

/* Reads every complete result of the statement in flight. */
static void read_results(db_listen *l)
{
    bool ok = true;

    while (l->busy && l->pg != NULL && !PQisBusy(l->pg)) {
        PGresult *r = PQgetResult(l->pg);

        if (r == NULL) {
            statement_done(l, ok);
            return;
        }
        if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
            ok = false;
        PQclear(r);
    }
}

static void io(db_listen *l, int events)
{
    if ((events & UV_READABLE) && PQconsumeInput(l->pg) != 1) {
        lost(l, "connection lost");
        return;
    }
    if (flush(l) < 0) {
        lost(l, "flush failed");
        return;
    }
    read_results(l);
    deliver(l);
    if (l->pg != NULL && PQstatus(l->pg) == CONNECTION_BAD)
        lost(l, "connection lost");
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct db_poll *pp = h->data;
    db_listen *l = pp->owner;

    if (l == NULL || l->pg == NULL)
        return;
    if (status < 0 && l->state != L_CONNECTING) {
        lost(l, uv_strerror(status));
        return;
    }
    if (l->state == L_CONNECTING)
        connect_step(l);
    else if (l->state == L_STARTING || l->state == L_UP)
        io(l, events);
}

static bool channel_ok(const char *channel)
{
    size_t n = strlen(channel);

    return n > 0 && n < 64 && strcspn(channel, "\"") == n;
}

int db_listen_new(uv_loop_t *loop, const char *conninfo, const char *channel,
                  const struct db_listen_events *ev, db_listen **out)
{
    db_listen *l;
    int rv;

    if (conninfo == NULL || !channel_ok(channel))
        return -EINVAL;
    l = calloc(1, sizeof(*l));
    if (l == NULL)
        return -ENOMEM;
    l->loop = loop;
    l->ev = *ev;
    l->rng = (uint64_t)uv_hrtime() | 1;
    l->conninfo = strdup(conninfo);
    l->channel = strdup(channel);
    l->queue = calloc(QUEUE_MAX, sizeof(*l->queue));
    rv = l->conninfo && l->channel && l->queue ? db_hosts_parse(conninfo, &l->hosts) : -ENOMEM;
    if (rv < 0) {
        free_listen(l);
        return rv;
    }
    uv_timer_init(loop, &l->timer);
    l->timer.data = l;
    l->state = L_WAITING;
    uv_timer_start(&l->timer, on_timer, 0, 0);
    *out = l;
    return 0;
}

int db_listen_check(const char *conninfo)
{
    db_hosts *hosts = NULL;
    int rv = db_hosts_parse(conninfo, &hosts);

    db_hosts_free(hosts);
    return rv;
}

bool db_listen_is_up(const db_listen *l)
{
    return l != NULL && l->state == L_UP;
}

int db_listen_notify(db_listen *l, const char *payload)
{
    if (strlen(payload) > PAYLOAD_MAX)
        return -EINVAL;
    if (l->state != L_UP)
        return -ENOTCONN;
    if (l->nqueue >= QUEUE_MAX)
        return -ENOBUFS;
    l->queue[l->nqueue] = strdup(payload);
    if (l->queue[l->nqueue] == NULL)
        return -ENOMEM;
    l->nqueue++;
    send_queue(l);
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    db_listen *l = h->data;

    l->timer_closed = true;
    maybe_free(l);
}

void db_listen_close(db_listen *l)
{
    if (l == NULL || l->state == L_CLOSED)
        return;
    l->state = L_CLOSED;
    if (l->pg != NULL)
        drop_conn(l);
    if (l->resolving)
        uv_cancel((uv_req_t *)&l->resolve); /* on_resolved frees what is left */
    uv_close((uv_handle_t *)&l->timer, on_timer_closed);
}
