/* The Prometheus text of one scrape: call statistics (rpc), connections,
 * uptime and the pool's statistics (db). The wiring layer renders it for
 * the metrics endpoint (net/metrics.h), which knows neither. */
#ifndef ARBITER_METRICS_H
#define ARBITER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "rpc/server.h"

struct db_pool;

/* Renders into a malloc'd buffer (the caller frees) and sets *|len|.
 * |pool| may be NULL, and |vector_impl| (the database's vector functions,
 * svc_env.vector_impl) NULL while unknown. Returns NULL when out of memory. */
char *metrics_render(const struct rpc_stats *calls, double uptime_seconds,
                     const struct db_pool *pool, const char *vector_impl, size_t *len);

#endif
