/* services/svc_bind: request fields become statement parameters by path.
 * Each case binds into a real transaction (no pool: it is never run) and
 * reads the parameter text back with db_txn_param(). */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "db/db.h"
#include "services/svc_bind.h"
#include "testing.pb-c.h"
#include "timestamp.pb-c.h"
#include "wrappers.pb-c.h"

static arena a;
static char err[256];
static Arbiter__V1__TypesBatch batch = ARBITER__V1__TYPES_BATCH__INIT;
static Arbiter__V1__TypesRow one = ARBITER__V1__TYPES_ROW__INIT;

static void setup(void)
{
    arena_init(&a, 0, NULL);
    arbiter__v1__types_batch__init(&batch);
    arbiter__v1__types_row__init(&one);
    batch.one = &one;
}

static void teardown(void)
{
    arena_deinit(&a);
}

TestSuite(svc_bind, .init = setup, .fini = teardown, .timeout = 5);

/* Binds |path| of |batch| and returns the text (NULL for SQL NULL). */
static const char *bind(const char *path, const svc_page_args *page)
{
    static const db_stmt stmt = {.name = "t", .sql = "SELECT $1", .nparams = 1};
    db_ctx ctx = {.arena = &a, .deadline_ms = UINT64_MAX};
    db_txn *t = db_txn_new(NULL, &ctx);
    svc_param p;

    cr_assert(t != NULL);
    cr_assert(eq(int, svc_param_compile(&arbiter__v1__types_batch__descriptor, path, &p, err,
                                        sizeof(err)),
                 0),
              "%s: %s", path, err);
    db_txn_stmt(t, &stmt);
    cr_assert(eq(int, svc_param_bind(t, &p, &batch.base, page, &a), 0), "%s", path);
    return db_txn_param(t, 0, 0);
}

static void expect(const char *path, const char *want)
{
    const char *got = bind(path, NULL);

    if (want == NULL)
        cr_expect(eq(ptr, (void *)got, NULL), "%s binds NULL, got '%s'", path, got ? got : "");
    else
        cr_expect(got != NULL && strcmp(got, want) == 0, "%s: want '%s', got '%s'", path, want,
                  got ? got : "(NULL)");
}

Test(svc_bind, scalars_in_their_text_form)
{
    static uint8_t bytes[] = {0x00, 0xff, 'A'};

    one.s = (char *)"a \"quoted\" text";
    one.b.data = bytes;
    one.b.len = 3;
    one.flag = 1;
    one.i32 = -7;
    one.i64 = INT64_MIN;
    one.u64 = UINT64_MAX;
    one.si32 = 5;
    one.f = 0.1f;
    one.d = 0.1;
    one.color = ARBITER__V1__TYPES_ROW__COLOR__COLOR_DARK_BLUE;
    expect("one.s", "a \"quoted\" text");
    expect("one.b", "\\x00ff41");
    expect("one.flag", "true");
    expect("one.i32", "-7");
    expect("one.i64", "-9223372036854775808");
    expect("one.u64", "18446744073709551615");
    expect("one.si32", "5");
    expect("one.f", "0.100000001");
    expect("one.d", "0.10000000000000001");
    expect("one.color", "DARK_BLUE");
}

Test(svc_bind, absent_and_unspecified_bind_null)
{
    expect("one.color", NULL);      /* UNSPECIFIED */
    expect("one.at", NULL);         /* absent Timestamp */
    expect("one.maybe_d", NULL);    /* absent wrapper */
    expect("one.inner.label", NULL); /* through an absent sub-message */
    expect("one.inner", NULL);      /* an absent message */
    expect("one.pick_s", NULL);     /* a oneof member that is not chosen */
    expect("one.s", "");            /* a proto3 string has no presence: '' */
    batch.one = NULL;
    expect("one.i64", NULL);
}

Test(svc_bind, timestamps_wrappers_and_oneofs)
{
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Google__Protobuf__DoubleValue dv = GOOGLE__PROTOBUF__DOUBLE_VALUE__INIT;
    Google__Protobuf__Int64Value iv = GOOGLE__PROTOBUF__INT64_VALUE__INIT;

    ts.seconds = 1767323045;
    ts.nanos = 250000000;
    dv.value = 2.5;
    one.at = &ts;
    one.maybe_d = &dv;
    one.maybe_i = &iv; /* present, value 0: binds 0, not NULL */
    one.pick_case = ARBITER__V1__TYPES_ROW__PICK_PICK_I;
    one.pick_i = 42;
    expect("one.at", "2026-01-02T03:04:05.25Z");
    expect("one.maybe_d", "2.5");
    expect("one.maybe_i", "0");
    expect("one.pick_i", "42");
    expect("one.pick_s", NULL);
}

