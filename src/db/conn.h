/* Private to src/db/: one PostgreSQL connection and its state machine.
 *
 *   CONNECTING (host names resolved on the thread pool, then PQconnectPoll)
 *     --PQconnectPoll OK--> CHECKING --check passed--> IDLE
 *   IDLE --db_conn_start(txn)--> BUSY --Sync result--> IDLE (via the pool)
 *   any --error / close--> CLOSING --uv_close done--> freed
 *
 * The pool keeps one list per state (its stats count CHECKING as connecting). The
 * connection owns a uv_poll_t on PQsocket() (heap allocated so that a
 * socket change during connect can close the old handle while a new one
 * starts); the poll handle is closed before PQfinish, which runs in the
 * handle's close callback so the fd number cannot be reused while libuv
 * still knows it. */
#ifndef ARBITER_DB_CONN_H
#define ARBITER_DB_CONN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "db/db_priv.h"
#include "db/hosts.h"
#include "db/sock.h"

enum db_conn_state {
    DB_CONN_CONNECTING, /* PQconnectPoll in progress */
    DB_CONN_CHECKING,   /* connected; role check + settings prepare in flight */
    DB_CONN_IDLE,
    DB_CONN_BUSY,    /* a call's segment is in flight */
    DB_CONN_CLOSING, /* poll handle closing; PQfinish follows */
};

enum db_expect_kind { DB_EXP_SETTINGS, DB_EXP_PREPARE, DB_EXP_EXEC, DB_EXP_CHECK };

/* One result the connection expects before the Sync, in send order. */
struct db_expect {
    unsigned char kind;  /* enum db_expect_kind */
    unsigned char item;  /* statement index for EXEC */
    const db_stmt *stmt; /* the statement for PREPARE */
};

#define DB_CONN_MAX_EXPECT (2 + 2 * DB_TXN_MAX_STMTS)
#define DB_CONN_MAX_DEPTH 8 /* segments in flight on one connection (--pipeline-depth) */

/* One segment in flight: the settings, a txn's statements and the Sync
 * (or the start-up role check), with the results still expected. */
struct db_segment {
    db_txn *txn; /* borrowed; NULL for the check or once the owner gave up */
    struct db_expect expect[DB_CONN_MAX_EXPECT];
    int nexpect, iexpect;
    bool check;      /* the start-up role check */
    bool got_result; /* the current expected item produced a result */
    bool failed;     /* an error happened in this segment */
    bool fatal;      /* ...one that ends the session (57P01, 08xxx): nothing after it ran */
    bool sent;       /* its Sync left libpq: it may commit without us hearing */
    uint64_t start_ns; /* uv_hrtime() when it was sent */
};

struct db_cancel_req;

typedef struct db_conn {
    struct db_pool *pool; /* borrowed */
    PGconn *pg;           /* owned */
    db_sock sock;         /* the poll handle on PQsocket() (db/sock.h) */
    enum db_conn_state state;
    list_node node; /* in the pool's list for the state */
    uint64_t id;
    uint64_t created_ms, idle_since_ms, expires_ms;
    int backend_pid;
    const db_stmt **prepared; /* owned array of borrowed statements (by address) */
    size_t nprepared, cap_prepared;
    /* the segments in flight, oldest first: a ring of |nseg| from |seg0| */
    struct db_segment seg[DB_CONN_MAX_DEPTH];
    unsigned seg0, nseg;
    bool poisoned;     /* must not be reused (leaked settings, protocol confusion) */
    bool check_failed; /* the start-up role check refused this role */
    bool sync_seen;
    struct db_cancel_req *cancel;  /* owned by the work queue while set */
    uint64_t cancel_started_ms;    /* when it was queued */
    uv_work_t resolve;             /* host name lookup (pool->hosts) on the thread pool */
    struct db_hosts_target target; /* its result, owned until conn_begin() copied it */
    int resolve_rv;
    bool resolving; /* lookup in flight: free only in its callback */
} db_conn;

/* Starts libpq's non-blocking connect to |conninfo| (any conninfo string or
 * URI) in UTC with ISO dates, as |application_name|. |target| (may be
 * NULL) replaces the conninfo's host list with resolved addresses
 * (db/hosts.h), so libpq never looks a name up itself. Returns the
 * connection, or NULL when libpq refused at once (logged at debug level).
 * Shared by the pool's connections and the LISTEN connection. */
PGconn *db_connect_start(const char *conninfo, const char *application_name,
                         const struct db_hosts_target *target);

#endif
