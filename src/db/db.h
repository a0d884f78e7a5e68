/* The database API for the layers above: describe one transaction, run it
 * in one round trip, read its results.
 *
 *     static const db_stmt get_agent = {
 *         .name = "agent_get", .sql = "SELECT ... WHERE id = $1", .nparams = 1,
 *     };
 *
 *     db_txn *t = db_txn_new(pool, &ctx);     // NULL: out of memory
 *     db_txn_stmt(t, &get_agent);
 *     db_param_text(t, id);
 *     db_txn_run(t, on_done, data);
 *
 *     static void on_done(db_txn *t, void *data) {
 *         if (db_txn_status(t) != RPC_OK) ... db_txn_message(t) ...
 *         const db_result *r = db_txn_result(t, 0); ... db_result_text(r, 0, 0) ...
 *     }
 *
 * The pool runs, in pipeline mode on one connection: the tenant settings
 * (set_config(..., true) of app.current_tenant/user/session from the
 * context, '' when absent, and statement_timeout = min(time left until the
 * deadline, --statement-timeout-ms)), then every statement (prepared once
 * per connection, then PQsendQueryPrepared; unnamed with
 * --no-prepared-statements), then one Sync. Everything up to the Sync is one
 * implicit transaction: all or nothing. Do not put BEGIN/COMMIT or
 * set_config(..., false) into statements: a connection that is not idle
 * after the Sync is destroyed, and a tenant setting that survives a Sync is
 * detected by the next call and destroys the connection too.
 *
 * |done| runs exactly once, after the Sync result arrived or with an error
 * status (possibly synchronously inside db_txn_run(): queue full, database
 * down, bad parameters), unless the owner gave up first (the cancel hook
 * the txn registered through the context ran): then it never runs, the
 * result is dropped and the backend query is cancelled. The txn clears its
 * cancel hook before |done| runs, so |done| may start a second txn for the
 * same owner. An owner runs one txn at a time: the running txn owns the
 * owner's cancel hook. The txn and its results are valid only until |done|
 * returns, and |done| may free the arena that holds them.
 *
 * Errors carry a status from DESIGN.md's table and a client-safe message
 * ("invalid value (SQLSTATE 22012)"): never SQL text, server messages or
 * row data. Pool conditions: queue full → RESOURCE_EXHAUSTED; acquire wait
 * over --acquire-timeout-ms → UNAVAILABLE, past the deadline →
 * DEADLINE_EXCEEDED; database down or connection lost → UNAVAILABLE.
 *
 * All memory is in the context's arena; results are valid only inside
 * |done|.
 */
#ifndef ARBITER_DB_DB_H
#define ARBITER_DB_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/arena.h"
#include "util/status.h"

struct db_pool;
typedef struct db_txn db_txn;
typedef struct db_result db_result;

enum db_stmt_flags {
    DB_STMT_ONE_ROW = 1 << 0, /* zero rows → the txn fails with NOT_FOUND */
    DB_STMT_UNNAMED = 1 << 1, /* never prepared: sent with its text every time */
};

/* A statement. Static storage, or owned by whoever registered it for the
 * pool's whole life: connections remember which statements they prepared
 * by the struct's address. SQL built for one call (in its arena) must be
 * DB_STMT_UNNAMED, or a later statement at the same address would be taken
 * for it. */
typedef struct db_stmt {
    const char *name; /* unique prepared-statement name */
    const char *sql;  /* one statement, $1..$n placeholders, no trailing ';' */
    int nparams;
    unsigned flags;
    const char *not_found; /* message for DB_STMT_ONE_ROW; NULL = "not found" */
} db_stmt;

/* The owner's one cancel hook: |fn| runs at most once, with |data|, when
 * the owner gives up (client cancel, deadline, shutdown). */
typedef void (*db_cancel_fn)(void *data);

/* Whom a transaction runs for. Copied by db_txn_new(); the strings and the
 * arena are borrowed and must outlive the txn. */
typedef struct db_ctx {
    arena *arena;                        /* the txn, its parameters and messages */
    const char *tenant, *user, *session; /* the call's identity; NULL = none */
    uint64_t deadline_ms;                /* in uv_now() time; UINT64_MAX = none */
    bool read_only;                      /* the statements change nothing */
    /* Sets (|fn| non-NULL) or clears the owner's cancel hook. */
    void (*set_cancel)(void *owner, db_cancel_fn fn, void *data);
    /* Tells the owner that a write's commit was sent and is not answered yet
     * (true), or that it was (false). May be NULL. */
    void (*set_in_doubt)(void *owner, bool in_doubt);
    void *owner;
    /* The server's own housekeeping, not a call: it runs on an idle
     * connection that calls leave spare (another one idle too, or no call
     * running) or fails at once (UNAVAILABLE); it never waits in the queue
     * behind calls and stays out of the acquisition statistics. */
    bool background;
} db_ctx;

/* Starts a transaction on |pool| for |ctx|. Returns NULL when the arena is
 * out of memory (nothing to clean up). |pool| may be NULL (no database
 * configured): the txn then fails with UNAVAILABLE when run. */
db_txn *db_txn_new(struct db_pool *pool, const db_ctx *ctx);

