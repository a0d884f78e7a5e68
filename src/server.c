/* The server object: method table, pool, health, listener and the list of
 * connections, plus graceful shutdown:
 *
 *   RUNNING → (signal) NOTICE: listener closed, socket file removed, Watch
 *   streams ended, GOAWAY(2^31-1) to every connection
 *   → after GOAWAY_DELAY_MS, DRAINING: GOAWAY(last stream id); in-flight
 *   calls may finish until --shutdown-timeout-ms
 *   → CANCELLING: the rest is answered UNAVAILABLE; connections that still
 *   do not finish are closed after FORCE_CLOSE_MS
 *   → CLOSED (no connection left): pool closed, handles closed, the loop
 *   runs out. */
#include "server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/pool.h"
#include "h2/conn.h"
#include "net/conn.h"
#include "net/listener.h"
#include "net/metrics.h"
#include "server_priv.h"
#include "services/services.h"
#include "util/list.h"
#include "util/log.h"

#define GOAWAY_DELAY_MS 20 /* about one RTT on a local socket, with margin */
#define FORCE_CLOSE_MS 1000

enum phase { PHASE_RUNNING, PHASE_NOTICE, PHASE_DRAINING, PHASE_CANCELLING, PHASE_CLOSED };

struct server_priv {
    net_listener listener;
    bool listening;
    list_node conns;                       /* h2_conn list */
    uv_timer_t timer;                      /* shutdown phases */
    net_metrics *metrics;                  /* owned; NULL without --metrics-listen */
    unsigned char rbuf[NET_CONN_READ_BUF]; /* shared by every connection */
    enum phase phase;
    bool served; /* listened at some point: shutdown is worth logging */
};

static void on_pool_serving(void *data, bool serving)
{
    struct server *srv = data;

    log_info("database %s", serving ? "reachable: SERVING" : "unreachable: NOT_SERVING");
    svc_health_set_serving(srv, serving);
}

static void on_pool_fatal(void *data, const char *why)
{
    server_fatal(data, 2, why);
}

static int register_services(struct server *srv)
{
    int rv = svc_health_register(srv);

    if (rv == 0)
        rv = svc_agent_registry_register(srv);
    if (rv == 0)
        rv = svc_admin_register(srv);
    if (rv == 0 && srv->cfg->enable_test_service)
        rv = svc_testing_register(srv);
    if (rv == 0 && srv->cfg->enable_test_service)
        rv = svc_testing_db_register(srv);
    return rv;
}

static int create_pool(struct server *srv)
{
    static const struct db_pool_events events = {
        .serving_changed = on_pool_serving,
        .fatal = on_pool_fatal,
    };
    struct db_pool_events ev = events;
    int rv;

    if (!srv->cfg->database_url) {
        log_warn("no --database-url: running without a database; database calls answer "
                 "UNAVAILABLE");
        return 0;
    }
    ev.data = srv;
    rv = db_pool_new(srv->loop, srv->cfg, &ev, &srv->pool);
    if (rv == -ENOSYS) {
        log_warn("this build has no database pool; database calls answer UNAVAILABLE");
        srv->pool = NULL;
        return 0;
    }
    if (rv < 0) {
        /* -EINVAL (a bad conninfo) is reported by main() as a bad flag. */
        if (rv != -EINVAL)
            log_error("cannot create the database pool: %s", strerror(-rv));
        return rv;
    }
    svc_health_set_serving(srv, db_pool_serving(srv->pool));
    return 0;
}

int server_init(struct server *srv, uv_loop_t *loop, const struct cfg *cfg)
{
    struct server_priv *p;
    int rv;

    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    srv->cfg = cfg;
    srv->uid = getuid();
    srv->started_at_ms = uv_now(loop);
    rpc_methods_init(&srv->methods);
    p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    srv->priv = p;
    list_init(&p->conns);
    uv_timer_init(loop, &p->timer);
    p->timer.data = srv;
    rv = register_services(srv);
    if (rv < 0) {
        log_error("cannot register services: %s", strerror(-rv));
        return rv;
    }
    return create_pool(srv);
}

static void on_connection(net_listener *l)
{
    struct server *srv = l->data;
    struct server_priv *p = srv->priv;
    int rv = h2_conn_accept(srv, (uv_stream_t *)&l->pipe, &p->conns);

    if (rv < 0)
        log_warn("cannot accept a connection: %s", strerror(-rv));
}

int server_listen(struct server *srv, char *err, size_t errlen)
{
    struct server_priv *p = srv->priv;
    int rv;

    p->listener.on_connection = on_connection;
    p->listener.on_close = NULL;
    p->listener.data = srv;
    rv = net_listener_open(&p->listener, srv->loop, srv->cfg->socket_path, srv->cfg->socket_mode,
                           err, errlen);
    if (rv < 0)
        return rv;
    p->listening = true;
    p->served = true;
    if (srv->cfg->metrics_listen) {
        rv = net_metrics_open(srv, srv->cfg->metrics_listen, &p->metrics, err, errlen);
        if (rv < 0)
            return rv;
    }
    log_info("arbiterd listening on %s (mode %04o)", srv->cfg->socket_path, srv->cfg->socket_mode);
    return 0;
}

