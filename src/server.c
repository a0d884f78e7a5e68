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
#include "metrics.h"
#include "net/conn.h"
#include "net/listener.h"
#include "net/metrics.h"
#include "util/list.h"
#include "util/log.h"

#define GOAWAY_DELAY_MS 20 /* about one RTT on a local socket, with margin */
#define FORCE_CLOSE_MS 1000

enum phase { PHASE_RUNNING, PHASE_NOTICE, PHASE_DRAINING, PHASE_CANCELLING, PHASE_CLOSED };

struct server_priv {
    net_listener listener;
    budget memory; /* what all connections pin together (--max-memory) */
    uint64_t rejected_log_ms;
    bool listening;
    list_node conns;                       /* h2_conn list */
    uv_timer_t timer;                      /* shutdown phases */
    net_metrics *metrics;                  /* owned; NULL without --metrics-listen */
    unsigned char rbuf[NET_CONN_READ_BUF]; /* shared by every connection */
    enum phase phase;
    bool served; /* listened at some point: shutdown is worth logging */
};

static void check_done(struct server *srv);

/* Tells every service that has a hook; services know nothing of each
 * other or of the server. */
static void each_service_serving(struct server *srv, bool serving)
{
    size_t n;
    const struct svc_service *const *all = svc_services(&n);

    for (size_t i = 0; i < n; i++)
        if (all[i]->serving_changed)
            all[i]->serving_changed(&srv->env, serving);
}

static void on_pool_serving(void *data, bool serving)
{
    struct server *srv = data;

    log_info("database %s", serving ? "reachable: SERVING" : "unreachable: NOT_SERVING");
    each_service_serving(srv, serving);
}

static void on_pool_fatal(void *data, const char *why)
{
    server_fatal(data, 2, why);
}

static int start_services(struct server *srv)
{
    size_t n;
    const struct svc_service *const *all = svc_services(&n);

    for (size_t i = 0; i < n; i++) {
        int rv = all[i]->start(&srv->env);

        if (rv < 0) {
            log_error("cannot start the %s service: %s", all[i]->name, strerror(-rv));
            return rv;
        }
    }
    return 0;
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
    rv = db_pool_new(srv->loop, srv->cfg, &ev, srv->mem, &srv->pool);
    if (rv < 0) {
        /* -EINVAL (a bad conninfo) is reported by main() as a bad flag. */
        if (rv != -EINVAL)
            log_error("cannot create the database pool: %s", strerror(-rv));
        return rv;
    }
    srv->env.pool = srv->pool;
    each_service_serving(srv, db_pool_serving(srv->pool));
    return 0;
}

static void on_conn_closed(void *data)
{
    struct server *srv = data;

    srv->rpc.stats.open_connections--;
    check_done(srv);
}

int server_init(struct server *srv, uv_loop_t *loop, const struct cfg *cfg, alloc *mem)
{
    struct server_priv *p;
    int rv;

    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    srv->cfg = cfg;
    srv->mem = mem;
    rpc_server_init(&srv->rpc, loop, cfg->max_message_bytes, getuid(), mem);
    svc_env_init(&srv->env, loop, cfg, &srv->rpc);
    p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    srv->priv = p;
    list_init(&p->conns);
    uv_timer_init(loop, &p->timer);
    p->timer.data = srv;
    budget_init(&p->memory, cfg->max_memory, NULL);
    rpc_server_start(&srv->rpc, cfg->write_timeout_ms);
    srv->h2 = (h2_config){
        .loop = loop,
        .max_concurrent_streams = cfg->max_concurrent_streams,
        .memory = &p->memory,
        .conn_memory = cfg->max_connection_memory,
        .idle_timeout_ms = cfg->idle_connection_timeout_ms,
        .stream_ops = rpc_server_stream_ops(),
        .stream_data = &srv->rpc,
        .rbuf = p->rbuf,
        .rbuf_len = sizeof(p->rbuf),
        .conn_closed = on_conn_closed,
        .conn_data = srv,
    };
    rv = start_services(srv);
    if (rv < 0)
        return rv == -EINVAL ? -EPROTO : rv;
    return create_pool(srv);
}

