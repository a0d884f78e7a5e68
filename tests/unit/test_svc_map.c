/* services/svc_map: rows become messages by column name. Every supported
 * type from PostgreSQL's text form, NULLs, arrays (with NULL elements),
 * dotted aliases, arrays through a repeated message, JSON columns, and the
 * failures that must never be a
 * silent zero: unknown columns, types that do not fit, malformed text. The
 * results are real PGresults built in memory (db_result_new). */
#include <errno.h>
#include <math.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "db/db.h"
#include "services/svc_map.h"
#include "testing.pb-c.h"
#include "timestamp.pb-c.h"
#include "wrappers.pb-c.h"

/* Type OIDs used below. */
enum {
    BOOL = 16, BYTEA = 17, INT8 = 20, INT4 = 23, TEXT = 25, JSON = 114, FLOAT4 = 700,
    FLOAT8 = 701, TSTZ = 1184, NUMERIC = 1700, UUID = 2950, JSONB = 3802, BOOL_A = 1000,
    INT8_A = 1016, TEXT_A = 1009, FLOAT8_A = 1022, FLOAT4_A = 1021,
};

static arena a;
static char err[256];
static db_result *kept[64]; /* results whose strings the messages point into */
static int nkept;

static void setup(void)
{
    arena_init(&a, 0, NULL);
    err[0] = '\0';
}

static void teardown(void)
{
    while (nkept > 0)
        db_result_free(kept[--nkept]);
    arena_deinit(&a);
}

TestSuite(svc_map, .init = setup, .fini = teardown, .timeout = 5);

#define DESC (&arbiter__v1__types_row__descriptor)

/* Maps one row of the given columns into a new TypesRow; returns the code. */
static int map1(int n, const char *const *names, const unsigned *types, const char *const *values,
                Arbiter__V1__TypesRow **out)
{
    db_result *r = db_result_new(n, names, types, 1, values);
    svc_map *m;
    int rv = 0;

    cr_assert(r != NULL);
    m = svc_map_new(DESC, r, err, sizeof(err));
    if (m == NULL) {
        db_result_free(r);
        return -EPROTO; /* the mapping itself was refused */
    }
    err[0] = '\0';
    *out = (Arbiter__V1__TypesRow *)svc_map_new_row(m, r, 0, &a, &rv, err, sizeof(err));
    svc_map_free(m);
    cr_assert(lt(int, nkept, 64));
    kept[nkept++] = r; /* strings point into it */
    return rv;
}

#define COLS(...) ((const char *const[]){__VA_ARGS__})
#define TYPES(...) ((const unsigned[]){__VA_ARGS__})
#define VALS(...) ((const char *const[]){__VA_ARGS__})
#define N(x) ((int)(sizeof(x) / sizeof((x)[0])))

Test(svc_map, every_scalar_type)
{
    const char *const names[] = {"s", "b", "flag", "i32", "i64", "u32", "u64", "si32", "f64", "f",
                                 "d", "color"};
    const unsigned types[] = {TEXT, BYTEA, BOOL, INT4, INT8, INT8, INT8, INT4, INT8, FLOAT4,
                              NUMERIC, TEXT};
    const char *const vals[] = {"héllo", "\\x00ff41", "t", "-2147483648", "9223372036854775807",
                                "4294967295", "18446744073709551615", "-5", "7", "1.5",
                                "-0.125", "DARK_BLUE"};
    Arbiter__V1__TypesRow *m = NULL;

    cr_assert(eq(int, map1(N(names), names, types, vals, &m), 0), "%s", err);
    cr_expect(eq(str, m->s, "héllo"));
    cr_expect(eq(sz, m->b.len, 3));
    cr_expect(eq(int, memcmp(m->b.data, "\x00\xff" "A", 3), 0));
    cr_expect(m->flag);
    cr_expect(eq(i32, m->i32, INT32_MIN));
    cr_expect(eq(i64, m->i64, INT64_MAX));
    cr_expect(eq(u32, m->u32, UINT32_MAX));
    cr_expect(eq(u64, m->u64, UINT64_MAX));
    cr_expect(eq(i32, m->si32, -5));
    cr_expect(eq(u64, m->f64, 7));
    cr_expect(eq(flt, m->f, 1.5f));
    cr_expect(eq(dbl, m->d, -0.125));
    cr_expect(eq(int, m->color, ARBITER__V1__TYPES_ROW__COLOR__COLOR_DARK_BLUE));
}

