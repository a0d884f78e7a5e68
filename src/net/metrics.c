#include "net/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "net/listener.h"
#include "util/cfg.h"
#include "util/list.h"
#include "util/log.h"
#include "util/strbuf.h"

#define REQ_MAX 8192               /* a metrics scrape is one small GET */
#define RESP_MAX (64u << 20)       /* far above any metrics text */
#define MAX_CLIENTS 32             /* scrapes at once; more are closed at accept */
#define HEADER_DEADLINE_MS 5000    /* a request must be complete by then */

struct net_metrics {
    union {
        uv_tcp_t tcp;         /* --metrics-listen HOST:PORT */
        net_listener unix_l;  /* --metrics-socket PATH */
    } l;
    bool is_unix;
    uv_loop_t *loop;
    net_metrics_render_fn render;
    void *render_data; /* borrowed */
    list_node clients;
    unsigned nclients;
    int open_handles; /* listener + two per client; freed at zero */
    bool closing;
};

struct client {
    union {
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    uv_timer_t deadline;
    uv_write_t wr;
    list_node link;
    net_metrics *m;
    char *resp; /* owned: the answer being written */
    size_t len;
    int handles; /* stream + timer; freed at zero */
    char req[REQ_MAX];
    bool closing;
};

/* ---- the HTTP side ---------------------------------------------------- */

static void handle_closed(net_metrics *m)
{
    if (--m->open_handles == 0)
        free(m);
}

static void on_client_handle_closed(uv_handle_t *h)
{
    struct client *c = h->data;
    net_metrics *m = c->m;

    handle_closed(m);
    if (--c->handles > 0)
        return;
    free(c->resp);
    free(c);
}

static void client_close(struct client *c)
{
    if (c->closing)
        return;
    c->closing = true;
    list_remove(&c->link);
    c->m->nclients--;
    uv_close((uv_handle_t *)&c->h.stream, on_client_handle_closed);
    uv_close((uv_handle_t *)&c->deadline, on_client_handle_closed);
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
    uv_timer_stop(&c->deadline);
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
    uv_read_stop(&c->h.stream);
    if (uv_write(&c->wr, &c->h.stream, &b, 1, on_written) < 0)
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

/* A request that is not complete in time holds a descriptor for nothing. */
static void on_deadline(uv_timer_t *t)
{
    client_close(t->data);
}

/* Accepts a pending scrape from |server|, or closes it when there are
 * MAX_CLIENTS already. */
static void accept_client(net_metrics *m, uv_stream_t *server)
{
    struct client *c = calloc(1, sizeof(*c));
    int rv;

    if (!c)
        return;
    rv = m->is_unix ? uv_pipe_init(m->loop, &c->h.pipe, 0) : uv_tcp_init(m->loop, &c->h.tcp);
    if (rv < 0) {
        free(c);
        return;
    }
    c->m = m;
    c->h.stream.data = c;
    uv_timer_init(m->loop, &c->deadline);
    c->deadline.data = c;
    c->handles = 2;
    m->open_handles += 2;
    list_push(&m->clients, &c->link);
    m->nclients++;
    if (uv_accept(server, &c->h.stream) < 0 || m->nclients > MAX_CLIENTS ||
        uv_read_start(&c->h.stream, on_alloc, on_read) < 0) {
        client_close(c);
        return;
    }
    uv_timer_start(&c->deadline, on_deadline, HEADER_DEADLINE_MS, 0);
}

static void on_tcp_connection(uv_stream_t *s, int status)
{
    net_metrics *m = s->data;

    if (status == 0 && !m->closing)
        accept_client(m, s);
}

static void on_unix_connection(net_listener *l)
{
    net_metrics *m = l->data;

    if (!m->closing)
        accept_client(m, (uv_stream_t *)&l->pipe);
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

static void on_unix_listener_closed(net_listener *l)
{
    handle_closed(l->data);
}

static net_metrics *metrics_new(uv_loop_t *loop, net_metrics_render_fn render, void *data)
{
    net_metrics *m = calloc(1, sizeof(*m));

    if (!m)
        return NULL;
    m->loop = loop;
    m->render = render;
    m->render_data = data;
    list_init(&m->clients);
    m->open_handles = 1;
    return m;
}

/* On failure |m| is gone (freed now or when its handle closed). */
static int open_tcp(net_metrics *m, const char *listen, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int rv = resolve(listen, &ss, err, errlen);

    if (rv < 0) {
        free(m);
        return rv;
    }
    uv_tcp_init(m->loop, &m->l.tcp);
    m->l.tcp.data = m;
    rv = uv_tcp_bind(&m->l.tcp, (struct sockaddr *)&ss, 0);
    if (rv == 0)
        rv = uv_listen((uv_stream_t *)&m->l.tcp, 64, on_tcp_connection);
    if (rv < 0) {
        snprintf(err, errlen, "cannot listen on %s for metrics: %s", listen, uv_strerror(rv));
        m->closing = true;
        uv_close((uv_handle_t *)&m->l.tcp, on_listener_closed);
        return rv;
    }
    log_info("metrics on http://%s/metrics", listen);
    return 0;
}

/* On failure |m| is freed. */
static int open_unix(net_metrics *m, const char *path, unsigned mode, char *err, size_t errlen)
{
    int rv;

    m->is_unix = true;
    m->l.unix_l.on_connection = on_unix_connection;
    m->l.unix_l.on_close = on_unix_listener_closed;
    m->l.unix_l.data = m;
    rv = net_listener_open(&m->l.unix_l, m->loop, path, mode, err, errlen);
    if (rv < 0) {
        if (m->l.unix_l.closing)
            m->closing = true; /* freed when the handle closed (on_close) */
        else
            free(m);
        return rv;
    }
    log_info("metrics on %s (mode %04o), GET /metrics", path, mode);
    return 0;
}

int net_metrics_open(uv_loop_t *loop, const char *listen, const char *unix_path,
                     unsigned unix_mode, net_metrics_render_fn render, void *data,
                     net_metrics **out, char *err, size_t errlen)
{
    net_metrics *m = metrics_new(loop, render, data);
    int rv;

    if (!m)
        return -ENOMEM;
    rv = unix_path ? open_unix(m, unix_path, unix_mode, err, errlen)
                   : open_tcp(m, listen, err, errlen);
    if (rv == 0)
        *out = m;
    return rv;
}

void net_metrics_close(net_metrics *m)
{
    if (!m || m->closing)
        return;
    m->closing = true;
    while (!list_empty(&m->clients))
        client_close(container_of(m->clients.next, struct client, link));
    if (m->is_unix)
        net_listener_close(&m->l.unix_l);
    else
        uv_close((uv_handle_t *)&m->l.tcp, on_listener_closed);
}
