/* arbiter_vector: exact vector similarity over real[] for PostgreSQL 15,
 * because pgvector is not packaged for Debian 12 (issue 10). The columns
 * stay plain real[] (pgvector can cast them), the functions are small:
 *
 *   arbiter_dot(real[], real[]) float8              a . b
 *   arbiter_cosine_distance(real[], real[]) float8  1 - a . b / (|a| |b|)
 *   arbiter_norm(real[]) float8                     |a|
 *   arbiter_normalize(real[]) real[]                a / |a|
 *   arbiter_vector_unpack(bytea) real[]             little-endian float32s as a vector
 *   arbiter_vector_source() text                    SHA-256 of the source it was built from
 *
 * Every function is IMMUTABLE STRICT PARALLEL SAFE and refuses, with a
 * data-exception SQLSTATE, what is not a vector: an array that is empty or
 * not one-dimensional (2202E), that holds a NULL (22004), or two vectors
 * of different lengths (22000). arbiter_normalize also refuses NaN,
 * infinite values and a zero vector (22000): a stored embedding is always
 * a finite unit vector. migrations/0004_knowledge_graph.sql creates
 * plain-SQL functions with the same names, signatures and SQLSTATEs when
 * this extension is not installed; tests/knowledge_graph compares both.
 *
 * Sums are accumulated in double (the SQL fallback sums float8 products),
 * in eight independent partial sums so that the compiler can keep several
 * vector lanes busy; the order of additions differs from the fallback's,
 * which moves a score by about 1e-16, far below any gap between
 * neighbours that a top-k could see. */
#include "postgres.h"

#include <math.h>
#include <string.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/memutils.h"

#include "arbiter_vector_source.h" /* ARBITER_VECTOR_SOURCE, made by meson.build */

PG_MODULE_MAGIC;

#define LANES 8

/* x86-64 builds carry an AVX2 copy of the dot product too, chosen when the
 * module is loaded (GCC's target_clones, an ifunc): four doubles per
 * instruction instead of two. The lanes add up in the same order either
 * way, so both copies give the same bits. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DOT_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define DOT_CLONES
#endif

/* The values of |a|, a float4 vector without NULLs; *|n| gets its length. */
static const float4 *vec_values(ArrayType *a, int *n)
{
    if (ARR_ELEMTYPE(a) != FLOAT4OID)
        ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH), errmsg("a vector must be a real[]")));
    if (ARR_NDIM(a) != 1 || ARR_DIMS(a)[0] < 1)
        ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
                        errmsg("a vector must be a non-empty one-dimensional array")));
    if (ARR_HASNULL(a) && array_contains_nulls(a))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("a vector must not contain NULL")));
    *n = ARR_DIMS(a)[0];
    return (const float4 *)ARR_DATA_PTR(a);
}

static void same_length(int na, int nb)
{
    if (na != nb)
        ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                        errmsg("vectors of different dimensions: %d and %d", na, nb)));
}

DOT_CLONES static double dot(const float4 *a, const float4 *b, int n)
{
    double s[LANES] = {0}, sum = 0;
    int i = 0;

    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++)
            s[k] += (double)a[i + k] * (double)b[i + k];
    for (; i < n; i++)
        sum += (double)a[i] * (double)b[i];
    for (int k = 0; k < LANES; k++)
        sum += s[k];
    return sum;
}

PG_FUNCTION_INFO_V1(arbiter_dot);
Datum arbiter_dot(PG_FUNCTION_ARGS)
{
    ArrayType *a = PG_GETARG_ARRAYTYPE_P(0), *b = PG_GETARG_ARRAYTYPE_P(1);
    int na, nb;
    const float4 *x = vec_values(a, &na), *y = vec_values(b, &nb);

    same_length(na, nb);
    PG_RETURN_FLOAT8(dot(x, y, na));
}