Test(svc_map, enums_by_full_short_or_lower_case_name)
{
    static const char *const forms[] = {"COLOR_RED", "RED", "red", "color_red"};

    for (size_t i = 0; i < 4; i++) {
        Arbiter__V1__TypesRow *m = NULL;

        cr_assert(eq(int, map1(1, COLS("color"), TYPES(TEXT), VALS(forms[i]), &m), 0), "%s",
                  forms[i]);
        cr_expect(eq(int, m->color, ARBITER__V1__TYPES_ROW__COLOR__COLOR_RED), "%s", forms[i]);
    }
}

Test(svc_map, nulls_leave_the_default)
{
    Arbiter__V1__TypesRow *m = NULL;

    cr_assert(eq(int,
                 map1(6, COLS("s", "i64", "at", "maybe_d", "inner.label", "ss"),
                      TYPES(TEXT, INT8, TSTZ, FLOAT8, TEXT, TEXT_A),
                      VALS(NULL, NULL, NULL, NULL, NULL, NULL), &m),
                 0),
              "%s", err);
    cr_expect(eq(str, m->s, ""));
    cr_expect(eq(i64, m->i64, 0));
    cr_expect(eq(ptr, m->at, NULL));
    cr_expect(eq(ptr, m->maybe_d, NULL), "a NULL wrapper stays absent");
    cr_expect(eq(ptr, m->inner, NULL), "no nested message for NULL columns");
    cr_expect(eq(sz, m->n_ss, 0));
}

Test(svc_map, timestamps_and_wrappers)
{
    Arbiter__V1__TypesRow *m = NULL;

    cr_assert(eq(int,
                 map1(5, COLS("at", "maybe_d", "maybe_i", "maybe_s", "maybe_b"),
                      TYPES(TSTZ, FLOAT8, INT8, TEXT, BOOL),
                      VALS("2026-01-02 03:04:05.25+00", "2.5", "-9", "", "f"), &m),
                 0),
              "%s", err);
    cr_assert(m->at != NULL);
    cr_expect(eq(i64, m->at->seconds, 1767323045));
    cr_expect(eq(i32, m->at->nanos, 250000000));
    cr_assert(m->maybe_d && m->maybe_i && m->maybe_s && m->maybe_b);
    cr_expect(eq(dbl, m->maybe_d->value, 2.5));
    cr_expect(eq(i64, m->maybe_i->value, -9));
    cr_expect(eq(str, m->maybe_s->value, ""), "an empty string is a present StringValue");
    cr_expect(not(m->maybe_b->value));
}

Test(svc_map, arrays_of_every_kind)
{
    Arbiter__V1__TypesRow *m = NULL;

    cr_assert(eq(int,
                 map1(6, COLS("ss", "is", "ds", "bs", "colors", "fs"),
                      TYPES(TEXT_A, INT8_A, FLOAT8_A, BOOL_A, TEXT_A, FLOAT4_A),
                      VALS("{a,\"b,c\",\"q\\\"x\"}", "{1,-2,3}", "{0.5,NaN,-Infinity}", "{t,f}",
                           "{RED,DARK_BLUE}", "{}"),
                      &m),
                 0),
              "%s", err);
    cr_assert(eq(sz, m->n_ss, 3));
    cr_expect(eq(str, m->ss[1], "b,c"));
    cr_expect(eq(str, m->ss[2], "q\"x"));
    cr_assert(eq(sz, m->n_is, 3));
    cr_expect(eq(i64, m->is[1], -2));
    cr_assert(eq(sz, m->n_ds, 3));
    cr_expect(isnan(m->ds[1]));
    cr_expect(isinf(m->ds[2]) && m->ds[2] < 0);
    cr_assert(eq(sz, m->n_bs, 2));
    cr_expect(m->bs[0] && !m->bs[1]);
    cr_assert(eq(sz, m->n_colors, 2));
    cr_expect(eq(int, m->colors[1], ARBITER__V1__TYPES_ROW__COLOR__COLOR_DARK_BLUE));
    cr_expect(eq(sz, m->n_fs, 0));
}

Test(svc_map, arrays_with_null_elements_are_refused)
{
    Arbiter__V1__TypesRow *m = NULL;

    cr_expect(eq(int, map1(1, COLS("is"), TYPES(INT8_A), VALS("{1,NULL,3}"), &m), -EINVAL));
    cr_expect(eq(int, map1(1, COLS("ss"), TYPES(TEXT_A), VALS("{a,NULL}"), &m), -EINVAL));
    cr_expect(eq(int, map1(1, COLS("ss"), TYPES(TEXT_A), VALS("{a,\"NULL\"}"), &m), 0),
              "a quoted NULL is the string NULL");
}

