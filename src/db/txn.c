/* The handler API of db.h: building a transaction, binding parameters,
 * reading typed columns. The pool (pool.c) runs it. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "db/db_priv.h"
#include "util/log.h"

db_txn *db_txn_new(struct db_pool *pool, rpc_call *call)
{
    db_txn *t = rpc_call_alloc(call, sizeof(*t));

    if (t == NULL) {
        /* The call's arena is exhausted: fall back to a txn that only
         * reports the failure (allocated once per call site, freed by
         * db_txn_complete()). */
        t = calloc(1, sizeof(*t));
        if (t == NULL)
            abort(); /* cannot even report: out of memory twice */
        t->failed = true;
        t->status = RPC_RESOURCE_EXHAUSTED;
        t->message = "out of memory";
        t->arena = NULL;
    } else {
        t->arena = rpc_call_arena(call);
    }
    t->pool = pool;
    t->call = call;
    t->state = DB_TXN_NEW;
    t->status = t->failed ? t->status : RPC_OK;
    list_init(&t->node);
    return t;
}

void db_txn_fail(db_txn *t, rpc_status status, const char *sqlstate, const char *message)
{
    if (t->failed)
        return;
    t->failed = true;
    t->status = status;
    t->message = message;
    if (sqlstate != NULL)
        snprintf(t->sqlstate, sizeof(t->sqlstate), "%s", sqlstate);
}

void db_txn_fail_sqlstate(db_txn *t, const char *sqlstate)
{
    rpc_status s = db_error_to_status(sqlstate);
    const char *msg = NULL;

    if (t->arena != NULL)
        msg = arena_printf(t->arena, "%s (SQLSTATE %s)", db_status_text(s),
                           sqlstate != NULL ? sqlstate : "none");
    db_txn_fail(t, s, sqlstate, msg != NULL ? msg : db_status_text(s));
}

void db_txn_stmt(db_txn *t, const db_stmt *stmt)
{
    struct db_txn_item *it;

    if (t->failed)
        return;
    if (t->nitems >= DB_TXN_MAX_STMTS) {
        log_error("db: more than %d statements in one transaction", DB_TXN_MAX_STMTS);
        db_txn_fail(t, RPC_INTERNAL, NULL, "database error");
        return;
    }
    it = &t->items[t->nitems];
    it->stmt = stmt;
    it->nvalues = 0;
    it->res = NULL;
    it->values = NULL;
    if (stmt->nparams > 0) {
        it->values = arena_alloc(t->arena, sizeof(char *) * (size_t)stmt->nparams);
        if (it->values == NULL) {
            db_txn_fail(t, RPC_RESOURCE_EXHAUSTED, NULL, "out of memory");
            return;
        }
    }
    t->nitems++;
}

/* Appends one text parameter (already copied into the arena, or NULL). */
static void add_param(db_txn *t, const char *value)
{
    struct db_txn_item *it;

    if (t->failed)
        return;
    if (t->nitems == 0 ||
        t->items[t->nitems - 1].nvalues >= t->items[t->nitems - 1].stmt->nparams) {
        log_error("db: too many parameters for statement %s",
                  t->nitems ? t->items[t->nitems - 1].stmt->name : "(none)");
        db_txn_fail(t, RPC_INTERNAL, NULL, "database error");
        return;
    }
    it = &t->items[t->nitems - 1];
    it->values[it->nvalues++] = value;
}

void db_param_textn(db_txn *t, const char *value, size_t len)
{
    char *copy;

    if (t->failed)
        return;
    copy = arena_strndup(t->arena, value, len);
    if (copy == NULL) {
        db_txn_fail(t, RPC_RESOURCE_EXHAUSTED, NULL, "out of memory");
        return;
    }
    add_param(t, copy);
}

void db_param_text(db_txn *t, const char *value)
{
    if (value == NULL)
        add_param(t, NULL);
    else
        db_param_textn(t, value, strlen(value));
}

void db_param_null(db_txn *t)
{
    add_param(t, NULL);
}

void db_param_int64(db_txn *t, int64_t value)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%" PRId64, value);
    db_param_text(t, buf);
}

void db_param_double(db_txn *t, double value)
{
    char buf[40];

    if (isnan(value))
        snprintf(buf, sizeof(buf), "NaN");
    else if (isinf(value))
        snprintf(buf, sizeof(buf), "%s", value > 0 ? "Infinity" : "-Infinity");
    else
        snprintf(buf, sizeof(buf), "%.17g", value);
    db_param_text(t, buf);
}

void db_param_bool(db_txn *t, bool value)
{
    db_param_text(t, value ? "true" : "false");
}

/* Bytes an array element needs quoted: two quotes plus escapes. */
static size_t quoted_len(const char *s)
{
    size_t n = 2;

    for (; *s; s++)
        n += (*s == '"' || *s == '\\') ? 2 : 1;
    return n;
}

