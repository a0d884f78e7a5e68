/* The handler-facing database API: describe one transaction, run it in one
 * round trip, read typed columns.
 *
 *     static const db_stmt get_agent = {
 *         .name = "agent_get", .sql = "SELECT ... WHERE id = $1", .nparams = 1,
 *         .flags = DB_STMT_ONE_ROW,
 *     };
 *
 *     db_txn *t = db_txn_new(srv->pool, call);
 *     db_txn_stmt(t, &get_agent);
 *     db_param_text(t, req->id);
 *     db_txn_run(t, on_agent, NULL);
 *
 *     static void on_agent(rpc_call *call, db_txn *t, void *data) {
 *         if (db_txn_failed(call, t))   // finished the call with the mapped status
 *             return;
 *         ... db_text(t, 0, 0, 1) ... rpc_call_reply(call, &msg.base);
 *     }
 *
 * The pool runs, in pipeline mode on one connection: the tenant settings
 * (set_config(..., true) of app.current_tenant/user/session from the call's
 * metadata, '' when absent, and statement_timeout = min(remaining deadline,
 * --statement-timeout-ms)), then every statement (prepared once per
 * connection, then PQsendQueryPrepared; unnamed with
 * --no-prepared-statements), then one Sync. Everything up to the Sync is one
 * implicit transaction: all or nothing. Do not put BEGIN/COMMIT or
 * set_config(..., false) into statements: a connection that is not idle
 * after the Sync is destroyed, and a tenant setting that survives a Sync is
 * detected by the next call and destroys the connection too.
 *
 * |done| runs exactly once, after the Sync result arrived or with an error
 * status (possibly synchronously inside db_txn_run(): queue full, database
 * down, bad parameters), unless the call was cancelled first: then it never
 * runs, the result is dropped and the backend query is cancelled. The
 * txn's cancel hook is cleared before |done| runs, so |done| may start a
 * second txn for the same call.
 *
 * Errors carry the mapped status and a client-safe message ("invalid value
 * (SQLSTATE 22012)"): never SQL text, server messages or row data. Pool
 * conditions: queue full → RESOURCE_EXHAUSTED; acquire wait over
 * --acquire-timeout-ms → UNAVAILABLE, over the call's deadline →
 * DEADLINE_EXCEEDED; database down or connection lost → UNAVAILABLE.
 *
 * A call runs at most one txn at a time: the running txn owns the call's
 * cancel hook (rpc_call_on_cancel). Chain a second txn from |done| instead.
 *
 * All memory is in the call's arena; results are valid only inside |done|.
 */
#ifndef ARBITER_DB_DB_H
#define ARBITER_DB_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc/call.h"
#include "rpc/status.h"

struct db_pool;
typedef struct db_txn db_txn;

enum db_stmt_flags {
    DB_STMT_ONE_ROW = 1 << 0, /* zero rows → the txn fails with NOT_FOUND */
};

/* A statement known at compile time (static const storage). */
typedef struct db_stmt {
    const char *name; /* unique prepared-statement name */
    const char *sql;  /* one statement, $1..$n placeholders, no trailing ';' */
    int nparams;
    unsigned flags;
    const char *not_found; /* message for DB_STMT_ONE_ROW; NULL = "not found" */
} db_stmt;

/* Starts a transaction for |call| on |pool|. Takes tenant, user, session and
 * deadline from the call. Never NULL: on out-of-memory the txn is marked
 * failed and db_txn_run() reports it. |pool| may be NULL (no database
 * configured): the txn then fails with UNAVAILABLE. */
db_txn *db_txn_new(struct db_pool *pool, rpc_call *call);

/* Appends a statement; its parameters follow with db_param_*(), in order.
 * At most DB_TXN_MAX_STMTS statements. */
#define DB_TXN_MAX_STMTS 16
void db_txn_stmt(db_txn *t, const db_stmt *stmt);

/* Parameters of the last statement added, in order. Values are copied. */
void db_param_text(db_txn *t, const char *value); /* NULL → SQL NULL */
void db_param_textn(db_txn *t, const char *value, size_t len);
void db_param_int64(db_txn *t, int64_t value);
void db_param_double(db_txn *t, double value);
void db_param_bool(db_txn *t, bool value);
void db_param_null(db_txn *t);
/* A text[] parameter (quoted as an array literal). */
void db_param_text_array(db_txn *t, char *const *items, size_t n);

/* Runs the transaction. |done| receives the call, the txn and |data|. */
typedef void (*db_done_fn)(rpc_call *call, db_txn *t, void *data);
void db_txn_run(db_txn *t, db_done_fn done, void *data);

/* The outcome, valid inside |done|. */
rpc_status db_txn_status(const db_txn *t);
const char *db_txn_message(const db_txn *t);  /* safe for the client */
const char *db_txn_sqlstate(const db_txn *t); /* "" when not a server error */

/* If the txn failed, finishes |call| with its status and message and
 * returns true; otherwise returns false. */
bool db_txn_failed(rpc_call *call, db_txn *t);

/* Result access for statement |stmt| (0-based, in the order added). */
int db_rows(const db_txn *t, int stmt);
int64_t db_affected(const db_txn *t, int stmt); /* PQcmdTuples */
bool db_isnull(const db_txn *t, int stmt, int row, int col);
/* Text value, "" for NULL; valid inside |done| only. */
const char *db_text(const db_txn *t, int stmt, int row, int col);
/* Typed readers; NULL or unparsable values read as 0 / false. */
int64_t db_int64(const db_txn *t, int stmt, int row, int col);
double db_double(const db_txn *t, int stmt, int row, int col);
bool db_bool(const db_txn *t, int stmt, int row, int col);
/* A timestamptz column as seconds and nanoseconds since the epoch. */
void db_timestamp(const db_txn *t, int stmt, int row, int col, int64_t *seconds, int32_t *nanos);
/* A text[] column, parsed into arena strings (NULL column: 0 items; NULL
 * elements read as ""). Returns 0, -EINVAL or -ENOMEM. */
int db_text_array(const db_txn *t, int stmt, int row, int col, arena *a, char ***items, size_t *n);

/* Maps a SQLSTATE (5 chars, may be NULL) to a gRPC status, per the one
 * table in DESIGN.md. NULL or malformed → INTERNAL. */
rpc_status db_error_to_status(const char *sqlstate);

/* Parses PostgreSQL's ISO text form of a timestamptz ("2026-01-02
 * 03:04:05.123456+00", any UTC offset, optional " BC"; "infinity" reads as
 * INT64_MAX seconds, "-infinity" as INT64_MIN). Returns 0, or -EINVAL
 * (outputs untouched). */
int db_parse_timestamp(const char *s, int64_t *seconds, int32_t *nanos);

/* Parses a one-dimensional text[] in PostgreSQL's output form ("{a,\"b c\"}")
 * into |a|; NULL elements read as "". Returns 0, -EINVAL for a malformed or
 * multi-dimensional value, or -ENOMEM. Outputs are written only on success. */
int db_parse_text_array(const char *s, arena *a, char ***items, size_t *n);

#endif
