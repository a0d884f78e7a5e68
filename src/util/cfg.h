/* The one configuration struct, filled from defaults, then the environment
 * (ARBITER_<FLAG_IN_CAPS>), then the command line, validated in full at
 * start-up and passed around as const struct cfg *. */
#ifndef ARBITER_UTIL_CFG_H
#define ARBITER_UTIL_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/log.h"

/* --tenant-auth: who may name a tenant in x-tenant-id. */
enum cfg_tenant_auth {
    CFG_TENANT_AUTH_NONE = 0, /* any peer that can open the socket, any tenant */
    CFG_TENANT_AUTH_PEER,     /* only tenants granted to the peer's uid or gid */
};

struct cfg {
    const char *config_path; /* --config FILE, ARBITER_CONFIG; NULL = none */
    char *config_text;       /* owned: the file's text, which string settings point into */

    /* server */
    const char *socket_path;             /* --socket, ARBITER_SOCKET; default "./arbiterd.sock" */
    unsigned socket_mode;                /* --socket-mode, octal, default 0660 */
    uint32_t max_message_bytes;          /* --max-message-bytes, default 4 MiB */
    uint32_t max_concurrent_streams;     /* --max-concurrent-streams, default 256 */
    uint64_t shutdown_timeout_ms;        /* --shutdown-timeout-ms, default 10000 */
    uint32_t max_connections;            /* --max-connections, default 1024 */
    uint64_t idle_connection_timeout_ms; /* --idle-connection-timeout-ms, default 300000 */
    uint64_t write_timeout_ms;           /* --write-timeout-ms, default 30000 */
    uint64_t max_connection_memory;      /* --max-connection-memory, default 128 MiB */
    uint64_t max_memory;                 /* --max-memory, default 1 GiB */
    enum log_level log_level;            /* --log-level, default info */
    const char *metrics_listen;          /* --metrics-listen HOST:PORT, NULL = off */
    const char *metrics_socket;          /* --metrics-socket PATH, NULL = off */
    unsigned metrics_socket_mode;        /* --metrics-socket-mode, octal, default 0600 */
    enum cfg_tenant_auth tenant_auth;    /* --tenant-auth none|peer, default none */
    uint64_t tenant_grants_refresh_ms;   /* --tenant-grants-refresh-ms, default 5000 */
    bool enable_test_service;            /* --enable-test-service (undocumented) */

    /* database */
    const char *database_url;      /* --database-url, ARBITER_DATABASE_URL, DATABASE_URL */
    uint32_t pool_min;             /* --pool-min, default 2 */
    uint32_t pool_max;             /* --pool-max, default 10 */
    uint32_t pool_queue;           /* --pool-queue, default 1024 */
    uint32_t pipeline_depth;       /* --pipeline-depth, default 1 */
    uint64_t acquire_timeout_ms;   /* --acquire-timeout-ms, default 5000 */
    uint64_t idle_timeout_ms;      /* --idle-timeout-ms, default 30000 */
    uint64_t max_lifetime_ms;      /* --max-lifetime-ms, default 1800000 */
    uint64_t statement_timeout_ms; /* --statement-timeout-ms, default 30000 */
    bool no_prepared_statements;   /* --no-prepared-statements */
    bool allow_rls_bypass;         /* --allow-rls-bypass (local experiments only) */
    /* --listen-database-url: the LISTEN/NOTIFY connection (NULL: see cfg_listen_url()) */
    const char *listen_database_url;

    /* migrate */
    const char *migrate_database_url; /* --migrate-database-url, ARBITER_MIGRATE_DATABASE_URL */
    const char *migrations_dir;       /* --migrations-dir, default the source tree's migrations/ */
    const char *app_role;             /* --app-role, default "arbiter_app" */
    bool migrate_status;              /* migrate --status */
};

/* What the command line asks for. */
enum cfg_command {
    CFG_CMD_SERVE = 0, /* `arbiterd [serve]` */
    CFG_CMD_MIGRATE,   /* `arbiterd migrate [--status]` */
    CFG_CMD_HELP,      /* --help anywhere: print cfg_usage() and exit 0 */
    CFG_CMD_VERSION,   /* --version anywhere: print the version and exit 0 */
};

/* "none" / "peer" ↔ the mode. Parse returns 0 or -EINVAL. */
int cfg_tenant_auth_parse(const char *s, enum cfg_tenant_auth *out);
const char *cfg_tenant_auth_name(enum cfg_tenant_auth mode);

/* Fills |c| with the documented defaults. */
void cfg_defaults(struct cfg *c);

/* Fills |c| from the defaults, then |envp| (a NULL-terminated "NAME=value"
 * array such as environ; may be NULL), then argv[1..argc-1]: an optional
 * subcommand ("serve" or "migrate") followed by flags written "--flag value"
 * or "--flag=value". Every value is validated (numbers are decimal and
 * range-checked, the socket mode is octal, pool_min <= pool_max, the metrics
 * address is loopback). String fields borrow from |argv| and |envp|, which
 * must outlive |c|.
 *
 * Returns 0 and sets *cmd, or -EINVAL and writes one line without a trailing
 * newline that says what is wrong into |err| (|errlen| bytes). */
int cfg_load(struct cfg *c, int argc, char *const argv[], char *const envp[], enum cfg_command *cmd,
             char *err, size_t errlen) __attribute__((warn_unused_result));

/* Frees what cfg_load() allocated (the --config file's text). */
void cfg_free(struct cfg *c);

/* Loads the configuration again from the same sources (SIGHUP): the
 * --config file, the environment, |argv|. Settings a running server can
 * change (log level, pool sizes, timeouts, limits) are copied into |live|
 * and each change is logged; a changed setting that needs a restart is
 * logged as such and left alone. Returns the count of changes applied, or
 * -EINVAL with a one-line reason in |err| (nothing changed then). */
int cfg_reload(struct cfg *live, int argc, char *const argv[], char *const envp[], char *err,
               size_t errlen) __attribute__((warn_unused_result));

/* The conninfo of the LISTEN connection: --listen-database-url, else
 * --database-url unless --no-prepared-statements says that one is a
 * transaction-mode pooler (where LISTEN does not work); NULL: none. */
const char *cfg_listen_url(const struct cfg *c);

/* Prints the usage text: every documented flag with its environment
 * variable and default. */
void cfg_usage(FILE *out);

/* Parses a decimal unsigned number with no sign, blanks or suffix into
 * [min, max]. Returns 0, -EINVAL (not a number) or -ERANGE. */
int cfg_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
    __attribute__((warn_unused_result));

/* Splits "HOST:PORT" (IPv6 as "[::1]:PORT") and checks that HOST is a
 * loopback address (127.0.0.0/8, ::1 or "localhost") and PORT is 1-65535.
 * Copies the host (without brackets) into |host|. Returns 0, -EINVAL or
 * -EADDRNOTAVAIL when the host is not loopback. */
int cfg_parse_listen(const char *s, char *host, size_t hostlen, uint16_t *port)
    __attribute__((warn_unused_result));

#endif
