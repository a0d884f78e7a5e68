#include "net/metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "db/pool.h"
#include "rpc/status.h"
#include "server.h"
#include "util/cfg.h"
#include "util/list.h"
#include "util/log.h"

#define REQ_MAX 8192 /* a metrics scrape is one small GET */

struct net_metrics {
    uv_tcp_t tcp;       /* embedded listener */
    struct server *srv; /* borrowed */
    list_node clients;
    int open_handles; /* listener + clients; freed at zero */
    bool closing;
};

struct client {
    uv_tcp_t tcp;
    uv_write_t wr;
    list_node link;
    net_metrics *m;
    char *resp; /* owned: the answer being written */
    size_t len;
    char req[REQ_MAX];
    bool closing;
};

/* A growable text buffer; on OOM it sets |failed| and stops growing. */
struct text {
    char *p;
    size_t len, cap;
    bool failed;
};

static void textf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void textf(struct text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (t->failed)
        return;
    va_start(ap, fmt);
    n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->failed = true;
        return;
    }
    if (!t->p || (size_t)n >= t->cap - t->len) {
        size_t cap = (t->cap ? t->cap : 4096);
        while (cap - t->len <= (size_t)n)
            cap *= 2;
        char *np = realloc(t->p, cap);
        if (!np) {
            t->failed = true;
            return;
        }
        t->p = np;
        t->cap = cap;
        va_start(ap, fmt);
        vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
    }
    t->len += (size_t)n;
}

static void render_calls(struct text *t, const struct server *srv)
{
    const struct server_stats *s = &srv->stats;

    textf(t, "# HELP arbiterd_calls_total gRPC calls finished, by final status.\n"
             "# TYPE arbiterd_calls_total counter\n");
    for (int i = 0; i < RPC_STATUS_COUNT; i++)
        textf(t, "arbiterd_calls_total{code=\"%s\"} %llu\n", rpc_status_name((rpc_status)i),
              (unsigned long long)s->calls_by_status[i]);
    textf(t,
          "# HELP arbiterd_calls_in_flight gRPC calls running now.\n"
          "# TYPE arbiterd_calls_in_flight gauge\narbiterd_calls_in_flight %u\n"
          "# HELP arbiterd_connections_open HTTP/2 connections open now.\n"
          "# TYPE arbiterd_connections_open gauge\narbiterd_connections_open %u\n"
          "# HELP arbiterd_uptime_seconds Seconds since start.\n"
          "# TYPE arbiterd_uptime_seconds gauge\narbiterd_uptime_seconds %.3f\n",
          (unsigned)s->calls_in_flight, (unsigned)s->open_connections,
          (double)(uv_now(srv->loop) - srv->started_at_ms) / 1000.0);
}

static void render_pool_counters(struct text *t, const struct db_pool_stats *p)
{
    const struct {
        const char *name, *help;
        uint64_t v;
    } c[] = {
        {"acquired", "Connections handed to calls.", p->acquired},
        {"acquire_timeouts", "Calls that waited too long for a connection.", p->acquire_timeouts},
        {"queue_full_rejections", "Calls refused because the wait queue was full.",
         p->queue_full_rejections},
        {"connect_errors", "Failed connection attempts.", p->connect_errors},
        {"reconnects", "Connections replaced after a failure.", p->reconnects},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
        textf(t,
              "# HELP arbiterd_pool_%s_total %s\n# TYPE arbiterd_pool_%s_total counter\n"
              "arbiterd_pool_%s_total %llu\n",
              c[i].name, c[i].help, c[i].name, c[i].name, (unsigned long long)c[i].v);
    textf(t, "# HELP arbiterd_pool_errors_total Database errors by SQLSTATE class.\n"
             "# TYPE arbiterd_pool_errors_total counter\n");
    for (uint32_t i = 0; i < p->n_error_classes && i < 32; i++)
        textf(t, "arbiterd_pool_errors_total{class=\"%.2s\"} %llu\n",
              p->errors_by_class[i].sqlclass, (unsigned long long)p->errors_by_class[i].count);
}

static void render_pool(struct text *t, const struct db_pool *pool)
{
    struct db_pool_stats p;

    if (!pool)
        return;
    db_pool_get_stats(pool, &p);
    textf(t,
          "# HELP arbiterd_pool_connections Pool connections by state.\n"
          "# TYPE arbiterd_pool_connections gauge\n"
          "arbiterd_pool_connections{state=\"idle\"} %u\n"
          "arbiterd_pool_connections{state=\"busy\"} %u\n"
          "arbiterd_pool_connections{state=\"connecting\"} %u\n"
          "# TYPE arbiterd_pool_min gauge\narbiterd_pool_min %u\n"
          "# TYPE arbiterd_pool_max gauge\narbiterd_pool_max %u\n"
          "# HELP arbiterd_pool_waiting Calls waiting for a connection.\n"
          "# TYPE arbiterd_pool_waiting gauge\narbiterd_pool_waiting %u\n"
          "# TYPE arbiterd_pool_peak_waiting gauge\narbiterd_pool_peak_waiting %u\n"
          "# TYPE arbiterd_pool_utilization_percent gauge\n"
          "arbiterd_pool_utilization_percent %.1f\n"
          "# TYPE arbiterd_pool_reachable gauge\narbiterd_pool_reachable %d\n"
          "# HELP arbiterd_pool_acquire_wait_ms Time calls waited for a connection.\n"
          "# TYPE arbiterd_pool_acquire_wait_ms summary\n"
          "arbiterd_pool_acquire_wait_ms{quantile=\"0.5\"} %.3f\n"
          "arbiterd_pool_acquire_wait_ms{quantile=\"0.95\"} %.3f\n"
          "arbiterd_pool_acquire_wait_ms{quantile=\"0.99\"} %.3f\n",
          (unsigned)p.idle, (unsigned)p.busy, (unsigned)p.connecting, (unsigned)p.min,
          (unsigned)p.max, (unsigned)p.waiting, (unsigned)p.peak_waiting, p.utilization_percent,
          p.reachable ? 1 : 0, p.acquire_wait_p50_ms, p.acquire_wait_p95_ms, p.acquire_wait_p99_ms);
    render_pool_counters(t, &p);
}

char *net_metrics_render(struct server *srv, size_t *len)
{
    struct text t = {0};

    render_calls(&t, srv);
    render_pool(&t, srv->pool);
    if (t.failed) {
        free(t.p);
        return NULL;
    }
    *len = t.len;
    return t.p;
}

/* ---- the HTTP side ---------------------------------------------------- */

static void handle_closed(net_metrics *m)
{
    if (--m->open_handles == 0)
        free(m);
}

static void on_client_closed(uv_handle_t *h)
{
    struct client *c = h->data;
    net_metrics *m = c->m;

    free(c->resp);
    free(c);
    handle_closed(m);
}

static void client_close(struct client *c)
{
    if (c->closing)
        return;
    c->closing = true;
    list_remove(&c->link);
    uv_close((uv_handle_t *)&c->tcp, on_client_closed);
}

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    client_close(w->data);
}

