/* Private to src/db/: the transaction object shared by the handler API
 * (txn.c) and the pool (pool.c). Nothing outside src/db/ includes this. */
#ifndef ARBITER_DB_DB_PRIV_H
#define ARBITER_DB_DB_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "db/db.h"
#include "db/pool.h"
#include "util/list.h"

enum db_txn_state {
    DB_TXN_NEW,     /* being built by the handler */
    DB_TXN_QUEUED,  /* waiting for a connection */
    DB_TXN_RUNNING, /* sent on a connection, waiting for the Sync */
    DB_TXN_DONE,    /* completed or cancelled: the pool forgets it */
};

/* One statement of a transaction and its parameters (text format). */
struct db_txn_item {
    const db_stmt *stmt; /* borrowed, static */
    const char **values; /* arena: stmt->nparams entries, NULL = SQL NULL */
    int nvalues;         /* how many were added */
    PGresult *res;       /* owned: the result, cleared after |done| */
};

struct db_txn {
    struct db_pool *pool; /* borrowed; NULL = no database */
    db_ctx ctx;           /* copy; its pointers are borrowed */
    arena *arena;         /* borrowed: ctx.arena */
    struct db_txn_item items[DB_TXN_MAX_STMTS];
    int nitems;
    enum db_txn_state state;
    bool failed; /* status/message are set */
    rpc_status status;
    const char *message;    /* static or arena */
    const char *constraint; /* arena copy, or NULL */
    char sqlstate[6];
    db_done_fn done;
    void *data;
    /* pool bookkeeping */
    list_node node;       /* wait queue */
    uint64_t enqueued_ns; /* uv_hrtime() at enqueue, for the wait statistics */
    uint64_t expires_ms;  /* acquire wait ends */
    bool deadline_bound;  /* the call's deadline (not acquire_timeout) bounds the wait */
    struct db_conn *conn; /* borrowed while RUNNING */
};

/* Records the first error of |t| (later ones are ignored). |sqlstate| may be
 * NULL. |message| must be static or live in the txn's arena. */
void db_txn_fail(db_txn *t, rpc_status status, const char *sqlstate, const char *message);

/* Fails |t| from a SQLSTATE with the mapped status and a generic message
 * that carries the SQLSTATE but never SQL text or row data; |constraint|
 * (may be NULL) is the violated constraint's name. */
void db_txn_fail_sqlstate(db_txn *t, const char *sqlstate, const char *constraint);

/* Milliseconds until the txn's deadline at |now| (0 when past), or
 * UINT64_MAX without one. */
uint64_t db_txn_remaining_ms(const db_txn *t, uint64_t now);

/* Sets or clears (|fn| NULL) the owner's cancel hook. */
void db_txn_on_cancel(db_txn *t, db_cancel_fn fn);

/* Runs the handler's |done| once (clearing the owner's cancel hook first),
 * then clears the results. |t| must not be used by the pool afterwards. */
void db_txn_complete(db_txn *t);

/* Drops the results collected so far (a cancelled owner). */
void db_txn_clear_results(db_txn *t);

/* pool.c: queues or dispatches |t|; the pool completes it exactly once
 * unless the owner gives up first. */
void db_pool_submit(struct db_pool *pool, db_txn *t);

/* A generic client-safe message for a status, e.g. "already exists". */
const char *db_status_text(rpc_status s);

#endif
