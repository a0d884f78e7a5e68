/* The optional Prometheus text endpoint (--metrics-listen HOST:PORT, a
 * loopback address checked by cfg): a tiny HTTP/1.0 server on uv_tcp that
 * answers GET /metrics with the call statistics, connections and pool
 * statistics, then closes the connection. */
#ifndef ARBITER_NET_METRICS_H
#define ARBITER_NET_METRICS_H

#include <stddef.h>

struct server;
typedef struct net_metrics net_metrics;

/* Listens on |listen| ("HOST:PORT", already validated as loopback) for
 * |srv|. Returns 0 and sets *out, or a negative errno-style code with a
 * one-line description in |err|. */
int net_metrics_open(struct server *srv, const char *listen, net_metrics **out, char *err,
                     size_t errlen) __attribute__((warn_unused_result));

/* Closes the listener and every open client; the memory is freed once the
 * handles are closed. NULL is a no-op. */
void net_metrics_close(net_metrics *m);

/* Renders the metrics text of |srv| into a malloc'd buffer (caller frees)
 * and stores its length in *|len|. Returns NULL when out of memory. */
char *net_metrics_render(struct server *srv, size_t *len);

#endif