Test(svc_map, dotted_aliases_reach_nested_messages)
{
    Arbiter__V1__TypesRow *m = NULL;

    cr_assert(eq(int,
                 map1(3, COLS("inner.label", "inner.level", "inner.deeper.weight"),
                      TYPES(TEXT, INT4, FLOAT8), VALS("x", "3", "0.75"), &m),
                 0),
              "%s", err);
    cr_assert(m->inner != NULL && m->inner->deeper != NULL);
    cr_expect(eq(str, m->inner->label, "x"));
    cr_expect(eq(i32, m->inner->level, 3));
    cr_expect(eq(dbl, m->inner->deeper->weight, 0.75));
}

Test(svc_map, json_columns_fill_messages_repeated_messages_and_maps)
{
    Arbiter__V1__TypesRow *m = NULL;

    cr_assert(eq(int,
                 map1(3, COLS("inner", "inners", "counts"), TYPES(JSON, JSONB, JSONB),
                      VALS("{\"label\": \"one\", \"deeper\": {\"weight\": 2}}",
                           "[{\"label\": \"a\", \"level\": 1}, {\"label\": \"b\"}]",
                           "{\"x\": 3, \"y\": 9007199254740993}"),
                      &m),
                 0),
              "%s", err);
    cr_assert(m->inner != NULL);
    cr_expect(eq(str, m->inner->label, "one"));
    cr_expect(eq(dbl, m->inner->deeper->weight, 2.0));
    cr_assert(eq(sz, m->n_inners, 2));
    cr_expect(eq(str, m->inners[1]->label, "b"));
    cr_expect(eq(i32, m->inners[0]->level, 1));
    cr_assert(eq(sz, m->n_counts, 2));
    for (size_t i = 0; i < 2; i++) {
        if (strcmp(m->counts[i]->key, "y") == 0)
            cr_expect(eq(i64, m->counts[i]->value, 9007199254740993LL), "int64 exact");
    }
}

Test(svc_map, arrays_through_a_repeated_message_fill_one_element_each)
{
    Arbiter__V1__TypesRow *m = NULL;

    cr_assert(eq(int,
                 map1(4, COLS("inners.label", "inners.level", "inners.deeper.weight", "s"),
                      TYPES(TEXT_A, 1007, FLOAT8_A, TEXT),
                      VALS("{a,\"b c\",NULL}", "{1,NULL,3}", "{0.5,NULL,NaN}", "x"), &m),
                 0),
              "%s", err);
    cr_assert(eq(sz, m->n_inners, 3));
    cr_expect(eq(str, m->inners[0]->label, "a"));
    cr_expect(eq(str, m->inners[1]->label, "b c"));
    cr_expect(eq(str, m->inners[2]->label, ""), "a NULL element leaves the field unset");
    cr_expect(eq(i32, m->inners[1]->level, 0));
    cr_expect(eq(i32, m->inners[2]->level, 3));
    cr_assert(m->inners[0]->deeper != NULL && m->inners[1]->deeper != NULL);
    cr_expect(eq(dbl, m->inners[0]->deeper->weight, 0.5));
    cr_expect(isnan(m->inners[2]->deeper->weight));
    cr_expect(eq(str, m->s, "x"));
    /* NULL: no elements; '{}': none either */
    cr_assert(eq(int, map1(1, COLS("inners.label"), TYPES(TEXT_A), VALS(NULL), &m), 0));
    cr_expect(eq(sz, m->n_inners, 0));
    cr_assert(eq(int, map1(1, COLS("inners.label"), TYPES(TEXT_A), VALS("{}"), &m), 0));
    cr_expect(eq(sz, m->n_inners, 0));
}

Test(svc_map, arrays_through_a_repeated_message_must_agree_and_fit)
{
    Arbiter__V1__TypesRow *m = NULL;

    cr_expect(eq(int,
                 map1(2, COLS("inners.label", "inners.level"), TYPES(TEXT_A, 1007),
                      VALS("{a,b}", "{1,2,3}"), &m),
                 -EINVAL),
              "arrays of different lengths");
    cr_expect(eq(int, map1(1, COLS("inners.level"), TYPES(1007), VALS("{1,x}"), &m), -EINVAL));
    cr_expect(eq(int, map1(1, COLS("inners.label"), TYPES(TEXT), VALS("a"), &m), -EPROTO),
              "a scalar column cannot fill many elements");
    cr_expect(eq(int, map1(1, COLS("inners.deeper"), TYPES(JSONB), VALS("{}"), &m), -EPROTO),
              "no messages through a repeated step");
}

Test(svc_map, json_with_unknown_keys_or_wrong_types_is_refused)
{
    Arbiter__V1__TypesRow *m = NULL;

    cr_expect(eq(int, map1(1, COLS("inner"), TYPES(JSONB), VALS("{\"nope\": 1}"), &m), -EINVAL));
    cr_expect(strstr(err, "nope") != NULL, "%s", err);
    cr_expect(eq(int, map1(1, COLS("inner"), TYPES(JSONB), VALS("{\"level\": \"x\"}"), &m),
                 -EINVAL));
    cr_expect(eq(int, map1(1, COLS("inners"), TYPES(JSONB), VALS("{\"label\": \"x\"}"), &m),
                 -EINVAL), "a repeated field needs an array");
    cr_expect(eq(int, map1(1, COLS("inner"), TYPES(JSONB), VALS("{oops"), &m), -EINVAL));
}