/* Appends a statement; its parameters follow with db_param_*(), in order.
 * At most DB_TXN_MAX_STMTS statements. */
#define DB_TXN_MAX_STMTS 16
void db_txn_stmt(db_txn *t, const db_stmt *stmt);

/* Parameters of the last statement added, in order, in PostgreSQL's text
 * form. Values are copied into the arena. */
void db_param_text(db_txn *t, const char *value); /* NULL → SQL NULL */
void db_param_textn(db_txn *t, const char *value, size_t len);
void db_param_int64(db_txn *t, int64_t value);
void db_param_uint64(db_txn *t, uint64_t value);
void db_param_double(db_txn *t, double value);
void db_param_bool(db_txn *t, bool value);
void db_param_bytes(db_txn *t, const uint8_t *data, size_t len); /* bytea, hex form */
void db_param_null(db_txn *t);
/* A parameter already in the arena (not copied); NULL → SQL NULL. */
void db_param_take(db_txn *t, const char *value);

/* The text bound as parameter |i| of statement |stmt| (NULL for SQL NULL
 * or out of range): for tests and debug logs. */
const char *db_txn_param(const db_txn *t, int stmt, int i);

/* Runs the transaction; |done| receives the txn and |data|. */
typedef void (*db_done_fn)(db_txn *t, void *data);
void db_txn_run(db_txn *t, db_done_fn done, void *data);

/* The outcome, valid inside |done|. */
rpc_status db_txn_status(const db_txn *t);
const char *db_txn_message(const db_txn *t);    /* safe for the client; "" when OK */
const char *db_txn_sqlstate(const db_txn *t);   /* "" when not a server error */
const char *db_txn_constraint(const db_txn *t); /* the violated constraint, or "" */

/* ---- results -------------------------------------------------------------- */

/* The result of statement |stmt| (0-based, in the order added), or NULL. */
const db_result *db_txn_result(const db_txn *t, int stmt);

int db_result_rows(const db_result *r);
int db_result_cols(const db_result *r);
const char *db_result_name(const db_result *r, int col); /* column name */
unsigned db_result_type(const db_result *r, int col);    /* type OID */
int64_t db_result_affected(const db_result *r);          /* rows a command touched */
bool db_result_isnull(const db_result *r, int row, int col);
/* Text value, "" for NULL; |len| (may be NULL) receives its length. */
const char *db_result_text(const db_result *r, int row, int col, size_t *len);

/* A result built from text values, for tests of code that reads results:
 * |ncols| columns named |names| with type OIDs |types| (NULL: text), and
 * |nrows| rows of |values| in row-major order (NULL = SQL NULL). Returns
 * NULL when out of memory. Free with db_result_free(). */
db_result *db_result_new(int ncols, const char *const *names, const unsigned *types, int nrows,
                         const char *const *values);
void db_result_free(db_result *r);

/* Shortcuts for hand-written handlers: statement |stmt| of |t|. Missing
 * results read as zero rows. */
int db_rows(const db_txn *t, int stmt);
int64_t db_affected(const db_txn *t, int stmt);
bool db_isnull(const db_txn *t, int stmt, int row, int col);
const char *db_text(const db_txn *t, int stmt, int row, int col); /* "" for NULL */
/* Typed readers: 0 / false for NULL; -EINVAL when the text does not parse. */
int db_int64(const db_txn *t, int stmt, int row, int col, int64_t *out);

/* ---- PostgreSQL's text forms -------------------------------------------- */

/* Maps a SQLSTATE (5 chars, may be NULL) to a gRPC status, per the one
 * table in DESIGN.md. NULL or malformed → INTERNAL. */
rpc_status db_error_to_status(const char *sqlstate);

/* Parses PostgreSQL's ISO text form of a timestamptz ("2026-01-02
 * 03:04:05.123456+00", any UTC offset or Z, a T for the blank, optional
 * " BC"; "infinity" reads as
 * INT64_MAX seconds, "-infinity" as INT64_MIN). Returns 0, or -EINVAL
 * (outputs untouched). */
int db_parse_timestamp(const char *s, int64_t *seconds, int32_t *nanos);

/* Writes seconds and nanoseconds since the epoch as RFC 3339 in UTC
 * ("2026-01-02T03:04:05.5Z"), which PostgreSQL reads as a timestamptz and
 * JSON carries as protobuf's Timestamp. Returns the length, -EINVAL for a
 * time outside years 1-9999 or bad nanos, or -ENOSPC (|len| >= 32 fits). */
int db_format_timestamp(int64_t seconds, int32_t nanos, char *buf, size_t len);

/* Parses a one-dimensional array in PostgreSQL's output form ("{a,\"b c\"}")
 * into |a|; NULL elements read as NULL pointers. Returns 0, -EINVAL for a
 * malformed or multi-dimensional value, or -ENOMEM. Outputs are written
 * only on success. */
int db_parse_text_array(const char *s, arena *a, char ***items, size_t *n);

/* Writes |v| as an element of an array literal: quoted, with '"' and '\\'
 * escaped, or NULL for a NULL |v|. Returns the bytes needed (without a
 * NUL); writes only when |out| is not NULL. */
size_t db_array_quote(const char *v, char *out);

#endif
