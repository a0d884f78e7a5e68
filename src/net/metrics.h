/* The optional Prometheus text endpoint (--metrics-listen HOST:PORT, a
 * loopback address checked by cfg): a tiny HTTP/1.0 server on uv_tcp that
 * answers GET /metrics with the text a callback renders (src/metrics.c),
 * then closes the connection. */
#ifndef ARBITER_NET_METRICS_H
#define ARBITER_NET_METRICS_H

#include <stddef.h>
#include <uv.h>

typedef struct net_metrics net_metrics;

/* Renders the text of one scrape into a malloc'd buffer and sets *|len|;
 * NULL when out of memory. */
typedef char *(*net_metrics_render_fn)(void *data, size_t *len);

/* Listens on |listen| ("HOST:PORT", already validated as loopback) and
 * answers each scrape with |render|(|data|). Returns 0 and sets *out, or a
 * negative errno-style code with a one-line description in |err|. */
int net_metrics_open(uv_loop_t *loop, const char *listen, net_metrics_render_fn render, void *data,
                     net_metrics **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Closes the listener and every open client; the memory is freed once the
 * handles are closed. NULL is a no-op. */
void net_metrics_close(net_metrics *m);

#endif
