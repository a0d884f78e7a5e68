/* Reading results (db.h): a db_result is a PGresult seen through a small
 * read-only API, so the layers above never include libpq. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "db/db_priv.h"

#define TEXTOID 25

static const PGresult *pg(const db_result *r)
{
    return (const PGresult *)(const void *)r;
}

const db_result *db_txn_result(const db_txn *t, int stmt)
{
    if (stmt < 0 || stmt >= t->nitems)
        return NULL;
    return (const db_result *)(const void *)t->items[stmt].res;
}

int db_result_rows(const db_result *r)
{
    return r != NULL ? PQntuples(pg(r)) : 0;
}

int db_result_cols(const db_result *r)
{
    return r != NULL ? PQnfields(pg(r)) : 0;
}

const char *db_result_name(const db_result *r, int col)
{
    const char *n = r != NULL ? PQfname(pg(r), col) : NULL;

    return n != NULL ? n : "";
}

unsigned db_result_type(const db_result *r, int col)
{
    return r != NULL ? (unsigned)PQftype(pg(r), col) : 0;
}

int64_t db_result_affected(const db_result *r)
{
    return r != NULL ? strtoll(PQcmdTuples((PGresult *)pg(r)), NULL, 10) : 0;
}

static bool inside(const db_result *r, int row, int col)
{
    return r != NULL && row >= 0 && row < PQntuples(pg(r)) && col >= 0 && col < PQnfields(pg(r));
}

bool db_result_isnull(const db_result *r, int row, int col)
{
    return !inside(r, row, col) || PQgetisnull(pg(r), row, col);
}

const char *db_result_text(const db_result *r, int row, int col, size_t *len)
{
    if (db_result_isnull(r, row, col)) {
        if (len != NULL)
            *len = 0;
        return "";
    }
    if (len != NULL)
        *len = (size_t)PQgetlength(pg(r), row, col);
    return PQgetvalue(pg(r), row, col);
}

db_result *db_result_new(int ncols, const char *const *names, const unsigned *types, int nrows,
                         const char *const *values)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc *attrs = calloc((size_t)(ncols > 0 ? ncols : 1), sizeof(*attrs));
    bool ok = res != NULL && attrs != NULL;

    for (int c = 0; ok && c < ncols; c++) {
        attrs[c].name = (char *)names[c];
        attrs[c].typid = types != NULL ? types[c] : TEXTOID;
        attrs[c].typlen = -1;
        attrs[c].atttypmod = -1;
    }
    ok = ok && PQsetResultAttrs(res, ncols, attrs);
    for (int row = 0; ok && row < nrows; row++) {
        for (int c = 0; ok && c < ncols; c++) {
            const char *v = values[row * ncols + c];

            ok = PQsetvalue(res, row, c, (char *)v, v != NULL ? (int)strlen(v) : -1);
        }
    }
    free(attrs);
    if (!ok) {
        PQclear(res);
        return NULL;
    }
    return (db_result *)(void *)res;
}

void db_result_free(db_result *r)
{
    PQclear((PGresult *)(void *)r);
}

/* ---- shortcuts -------------------------------------------------------------- */

int db_rows(const db_txn *t, int stmt)
{
    return db_result_rows(db_txn_result(t, stmt));
}

int64_t db_affected(const db_txn *t, int stmt)
{
    return db_result_affected(db_txn_result(t, stmt));
}

bool db_isnull(const db_txn *t, int stmt, int row, int col)
{
    return db_result_isnull(db_txn_result(t, stmt), row, col);
}

const char *db_text(const db_txn *t, int stmt, int row, int col)
{
    return db_result_text(db_txn_result(t, stmt), row, col, NULL);
}

int db_int64(const db_txn *t, int stmt, int row, int col, int64_t *out)
{
    const char *s = db_text(t, stmt, row, col);
    char *end;
    long long v;

    *out = 0;
    if (db_isnull(t, stmt, row, col))
        return 0;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -EINVAL;
    *out = v;
    return 0;
}
