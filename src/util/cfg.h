/* The one configuration struct, filled from defaults, then the environment
 * (ARBITER_<FLAG_IN_CAPS>), then the command line, validated in full at
 * start-up and passed around as const struct cfg *. */
#ifndef ARBITER_UTIL_CFG_H
#define ARBITER_UTIL_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/log.h"

struct cfg {
    /* server */
    const char *socket_path;       /* --socket, ARBITER_SOCKET; default "arbiterd.sock" */
    unsigned socket_mode;          /* --socket-mode, octal, default 0660 */
    uint32_t max_message_bytes;    /* --max-message-bytes, default 4 MiB */
    uint32_t max_concurrent_streams; /* --max-concurrent-streams, default 256 */
    uint64_t shutdown_timeout_ms;  /* --shutdown-timeout-ms, default 10000 */
    enum log_level log_level;      /* --log-level, default info */
    const char *metrics_listen;    /* --metrics-listen HOST:PORT, NULL = off */
    bool enable_test_service;      /* --enable-test-service (undocumented) */

    /* database */
    const char *database_url;      /* --database-url, ARBITER_DATABASE_URL, DATABASE_URL */
    uint32_t pool_min;             /* --pool-min, default 2 */
    uint32_t pool_max;             /* --pool-max, default 10 */
    uint32_t pool_queue;           /* --pool-queue, default 1024 */
    uint64_t acquire_timeout_ms;   /* --acquire-timeout-ms, default 5000 */
    uint64_t idle_timeout_ms;      /* --idle-timeout-ms, default 30000 */
    uint64_t max_lifetime_ms;      /* --max-lifetime-ms, default 1800000 */
    uint64_t statement_timeout_ms; /* --statement-timeout-ms, default 30000 */
    bool no_prepared_statements;   /* --no-prepared-statements */
    bool allow_rls_bypass;         /* --allow-rls-bypass (local experiments only) */

    /* migrate */
    const char *migrate_database_url; /* --migrate-database-url, ARBITER_MIGRATE_DATABASE_URL */
    const char *migrations_dir;       /* --migrations-dir, default the source tree's migrations/ */
    const char *app_role;             /* --app-role, default "arbiter_app" */
    bool migrate_status;              /* migrate --status */
};

/* Fills |c| with the documented defaults. */
void cfg_defaults(struct cfg *c);

#endif