typedef void (*conn_fn)(h2_conn *c);

static void each_conn(struct server *srv, conn_fn fn)
{
    struct server_priv *p = srv->priv;
    list_node *n, *next;

    for (n = p->conns.next; n != &p->conns; n = next) {
        next = n->next; /* fn may close (unlink) the connection */
        fn(h2_conn_from_node(n));
    }
}

static void on_pool_closed(void *data)
{
    (void)data; /* db_pool_free() follows in server_deinit() */
}

/* The last step: nothing is left to serve. */
static void finish(struct server *srv)
{
    struct server_priv *p = srv->priv;

    if (p->phase == PHASE_CLOSED)
        return;
    p->phase = PHASE_CLOSED;
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, NULL);
    net_metrics_close(p->metrics); /* scrapes keep working while draining */
    p->metrics = NULL;
    if (srv->pool)
        db_pool_close(srv->pool, on_pool_closed, srv);
    if (p->served)
        log_info("shutdown complete");
}

static void check_done(struct server *srv)
{
    struct server_priv *p = srv->priv;

    if (p->phase != PHASE_RUNNING && list_empty(&p->conns))
        finish(srv);
}

static void cancel_calls(h2_conn *c)
{
    h2_conn_cancel_calls(c, RPC_UNAVAILABLE, "server is shutting down");
}

static void on_force_close(uv_timer_t *t)
{
    struct server *srv = t->data;

    log_warn("closing connections that did not finish after the shutdown timeout");
    each_conn(srv, h2_conn_close);
    check_done(srv);
}

static void on_grace_over(uv_timer_t *t)
{
    struct server *srv = t->data;
    struct server_priv *p = srv->priv;

    log_info("shutdown timeout: answering the calls still running UNAVAILABLE");
    p->phase = PHASE_CANCELLING;
    each_conn(srv, cancel_calls);
    uv_timer_start(&p->timer, on_force_close, FORCE_CLOSE_MS, 0);
}

static void on_goaway_due(uv_timer_t *t)
{
    struct server *srv = t->data;
    struct server_priv *p = srv->priv;
    uint64_t grace = srv->cfg->shutdown_timeout_ms;

    p->phase = PHASE_DRAINING;
    each_conn(srv, h2_conn_goaway);
    grace = grace > GOAWAY_DELAY_MS ? grace - GOAWAY_DELAY_MS : 0;
    uv_timer_start(&p->timer, on_grace_over, grace, 0);
}

void server_shutdown(struct server *srv)
{
    struct server_priv *p = srv->priv;

    if (!p || p->phase != PHASE_RUNNING)
        return; /* already shutting down, or server_init() failed early */
    if (p->served)
        log_info("shutting down (grace %llu ms)",
                 (unsigned long long)srv->cfg->shutdown_timeout_ms);
    p->phase = PHASE_NOTICE;
    if (p->listening)
        net_listener_close(&p->listener); /* stop accepting, remove the socket file */
    p->listening = false;
    svc_health_shutdown(srv);
    each_conn(srv, h2_conn_shutdown_notice);
    uv_timer_start(&p->timer, on_goaway_due, GOAWAY_DELAY_MS, 0);
    check_done(srv);
}

void server_shutdown_now(struct server *srv)
{
    struct server_priv *p = srv->priv;

    server_shutdown(srv);
    if (!p || p->phase == PHASE_CLOSED)
        return;
    log_warn("second signal: closing every connection now");
    p->phase = PHASE_CANCELLING;
    each_conn(srv, cancel_calls);
    each_conn(srv, h2_conn_close);
    check_done(srv);
}

void server_fatal(struct server *srv, int exit_code, const char *why)
{
    log_error("%s", why);
    srv->exit_code = exit_code;
    server_shutdown(srv);
}

void server_conn_gone(struct server *srv)
{
    check_done(srv);
}

unsigned char *server_read_buffer(struct server *srv, size_t *len)
{
    struct server_priv *p = srv->priv;

    *len = sizeof(p->rbuf);
    return p->rbuf;
}

int server_is_shutting_down(const struct server *srv)
{
    const struct server_priv *p = srv->priv;
    return p->phase != PHASE_RUNNING;
}

void server_deinit(struct server *srv)
{
    svc_health_free(srv);
    db_pool_free(srv->pool);
    srv->pool = NULL;
    rpc_methods_deinit(&srv->methods);
    free(srv->priv);
    srv->priv = NULL;
}

void server_count_call(struct server *srv, rpc_status status)
{
    if ((unsigned)status < RPC_STATUS_COUNT)
        srv->stats.calls_by_status[status]++;
    srv->stats.calls_total++;
    srv->stats.calls_in_flight--;
}
