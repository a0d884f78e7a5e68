#include "net/metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "util/cfg.h"
#include "util/list.h"
#include "util/log.h"
#include "util/strbuf.h"

#define REQ_MAX 8192         /* a metrics scrape is one small GET */
#define RESP_MAX (64u << 20) /* far above any metrics text */

struct net_metrics {
    uv_tcp_t tcp; /* embedded listener */
    net_metrics_render_fn render;
    void *render_data; /* borrowed */
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
    size_t blen = 0, len;
    char *body = found ? c->m->render(c->m->render_data, &blen) : NULL;
    strbuf t;
    uv_buf_t b;

    if (found && !body) {
        client_close(c);
        return;
    }
    strbuf_init(&t, RESP_MAX, NULL);
    strbuf_printf(&t,
                  "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                  "Connection: close\r\n\r\n",
                  found ? "200 OK" : "404 Not Found",
                  found ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain",
                  found ? blen : (size_t)10);
    strbuf_add(&t, found ? body : "not found\n", found ? blen : 10);
    free(body);
    c->resp = strbuf_take(&t, &len);
    if (!c->resp) {
        client_close(c);
        return;
    }
    c->wr.data = c;
    b = uv_buf_init(c->resp, (unsigned)len);
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

int net_metrics_open(uv_loop_t *loop, const char *listen, net_metrics_render_fn render, void *data,
                     net_metrics **out, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    net_metrics *m;
    int rv = resolve(listen, &ss, err, errlen);

    if (rv < 0)
        return rv;
    m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->render = render;
    m->render_data = data;
    list_init(&m->clients);
    m->open_handles = 1;
    uv_tcp_init(loop, &m->tcp);
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