static int add_conn(struct server *srv, uv_stream_t *listener, int fd)
{
    struct server_priv *p = srv->priv;
    int rv = listener ? h2_conn_accept(&srv->h2, listener, &p->conns)
                      : h2_conn_adopt(&srv->h2, fd, &p->conns);

    if (rv == 0)
        srv->rpc.stats.open_connections++;
    return rv;
}

int server_adopt(struct server *srv, int fd)
{
    return add_conn(srv, NULL, fd);
}

unsigned server_connections(const struct server *srv)
{
    return srv->rpc.stats.open_connections;
}

static char *render_metrics(void *data, size_t *len)
{
    struct server *srv = data;

    return metrics_render(&srv->rpc.stats,
                          (double)(uv_now(srv->loop) - srv->env.started_at_ms) / 1000.0, srv->pool,
                          &srv->env, len);
}

static void on_connection(net_listener *l)
{
    struct server *srv = l->data;
    int rv;

    if (server_connections(srv) >= srv->cfg->max_connections) {
        struct server_priv *p = srv->priv;

        if (uv_now(srv->loop) - p->rejected_log_ms >= 1000) { /* once a second at most */
            p->rejected_log_ms = uv_now(srv->loop);
            log_warn("%u connections already: closing new ones (--max-connections)",
                     server_connections(srv));
        }
        net_listener_reject(l);
        return;
    }
    rv = add_conn(srv, (uv_stream_t *)&l->pipe, -1);
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
    if (srv->cfg->metrics_listen || srv->cfg->metrics_socket) {
        rv = net_metrics_open(srv->loop, srv->cfg->metrics_listen, srv->cfg->metrics_socket,
                              srv->cfg->metrics_socket_mode, render_metrics, srv, &p->metrics,
                              err, errlen);
        if (rv < 0)
            return rv;
    }
    log_info("arbiterd listening on %s (mode %04o)", srv->cfg->socket_path, srv->cfg->socket_mode);
    if (srv->cfg->tenant_auth == CFG_TENANT_AUTH_NONE)
        log_warn("tenant auth: none: any process that can open the socket may name any tenant "
                 "(--tenant-auth=peer binds tenants to peer uids and gids)");
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
    rpc_server_stop(&srv->rpc);
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
    rpc_server_cancel_calls(&srv->rpc, RPC_UNAVAILABLE, "server is shutting down");
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

static void each_service_shutdown(struct server *srv)
{
    size_t n;
    const struct svc_service *const *all = svc_services(&n);

    for (size_t i = 0; i < n; i++)
        if (all[i]->shutdown)
            all[i]->shutdown(&srv->env);
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
    each_service_shutdown(srv);
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
    rpc_server_cancel_calls(&srv->rpc, RPC_UNAVAILABLE, "server is shutting down");
    each_conn(srv, h2_conn_close);
    check_done(srv);
}

void server_fatal(struct server *srv, int exit_code, const char *why)
{
    log_error("%s", why);
    srv->exit_code = exit_code;
    server_shutdown(srv);
}

void server_reload(struct server *srv)
{
    struct server_priv *p = srv->priv;
    const struct cfg *cfg = srv->cfg;

    if (p == NULL)
        return;
    p->memory.limit = cfg->max_memory;
    srv->h2.max_concurrent_streams = cfg->max_concurrent_streams; /* new connections */
    srv->h2.conn_memory = cfg->max_connection_memory;             /* new connections */
    srv->h2.idle_timeout_ms = cfg->idle_connection_timeout_ms;
    srv->rpc.write_timeout_ms = cfg->write_timeout_ms;
    if (srv->pool)
        db_pool_reconfigure(srv->pool);
}

void server_deinit(struct server *srv)
{
    size_t n;
    const struct svc_service *const *all = svc_services(&n);

    for (size_t i = n; i-- > 0;)
        if (all[i]->stop)
            all[i]->stop(&srv->env);
    svc_env_deinit(&srv->env);
    db_pool_free(srv->pool);
    srv->pool = NULL;
    rpc_server_deinit(&srv->rpc);
    free(srv->priv);
    srv->priv = NULL;
}
