/* The one server object: loop, configuration, method table, pool, health
 * and the call statistics. main() builds one and passes it down; there is no
 * global server (tests may build several). */
#ifndef ARBITER_SERVER_H
#define ARBITER_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "rpc/method.h"
#include "rpc/status.h"
#include "util/cfg.h"

struct db_pool;
struct health;
struct h2_conn;

struct server_stats {
    uint64_t calls_by_status[RPC_STATUS_COUNT];
    uint64_t calls_total;
    uint32_t calls_in_flight;
    uint32_t open_connections;
};

struct server {
    uv_loop_t *loop;       /* borrowed */
    const struct cfg *cfg; /* borrowed */
    rpc_methods methods;   /* owned */
    struct db_pool *pool;  /* owned; NULL when no database is configured */
    struct health *health; /* owned */
    struct server_stats stats;
    uint64_t started_at_ms; /* uv_now() at start, for uptime */
    uid_t uid;              /* our own uid, for Admin's SO_PEERCRED check */
    int exit_code;          /* what main() returns */
    void *priv;             /* owned: listener, connection list, shutdown state (server.c) */
};

/* Initialises |srv| on caller storage: registers every service's methods,
 * creates the pool (when cfg->database_url is set) and the health state.
 * Does not listen yet. Returns 0, -EINVAL when cfg->database_url is not a
 * valid conninfo, or another negative errno-style code (already logged).
 * Even after a failure, server_shutdown(), running the loop and
 * server_deinit() release everything. */
int server_init(struct server *srv, uv_loop_t *loop, const struct cfg *cfg)
    __attribute__((warn_unused_result));

/* Binds and listens on cfg->socket_path (replacing a stale socket file,
 * refusing one a live server answers on). Returns 0 or -errno; on error
 * |err| receives a one-line description. */
int server_listen(struct server *srv, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Starts graceful shutdown: GOAWAY to every connection, stop accepting,
 * let in-flight calls finish until cfg->shutdown_timeout_ms, then cancel
 * them (UNAVAILABLE), close the pool and every handle, remove the socket
 * file. The loop then runs out. Idempotent. */
void server_shutdown(struct server *srv);

/* Shutdown without grace (a second SIGTERM/SIGINT): starts server_shutdown()
 * if needed, answers every running call UNAVAILABLE and closes every
 * connection at once. */
void server_shutdown_now(struct server *srv);

/* Stops the server because it must not serve (for example an unsafe
 * database role): logs |why| as an error, sets exit_code and shuts down. */
void server_fatal(struct server *srv, int exit_code, const char *why);

/* Frees what server_init() allocated. Call after the loop has run out. */
void server_deinit(struct server *srv);

/* Counts a finished call (by its final status). */
void server_count_call(struct server *srv, rpc_status status);

#endif
