/* The handler API of db.h: building a transaction, binding parameters and
 * reporting the outcome. The pool (pool.c) runs it; result.c reads it. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "db/db_priv.h"
#include "util/log.h"

db_txn *db_txn_new(struct db_pool *pool, const db_ctx *ctx)
{
    db_txn *t = arena_alloc(ctx->arena, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->pool = pool;
    t->ctx = *ctx;
    t->arena = ctx->arena;
    t->state = DB_TXN_NEW;
    t->status = RPC_OK;
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

void db_txn_fail_sqlstate(db_txn *t, const char *sqlstate, const char *constraint)
{
    rpc_status s = db_error_to_status(sqlstate);
    const char *msg;

    if (t->failed)
        return;
    msg = arena_printf(t->arena, "%s (SQLSTATE %s)", db_status_text(s),
                       sqlstate != NULL ? sqlstate : "none");
    db_txn_fail(t, s, sqlstate, msg != NULL ? msg : db_status_text(s));
    if (constraint != NULL)
        t->constraint = arena_strdup(t->arena, constraint);
}

uint64_t db_txn_remaining_ms(const db_txn *t, uint64_t now)
{
    if (t->ctx.deadline_ms == UINT64_MAX)
        return UINT64_MAX;
    return t->ctx.deadline_ms > now ? t->ctx.deadline_ms - now : 0;
}

void db_txn_on_cancel(db_txn *t, db_cancel_fn fn)
{
    if (t->ctx.set_cancel != NULL)
        t->ctx.set_cancel(t->ctx.owner, fn, fn != NULL ? t : NULL);
}

static void oom(db_txn *t)
{
    db_txn_fail(t, RPC_RESOURCE_EXHAUSTED, NULL, "out of memory");
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
            oom(t);
            return;
        }
    }
    t->nitems++;
}

void db_param_take(db_txn *t, const char *value)
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
        oom(t);
        return;
    }
    db_param_take(t, copy);
}

void db_param_text(db_txn *t, const char *value)
{
    if (value == NULL)
        db_param_take(t, NULL);
    else
        db_param_textn(t, value, strlen(value));
}

void db_param_null(db_txn *t)
{
    db_param_take(t, NULL);
}

void db_param_int64(db_txn *t, int64_t value)
{
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%" PRId64, value);

    db_param_textn(t, buf, (size_t)n);
}

void db_param_uint64(db_txn *t, uint64_t value)
{
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%" PRIu64, value);

    db_param_textn(t, buf, (size_t)n);
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
    db_param_take(t, value ? "true" : "false");
}

void db_param_bytes(db_txn *t, const uint8_t *data, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char *buf;

    if (t->failed)
        return;
    buf = len < (SIZE_MAX - 3) / 2 ? arena_alloc(t->arena, 2 * len + 3) : NULL;
    if (buf == NULL) {
        oom(t);
        return;
    }
    buf[0] = '\\';
    buf[1] = 'x';
    for (size_t i = 0; i < len; i++) {
        buf[2 + 2 * i] = hex[data[i] >> 4];
        buf[3 + 2 * i] = hex[data[i] & 15];
    }
    buf[2 + 2 * len] = '\0';
    db_param_take(t, buf);
}

const char *db_txn_param(const db_txn *t, int stmt, int i)
{
    if (stmt < 0 || stmt >= t->nitems || i < 0 || i >= t->items[stmt].nvalues)
        return NULL;
    return t->items[stmt].values[i];
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
    PGresult *res[DB_TXN_MAX_STMTS];
    int n = t->nitems;

    t->state = DB_TXN_DONE;
    if (!t->failed)
        t->status = RPC_OK;
    db_txn_on_cancel(t, NULL);
    /* |done| may free the arena that holds |t| (a call that ends, or an
     * owner that drops its transaction's arena): the results are freed
     * from a copy, without touching |t| again. */
    for (int i = 0; i < n; i++)
        res[i] = t->items[i].res;
    if (t->done != NULL)
        t->done(t, t->data);
    for (int i = 0; i < n; i++)
        PQclear(res[i]);
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

const char *db_txn_constraint(const db_txn *t)
{
    return t->constraint != NULL ? t->constraint : "";
}