/* Builds the whole answer (status line, headers, body) in one buffer. */
static void respond(struct client *c, bool found)
{
    size_t blen = 0;
    char *body = found ? net_metrics_render(c->m->srv, &blen) : NULL;
    struct text t = {0};
    uv_buf_t b;

    if (found && !body) {
        client_close(c);
        return;
    }
    textf(&t,
          "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
          "Connection: close\r\n\r\n%s",
          found ? "200 OK" : "404 Not Found",
          found ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain",
          found ? blen : (size_t)10, found ? body : "not found\n");
    free(body);
    if (t.failed) {
        free(t.p);
        client_close(c);
        return;
    }
    c->resp = t.p;
    c->wr.data = c;
    b = uv_buf_init(c->resp, (unsigned)t.len);
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0)
        client_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct client *c = h->data;
    (void)suggested;
    *buf = uv_buf_init(c->req + c->len, (unsigned)(sizeof(c->req) - 1 - c->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct client *c = s->data;
    bool found;

    (void)buf;
    if (n < 0 || (n == 0 && c->len == sizeof(c->req) - 1)) {
        client_close(c);
        return;
    }
    c->len += (size_t)n;
    c->req[c->len] = '\0';
    if (!strstr(c->req, "\r\n\r\n") && !strstr(c->req, "\n\n")) {
        if (c->len == sizeof(c->req) - 1)
            client_close(c); /* a scrape is never this big */
        return;
    }
    found = strncmp(c->req, "GET /metrics ", 13) == 0 || strncmp(c->req, "GET / ", 6) == 0;
    respond(c, found);
}

static void on_connection(uv_stream_t *s, int status)
{
    net_metrics *m = s->data;
    struct client *c;

    if (status < 0 || m->closing)
        return;
    c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->m = m;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    list_push(&m->clients, &c->link);
    m->open_handles++;
    if (uv_accept(s, (uv_stream_t *)&c->tcp) < 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        client_close(c);
}

static int resolve(const char *listen, struct sockaddr_storage *ss, char *err, size_t errlen)
{
    char host[64];
    uint16_t port;

    if (cfg_parse_listen(listen, host, sizeof(host), &port) < 0) {
        snprintf(err, errlen, "--metrics-listen: bad address %s", listen);
        return -EINVAL;
    }
    if (strcmp(host, "localhost") == 0)
        memcpy(host, "127.0.0.1", 10);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0 ||
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
    snprintf(err, errlen, "--metrics-listen: bad address %s", listen);
    return -EINVAL;
}

static void on_listener_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

int net_metrics_open(struct server *srv, const char *listen, net_metrics **out, char *err,
                     size_t errlen)
{
    struct sockaddr_storage ss;
    net_metrics *m;
    int rv = resolve(listen, &ss, err, errlen);

    if (rv < 0)
        return rv;
    m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->srv = srv;
    list_init(&m->clients);
    m->open_handles = 1;
    uv_tcp_init(srv->loop, &m->tcp);
    m->tcp.data = m;
    rv = uv_tcp_bind(&m->tcp, (struct sockaddr *)&ss, 0);
    if (rv == 0)
        rv = uv_listen((uv_stream_t *)&m->tcp, 64, on_connection);
    if (rv < 0) {
        snprintf(err, errlen, "cannot listen on %s for metrics: %s", listen, uv_strerror(rv));
        m->closing = true;
        uv_close((uv_handle_t *)&m->tcp, on_listener_closed);
        return rv;
    }
    log_info("metrics on http://%s/metrics", listen);
    *out = m;
    return 0;
}

void net_metrics_close(net_metrics *m)
{
    if (!m || m->closing)
        return;
    m->closing = true;
    while (!list_empty(&m->clients))
        client_close(container_of(m->clients.next, struct client, link));
    uv_close((uv_handle_t *)&m->tcp, on_listener_closed);
}
