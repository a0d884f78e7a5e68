/* The one asynchronous PostgreSQL pool. The only code that opens
 * connections. Lives inside struct server. */
#ifndef ARBITER_DB_POOL_H
#define ARBITER_DB_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "util/alloc.h"
#include "util/cfg.h"

typedef struct db_pool db_pool;

struct db_pool_stats {
    uint32_t total, idle, busy, connecting;
    uint32_t waiting, peak_waiting;
    uint32_t min, max;
    uint64_t acquired, acquire_timeouts, queue_full_rejections;
    uint64_t connect_errors, reconnects;
    /* errors by SQLSTATE class: two-char class codes and counts */
    struct {
        char sqlclass[3];
        uint64_t count;
    } errors_by_class[32];
    uint32_t n_error_classes;
    double acquire_wait_p50_ms, acquire_wait_p95_ms, acquire_wait_p99_ms;
    double utilization_percent; /* busy / max * 100 */
    const char *status;         /* "healthy", "degraded" (>75 %), "unhealthy" (>90 %) */
    bool reachable;             /* at least one connection works, or none needed yet */
};

/* Called when the pool's serving state changes (database reachable or
 * not), and with |fatal| set when the database role is unsafe (superuser,
 * BYPASSRLS, or owns a table of the arbiter schema) and the server must
 * not serve; |why| then says why and how to fix it. */
struct db_pool_events {
    void (*serving_changed)(void *data, bool serving);
    void (*fatal)(void *data, const char *why);
    void *data;
};

/* Creates the pool and starts connecting in the background (pool_min
 * connections, at least one; an unreachable database is retried with
 * backoff 100 ms .. 5 s, not an error). Serving starts false and turns true
 * (serving_changed) when the first connection passed the role check; every
 * new connection runs that check. Host names of the conninfo (one or a
 * list) are resolved on the libuv thread pool, since libpq would block the
 * loop doing it, and every address is tried in order (db/hosts.h); socket
 * directories and numeric addresses need no lookup. |events| is copied;
 * |cfg|, |loop| and |mem| (the allocator of the calls' bookkeeping, NULL
 * for malloc) are borrowed for the pool's life. Returns 0, -EINVAL for a
 * missing or bad conninfo, or -ENOMEM. */
int db_pool_new(uv_loop_t *loop, const struct cfg *cfg, const struct db_pool_events *events,
                alloc *mem, db_pool **out) __attribute__((warn_unused_result));

/* Fails every waiting call with UNAVAILABLE, closes every connection and
 * handle; |done| runs when all handles are closed, then the pool may be
 * freed with db_pool_free(). */
void db_pool_close(db_pool *pool, void (*done)(void *data), void *data);
void db_pool_free(db_pool *pool);

/* Takes the pool sizes and --pipeline-depth from the configuration again
 * (SIGHUP); the timeouts are read from it each time anyway. Connections
 * above a lower --pool-max close as they become idle. */
void db_pool_reconfigure(db_pool *pool);

/* True when a connection works (or is being made after one worked) and the
 * role is acceptable: the overall Health status. */
bool db_pool_serving(const db_pool *pool);

/* Fills |out| (no allocation; |out->status| is a static string).
 * Acquire-wait percentiles cover the last 2048 acquisitions. */
void db_pool_get_stats(const db_pool *pool, struct db_pool_stats *out);

#endif
