/* The optional Prometheus text endpoint (--metrics-listen HOST:PORT, a
 * loopback address checked by cfg, or --metrics-socket PATH): a tiny
 * HTTP/1.0 server that answers GET /metrics with the text a callback
 * renders (src/metrics.c), then closes the connection. */
#ifndef ARBITER_NET_METRICS_H
#define ARBITER_NET_METRICS_H

#include <stddef.h>
#include <uv.h>

typedef struct net_metrics net_metrics;

/* Renders the text of one scrape into a malloc'd buffer and sets *|len|;
 * NULL when out of memory. */
typedef char *(*net_metrics_render_fn)(void *data, size_t *len);

/* Listens on the Unix socket |unix_path| with permissions |unix_mode| (who
 * may read the metrics is who may open it), or else on |listen|
 * ("HOST:PORT", already validated as loopback), and answers each scrape
 * with |render|(|data|). At most 32 scrapes are served at once (more are
 * closed at accept) and a request must be complete within 5 s. Returns 0
 * and sets *out, or a negative errno-style code with a one-line
 * description in |err|. */
int net_metrics_open(uv_loop_t *loop, const char *listen, const char *unix_path,
                     unsigned unix_mode, net_metrics_render_fn render, void *data,
                     net_metrics **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Closes the listener and every open client; the memory is freed once the
 * handles are closed. NULL is a no-op. */
void net_metrics_close(net_metrics *m);

#endif