void db_param_text_array(db_txn *t, char *const *items, size_t n)
{
    size_t len = 3, i;
    char *buf, *p;

    if (t->failed)
        return;
    for (i = 0; i < n; i++)
        len += (items[i] ? quoted_len(items[i]) : 4) + 1;
    buf = arena_alloc(t->arena, len);
    if (buf == NULL) {
        db_txn_fail(t, RPC_RESOURCE_EXHAUSTED, NULL, "out of memory");
        return;
    }
    p = buf;
    *p++ = '{';
    for (i = 0; i < n; i++) {
        const char *s = items[i];

        if (i > 0)
            *p++ = ',';
        if (s == NULL) {
            memcpy(p, "NULL", 4);
            p += 4;
            continue;
        }
        *p++ = '"';
        for (; *s; s++) {
            if (*s == '"' || *s == '\\')
                *p++ = '\\';
            *p++ = *s;
        }
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    add_param(t, buf);
}

/* Statements whose parameter count differs from the declaration are a
 * programming error; catch them before the server turns them into 08P01. */
static void check_params(db_txn *t)
{
    for (int i = 0; i < t->nitems && !t->failed; i++) {
        if (t->items[i].nvalues != t->items[i].stmt->nparams) {
            log_error("db: statement %s got %d parameters, declares %d", t->items[i].stmt->name,
                      t->items[i].nvalues, t->items[i].stmt->nparams);
            db_txn_fail(t, RPC_INTERNAL, NULL, "database error");
        }
    }
}

void db_txn_run(db_txn *t, db_done_fn done, void *data)
{
    t->done = done;
    t->data = data;
    check_params(t);
    if (!t->failed && t->pool == NULL)
        db_txn_fail(t, RPC_UNAVAILABLE, NULL, "no database configured");
    if (t->failed) {
        db_txn_complete(t);
        return;
    }
    db_pool_submit(t->pool, t);
}

void db_txn_clear_results(db_txn *t)
{
    for (int i = 0; i < t->nitems; i++) {
        PQclear(t->items[i].res);
        t->items[i].res = NULL;
    }
}

void db_txn_complete(db_txn *t)
{
    bool heap = t->arena == NULL;

    t->state = DB_TXN_DONE;
    if (!t->failed)
        t->status = RPC_OK;
    rpc_call_on_cancel(t->call, NULL, NULL);
    if (t->done != NULL)
        t->done(t->call, t, t->data);
    db_txn_clear_results(t);
    if (heap)
        free(t);
}

rpc_status db_txn_status(const db_txn *t)
{
    return t->failed ? t->status : RPC_OK;
}

const char *db_txn_message(const db_txn *t)
{
    if (!t->failed)
        return "";
    return t->message != NULL ? t->message : db_status_text(t->status);
}

const char *db_txn_sqlstate(const db_txn *t)
{
    return t->sqlstate;
}

bool db_txn_failed(rpc_call *call, db_txn *t)
{
    if (!t->failed)
        return false;
    rpc_call_finish(call, t->status, db_txn_message(t));
    return true;
}

/* The result of statement |stmt| if (row, col) is inside it, else NULL. */
static const PGresult *cell(const db_txn *t, int stmt, int row, int col)
{
    const PGresult *r;

    if (stmt < 0 || stmt >= t->nitems)
        return NULL;
    r = t->items[stmt].res;
    if (r == NULL || row < 0 || row >= PQntuples(r) || col < 0 || col >= PQnfields(r))
        return NULL;
    return r;
}

int db_rows(const db_txn *t, int stmt)
{
    if (stmt < 0 || stmt >= t->nitems || t->items[stmt].res == NULL)
        return 0;
    return PQntuples(t->items[stmt].res);
}

int64_t db_affected(const db_txn *t, int stmt)
{
    if (stmt < 0 || stmt >= t->nitems || t->items[stmt].res == NULL)
        return 0;
    return strtoll(PQcmdTuples(t->items[stmt].res), NULL, 10);
}

bool db_isnull(const db_txn *t, int stmt, int row, int col)
{
    const PGresult *r = cell(t, stmt, row, col);

    return r == NULL || PQgetisnull(r, row, col);
}

const char *db_text(const db_txn *t, int stmt, int row, int col)
{
    const PGresult *r = cell(t, stmt, row, col);

    if (r == NULL || PQgetisnull(r, row, col))
        return "";
    return PQgetvalue(r, row, col);
}

int64_t db_int64(const db_txn *t, int stmt, int row, int col)
{
    char *end;
    const char *s = db_text(t, stmt, row, col);
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s)
        return 0;
    return v;
}

double db_double(const db_txn *t, int stmt, int row, int col)
{
    char *end;
    const char *s = db_text(t, stmt, row, col);
    double v = strtod(s, &end);

    return end == s ? 0.0 : v;
}

bool db_bool(const db_txn *t, int stmt, int row, int col)
{
    return db_text(t, stmt, row, col)[0] == 't';
}

void db_timestamp(const db_txn *t, int stmt, int row, int col, int64_t *seconds, int32_t *nanos)
{
    if (db_parse_timestamp(db_text(t, stmt, row, col), seconds, nanos) < 0) {
        *seconds = 0;
        *nanos = 0;
    }
}

int db_text_array(const db_txn *t, int stmt, int row, int col, arena *a, char ***items, size_t *n)
{
    if (db_isnull(t, stmt, row, col)) {
        *items = NULL;
        *n = 0;
        return 0;
    }
    return db_parse_text_array(db_text(t, stmt, row, col), a, items, n);
}