Test(svc_map, oneof_members_set_the_case)
{
    Arbiter__V1__TypesRow *m = NULL;

    cr_assert(eq(int, map1(1, COLS("pick_i"), TYPES(INT8), VALS("42"), &m), 0), "%s", err);
    cr_expect(eq(int, m->pick_case, ARBITER__V1__TYPES_ROW__PICK_PICK_I));
    cr_expect(eq(i64, m->pick_i, 42));
}

Test(svc_map, malformed_text_is_an_error_never_a_zero)
{
    static const struct {
        const char *col;
        unsigned type;
        const char *value;
    } bad[] = {
        {"i32", INT4, "12x"},        {"i32", INT8, "3000000000"}, {"u32", INT8, "-1"},
        {"i64", INT8, ""},           {"d", FLOAT8, "1.5.2"},      {"flag", BOOL, "yes"},
        {"color", TEXT, "PURPLE"},   {"b", BYTEA, "zz"},          {"b", BYTEA, "\\x0"},
        {"at", TSTZ, "yesterday"},   {"is", INT8_A, "{1,x}"},     {"ss", TEXT_A, "{a"},
        {"maybe_i", INT8, "1e3"},
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        Arbiter__V1__TypesRow *m = NULL;

        cr_expect(eq(int, map1(1, &bad[i].col, &bad[i].type, &bad[i].value, &m), -EINVAL),
                  "%s = '%s'", bad[i].col, bad[i].value);
        cr_expect(strstr(err, bad[i].col) != NULL, "the error names the column: %s", err);
    }
}

Test(svc_map, unknown_columns_and_misfit_types_fail_the_mapping)
{
    static const struct {
        const char *col;
        unsigned type;
        const char *why;
    } bad[] = {
        {"nope", TEXT, "no field"},        {"inner.nope", TEXT, "no field"},
        {"i32", TEXT, "does not fit"},     {"flag", INT4, "does not fit"},
        {"at", TEXT, "does not fit"},      {"ss", TEXT, "does not fit"},
        {"inner", TEXT, "does not fit"},   {"b", TEXT, "does not fit"},
        {"s.x", TEXT, "not a message"},    {"inners.label", TEXT, "repeated"},
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        Arbiter__V1__TypesRow *m = NULL;
        const char *v = "1";

        cr_expect(eq(int, map1(1, &bad[i].col, &bad[i].type, &v, &m), -EPROTO), "%s",
                  bad[i].col);
        cr_expect(strstr(err, bad[i].why) != NULL, "%s: %s", bad[i].col, err);
    }
}

Test(svc_map, underscore_columns_are_not_mapped_and_strings_take_any_scalar)
{
    Arbiter__V1__TypesRow *m = NULL;

    cr_assert(eq(int,
                 map1(3, COLS("_position", "s", "maybe_s"), TYPES(TSTZ, UUID, JSONB),
                      VALS("2026-01-01 00:00:00+00", "5f1c0b8e-6f0e-4b5a-9d1e-0c4c1f2a3b4c",
                           "{\"k\": 1}"),
                      &m),
                 0),
              "%s", err);
    cr_expect(eq(str, m->s, "5f1c0b8e-6f0e-4b5a-9d1e-0c4c1f2a3b4c"));
    cr_expect(eq(str, m->maybe_s->value, "{\"k\": 1}"));
}

Test(svc_map, many_rows_and_column_lookup)
{
    const char *const names[] = {"_k", "i64"};
    const char *const vals[] = {"a", "1", "b", "2", "c", "3"};
    db_result *r = db_result_new(2, names, TYPES(TEXT, INT8), 3, vals);
    svc_map *m = svc_map_new(DESC, r, err, sizeof(err));
    int rv;

    cr_assert(m != NULL, "%s", err);
    cr_expect(svc_map_fits(m, r));
    cr_expect(eq(int, svc_map_column(m, "_k"), 0));
    cr_expect(eq(int, svc_map_column(m, "nope"), -1));
    for (int row = 0; row < 3; row++) {
        Arbiter__V1__TypesRow *t = (void *)svc_map_new_row(m, r, row, &a, &rv, err, sizeof(err));

        cr_assert(t != NULL, "%s", err);
        cr_expect(eq(i64, t->i64, row + 1));
    }
    svc_map_free(m);
    db_result_free(r);
}