PG_FUNCTION_INFO_V1(arbiter_cosine_distance);
Datum arbiter_cosine_distance(PG_FUNCTION_ARGS)
{
    ArrayType *a = PG_GETARG_ARRAYTYPE_P(0), *b = PG_GETARG_ARRAYTYPE_P(1);
    int na, nb;
    const float4 *x = vec_values(a, &na), *y = vec_values(b, &nb);
    double den;

    same_length(na, nb);
    den = sqrt(dot(x, x, na)) * sqrt(dot(y, y, nb));
    /* As pgvector: a zero vector has no direction, so no distance. */
    if (den == 0)
        PG_RETURN_FLOAT8(get_float8_nan());
    PG_RETURN_FLOAT8(1.0 - dot(x, y, na) / den);
}

PG_FUNCTION_INFO_V1(arbiter_norm);
Datum arbiter_norm(PG_FUNCTION_ARGS)
{
    ArrayType *a = PG_GETARG_ARRAYTYPE_P(0);
    int n;
    const float4 *x = vec_values(a, &n);

    PG_RETURN_FLOAT8(sqrt(dot(x, x, n)));
}

/* A zeroed float4 vector of |n| values (no NULL bitmap), lower bound 1. */
static ArrayType *new_vector(int n)
{
    Size size = ARR_OVERHEAD_NONULLS(1) + sizeof(float4) * (Size)n;
    ArrayType *a = (ArrayType *)palloc0(size);

    SET_VARSIZE(a, size);
    a->ndim = 1;
    a->dataoffset = 0;
    a->elemtype = FLOAT4OID;
    ARR_DIMS(a)[0] = n;
    ARR_LBOUND(a)[0] = 1;
    return a;
}

PG_FUNCTION_INFO_V1(arbiter_normalize);
Datum arbiter_normalize(PG_FUNCTION_ARGS)
{
    ArrayType *a = PG_GETARG_ARRAYTYPE_P(0), *out;
    int n;
    const float4 *x = vec_values(a, &n);
    float4 *y;
    double norm;

    for (int i = 0; i < n; i++)
        if (!isfinite(x[i]))
            ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                            errmsg("a vector must hold finite values only")));
    norm = sqrt(dot(x, x, n));
    if (norm == 0)
        ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("a zero vector has no direction")));
    out = new_vector(n);
    y = (float4 *)ARR_DATA_PTR(out);
    for (int i = 0; i < n; i++)
        y[i] = (float4)((double)x[i] / norm);
    PG_RETURN_ARRAYTYPE_P(out);
}

/* The wire form of a batch (arbiterd binds UpsertEntities' embeddings as
 * one bytea): IEEE 754 binary32 values, little-endian, 4 bytes each. Text
 * costs a float parse per value; this is a copy. The values are not
 * checked: arbiter_normalize does that. */
PG_FUNCTION_INFO_V1(arbiter_vector_unpack);
Datum arbiter_vector_unpack(PG_FUNCTION_ARGS)
{
    bytea *b = PG_GETARG_BYTEA_PP(0);
    const unsigned char *p = (const unsigned char *)VARDATA_ANY(b);
    Size len = VARSIZE_ANY_EXHDR(b);
    ArrayType *out;
    float4 *y;
    int n;

    if (len == 0 || len % 4 != 0 || len / 4 > MaxArraySize)
        ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                        errmsg("a packed vector must be a non-empty run of 4-byte floats")));
    n = (int)(len / 4);
    out = new_vector(n);
    y = (float4 *)ARR_DATA_PTR(out);
    for (int i = 0; i < n; i++) {
        uint32 bits = (uint32)p[4 * i] | (uint32)p[4 * i + 1] << 8 | (uint32)p[4 * i + 2] << 16 |
                      (uint32)p[4 * i + 3] << 24;

        memcpy(&y[i], &bits, sizeof(bits));
    }
    PG_RETURN_ARRAYTYPE_P(out);
}

/* Which source this module was built from (meson passes its SHA-256): the
 * tests refuse to test an installed module built from other code. */
PG_FUNCTION_INFO_V1(arbiter_vector_source);
Datum arbiter_vector_source(PG_FUNCTION_ARGS)
{
    PG_RETURN_TEXT_P(cstring_to_text(ARBITER_VECTOR_SOURCE));
}
