/* The Prometheus text of one scrape: call statistics (rpc), connections,
 * uptime and the pool's statistics (db). The wiring layer renders it for
 * the metrics endpoint (net/metrics.h), which knows neither. */
#ifndef ARBITER_METRICS_H
#define ARBITER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "rpc/server.h"
#include "services/svc.h"

struct db_pool;

/* Renders into a malloc'd buffer (the caller frees) and sets *|len|:
 * the calls, the pool (may be NULL), then what each service's metrics
 * hook adds (|env| may be NULL). Returns NULL when out of memory. */
char *metrics_render(const struct rpc_stats *calls, double uptime_seconds,
                     const struct db_pool *pool, svc_env *env, size_t *len);

#endif
