/* The one server object: it wires the layers together. It owns the rpc
 * server (method table, call statistics), the services' environment, the
 * pool, the listener and the connections, and runs graceful shutdown.
 * main() builds one and runs the loop; there is no global server (tests
 * and fuzzers may build several). No layer below sees this struct: each
 * gets the narrow part it needs (h2_config, rpc_server, svc_env). */
#ifndef ARBITER_SERVER_H
#define ARBITER_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "h2/conn.h"
#include "rpc/server.h"
#include "services/svc.h"
#include "util/alloc.h"
#include "util/cfg.h"

struct db_pool;

struct server {
    uv_loop_t *loop;       /* borrowed */
    const struct cfg *cfg; /* borrowed */
    alloc *mem;            /* borrowed: the request path's allocator (NULL: malloc) */
    rpc_server rpc;        /* method table, limits, call statistics */
    svc_env env;           /* what the services see */
    struct db_pool *pool;  /* owned; NULL when no database is configured */
    h2_config h2;          /* what every connection is accepted with */
    int exit_code;         /* what main() returns */
    void *priv;            /* owned: listener, connections, shutdown state (server.c) */
};

/* Initialises |srv| on caller storage: starts every service (each
 * registers its methods), creates the pool (when cfg->database_url is set).
 * Does not listen yet. |mem| is the allocator of the request path (NULL:
 * malloc; tests pass one that fails on purpose). Returns 0, -EINVAL when
 * cfg->database_url is not a valid conninfo or a method table is wrong, or
 * another negative errno-style code (already logged). Even after a
 * failure, server_shutdown(), running the loop and server_deinit()
 * release everything. */
int server_init(struct server *srv, uv_loop_t *loop, const struct cfg *cfg, alloc *mem)
    __attribute__((warn_unused_result));

/* Binds and listens on cfg->socket_path (replacing a stale socket file,
 * refusing one a live server answers on). Returns 0 or -errno; on error
 * |err| receives a one-line description. */
int server_listen(struct server *srv, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Serves a connected stream socket |fd| (a socketpair end, for tests and
 * the request-path fuzzer). Returns 0 or a negative errno-style code. */
int server_adopt(struct server *srv, int fd) __attribute__((warn_unused_result));

/* Open connections right now. */
unsigned server_connections(const struct server *srv);

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

/* Applies the configuration's reloadable settings again (after SIGHUP and
 * cfg_reload()): the pool's sizes, the limits and timeouts of new calls
 * and connections. */
void server_reload(struct server *srv);

/* Frees what server_init() allocated. Call after the loop has run out. */
void server_deinit(struct server *srv);

#endif