Test(svc_bind, repeated_scalars_as_array_literals)
{
    char *ss[] = {(char *)"plain", (char *)"with,comma", (char *)"q\"b\\s", (char *)""};
    int64_t is[] = {1, -2};
    Arbiter__V1__TypesRow__Color colors[] = {ARBITER__V1__TYPES_ROW__COLOR__COLOR_RED, 0};

    one.ss = ss;
    one.n_ss = 4;
    one.is = is;
    one.n_is = 2;
    one.colors = colors;
    one.n_colors = 2;
    expect("one.ss", "{\"plain\",\"with,comma\",\"q\\\"b\\\\s\",\"\"}");
    expect("one.is", "{\"1\",\"-2\"}");
    expect("one.colors", "{\"RED\",NULL}");
    expect("one.ds", "{}");
}

Test(svc_bind, through_a_repeated_message_gathers_an_array)
{
    Arbiter__V1__TypesRow r1 = ARBITER__V1__TYPES_ROW__INIT, r2 = ARBITER__V1__TYPES_ROW__INIT;
    Arbiter__V1__TypesRow__Inner in = ARBITER__V1__TYPES_ROW__INNER__INIT;
    Arbiter__V1__TypesRow *rows[] = {&r1, &r2};

    r1.s = (char *)"first";
    r1.d = 1.5;
    r2.s = (char *)"sec\"ond";
    in.label = (char *)"deep";
    r2.inner = &in;
    batch.rows = rows;
    batch.n_rows = 2;
    expect("rows.s", "{\"first\",\"sec\\\"ond\"}");
    expect("rows.d", "{\"1.5\",\"0\"}");
    expect("rows.inner.label", "{NULL,\"deep\"}");
}

Test(svc_bind, messages_bind_as_json)
{
    Arbiter__V1__TypesRow r1 = ARBITER__V1__TYPES_ROW__INIT;
    Arbiter__V1__TypesRow *rows[] = {&r1};
    Arbiter__V1__TypesRow__Inner in = ARBITER__V1__TYPES_ROW__INNER__INIT;
    const char *json;

    in.label = (char *)"x";
    in.level = 2;
    one.inner = &in;
    r1.i64 = 9007199254740993LL;
    batch.rows = rows;
    batch.n_rows = 1;
    expect("one.inner", "{\"label\":\"x\",\"level\":2,\"deeper\":null}");
    json = bind("rows", NULL);
    cr_assert(json != NULL);
    cr_expect(json[0] == '[' && strstr(json, "\"i64\":9007199254740993") != NULL, "%s", json);
    cr_expect(strstr(json, "\"color\":\"UNSPECIFIED\"") != NULL, "%s", json);
}

Test(svc_bind, page_pseudo_parameters)
{
    svc_page_args page = {.size = 20, .pos = {.keys = {"k1", "k2"}, .nkeys = 2}};
    svc_page_args first = {.size = 5};

    cr_expect(eq(str, (char *)bind("@limit", &page), "21"));
    cr_expect(eq(str, (char *)bind("@after.2", &page), "k2"));
    cr_expect(eq(ptr, (void *)bind("@after.1", &first), NULL), "the first page binds NULL");
}

Test(svc_bind, bad_paths_fail_to_compile)
{
    static const char *const bad[] = {
        "nope", "one.nope", "one.s.x", "rows.ss", "rows.inner", "rows.inners.label",
        "@after.0", "@after.9", "@limit2", "", "one..s",
    };
    svc_param p;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect(eq(int,
                     svc_param_compile(&arbiter__v1__types_batch__descriptor, bad[i], &p, err,
                                       sizeof(err)),
                     -EINVAL),
                  "%s", bad[i]);
}

Test(svc_bind, values_without_a_text_form_are_refused)
{
    static const db_stmt stmt = {.name = "t", .sql = "SELECT $1", .nparams = 1};
    db_ctx ctx = {.arena = &a, .deadline_ms = UINT64_MAX};
    db_txn *t = db_txn_new(NULL, &ctx);
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    svc_param p;

    one.color = 77; /* not a Color */
    cr_assert(eq(int, svc_param_compile(&arbiter__v1__types_batch__descriptor, "one.color", &p,
                                        err, sizeof(err)),
                 0));
    db_txn_stmt(t, &stmt);
    cr_expect(eq(int, svc_param_bind(t, &p, &batch.base, NULL, &a), -EINVAL));
    ts.seconds = 400000000000LL; /* year 14645 */
    one.at = &ts;
    cr_assert(eq(int, svc_param_compile(&arbiter__v1__types_batch__descriptor, "one.at", &p, err,
                                        sizeof(err)),
                 0));
    cr_expect(eq(int, svc_param_bind(t, &p, &batch.base, NULL, &a), -EINVAL));
}
