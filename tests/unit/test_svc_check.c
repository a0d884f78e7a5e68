/* services/svc_check: validation rules as data. Each failure names the
 * field (with the index inside repeated messages); rules that do not fit
 * the field's type fail to compile. */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "services/svc_check.h"
#include "testing.pb-c.h"
#include "wrappers.pb-c.h"

static Arbiter__V1__TypesBatch batch;
static Arbiter__V1__TypesRow one;
static char err[256];

static void setup(void)
{
    arbiter__v1__types_batch__init(&batch);
    arbiter__v1__types_row__init(&one);
    batch.one = &one;
}

TestSuite(svc_check, .init = setup, .timeout = 5);

/* Checks one rule; returns the message ("" when it passes). */
static const char *check(svc_check c)
{
    svc_rule r;

    cr_assert(eq(int, svc_rule_compile(&arbiter__v1__types_batch__descriptor, &c, &r, err,
                                       sizeof(err)),
                 0),
              "%s: %s", c.field, err);
    if (svc_rules_check(&r, 1, &batch.base, err, sizeof(err)) == 0)
        return "";
    return err;
}

Test(svc_check, lengths_count_characters_not_bytes)
{
    one.s = (char *)"\u00e9\u00e9\u00e9";
    cr_expect(eq(str, (char *)check((svc_check)SVC_LEN("one.s", 1, 3)), ""));
    cr_expect(eq(str, (char *)check((svc_check)SVC_LEN("one.s", 1, 2)),
                 "one.s: must be 1 to 2 characters, got 3"));
    one.s = (char *)"";
    cr_expect(eq(str, (char *)check((svc_check)SVC_LEN("one.s", 1, 2)), "one.s: is required"));
    cr_expect(eq(str, (char *)check((svc_check)SVC_LEN("one.s", 0, 2)), ""));
}

Test(svc_check, uuids_names_and_json_objects)
{
    one.s = (char *)"5F1C0B8E-6F0E-4B5A-9D1E-0C4C1F2A3B4C";
    cr_expect(eq(str, (char *)check((svc_check)SVC_UUID("one.s")), ""));
    one.s = (char *)"5f1c0b8e6f0e4b5a9d1e0c4c1f2a3b4c";
    cr_expect(strstr(check((svc_check)SVC_UUID("one.s")), "must be a UUID") != NULL);
    one.s = (char *)"";
    cr_expect(eq(str, (char *)check((svc_check)SVC_UUID("one.s")), "one.s: is required"));
    cr_expect(eq(str, (char *)check((svc_check)SVC_UUID_OPT("one.s")), ""));
    one.s = (char *)"acme:prod-1";
    cr_expect(eq(str, (char *)check((svc_check)SVC_NAME("one.s", 64)), ""));
    one.s = (char *)"acme prod";
    cr_expect(strstr(check((svc_check)SVC_NAME("one.s", 64)), "only letters") != NULL);
    one.s = (char *)"{\"a\": [1]}";
    cr_expect(eq(str, (char *)check((svc_check)SVC_JSON_OBJECT("one.s")), ""));
    one.s = (char *)"[1]";
    cr_expect(eq(str, (char *)check((svc_check)SVC_JSON_OBJECT("one.s")),
                 "one.s: must be a JSON object"));
}

Test(svc_check, ranges_on_numbers_and_wrappers)
{
    Google__Protobuf__DoubleValue dv = GOOGLE__PROTOBUF__DOUBLE_VALUE__INIT;

    one.d = 1.5;
    cr_expect(eq(str, (char *)check((svc_check)SVC_RANGE("one.d", 0, 1)),
                 "one.d: must be between 0 and 1"));
    one.d = 0.0 / 0.0;
    cr_expect(strstr(check((svc_check)SVC_RANGE("one.d", 0, 1)), "between") != NULL, "NaN");
    one.i64 = -1;
    cr_expect(strstr(check((svc_check)SVC_RANGE("one.i64", 0, 9e18)), "between") != NULL);
    cr_expect(eq(str, (char *)check((svc_check)SVC_RANGE("one.maybe_d", 0, 1)), ""), "absent");
    dv.value = 2;
    one.maybe_d = &dv;
    cr_expect(strstr(check((svc_check)SVC_RANGE("one.maybe_d", 0, 1)), "one.maybe_d") != NULL);
}

Test(svc_check, items_and_their_lengths)
{
    char *ss[] = {(char *)"ok", (char *)""};

    one.ss = ss;
    one.n_ss = 2;
    cr_expect(eq(str, (char *)check((svc_check)SVC_ITEMS("one.ss", 1, 1, 10)),
                 "one.ss: at most 1 items, got 2"));
    cr_expect(eq(str, (char *)check((svc_check)SVC_ITEMS("one.ss", 5, 1, 10)),
                 "one.ss[1]: is required"));
    cr_expect(eq(str, (char *)check((svc_check)SVC_ITEMS("one.ss", 5, 0, 10)), ""));
}

Test(svc_check, required_messages_and_enums)
{
    cr_expect(eq(str, (char *)check((svc_check)SVC_REQUIRED("one.inner")),
                 "one.inner: is required"));
    cr_expect(eq(str, (char *)check((svc_check)SVC_LEN("one.inner.label", 1, 5)), ""),
              "rules below an absent message are skipped");
    cr_expect(eq(str, (char *)check((svc_check)SVC_ENUM("one.color")), "one.color: is required"));
    cr_expect(eq(str, (char *)check((svc_check)SVC_ENUM_OPT("one.color")), ""));
    one.color = 9;
    cr_expect(eq(str, (char *)check((svc_check)SVC_ENUM_OPT("one.color")),
                 "one.color: 9 is not a Color"));
}

Test(svc_check, vectors_are_finite_not_zero_and_sized)
{
    float fs[3] = {0.5f, -2.0f, 0.0f};

    cr_expect(eq(str, (char *)check((svc_check)SVC_VECTOR("one.fs", 3)), "one.fs: is required"));
    cr_expect(eq(str, (char *)check((svc_check)SVC_VECTOR_OPT("one.fs", 3)), ""), "empty: none");
    one.fs = fs;
    one.n_fs = 3;
    cr_expect(eq(str, (char *)check((svc_check)SVC_VECTOR("one.fs", 3)), ""));
    cr_expect(eq(str, (char *)check((svc_check)SVC_VECTOR_OPT("one.fs", 2)),
                 "one.fs: must have 1 to 2 values, got 3"));
    fs[1] = 1.0f / 0.0f;
    cr_expect(eq(str, (char *)check((svc_check)SVC_VECTOR("one.fs", 3)),
                 "one.fs: value 1 is not a finite number"));
    fs[1] = 0.0f / 0.0f;
    cr_expect(eq(str, (char *)check((svc_check)SVC_VECTOR("one.fs", 3)),
                 "one.fs: value 1 is not a finite number"));
    fs[0] = fs[1] = 0.0f;
    cr_expect(eq(str, (char *)check((svc_check)SVC_VECTOR_OPT("one.fs", 3)),
                 "one.fs: must not be a zero vector"));
    fs[2] = 1e-30f; /* tiny, but a direction: the squares are summed in double */
    cr_expect(eq(str, (char *)check((svc_check)SVC_VECTOR("one.fs", 3)), ""));
}

Test(svc_check, inside_repeated_messages_the_index_is_named)
{
    Arbiter__V1__TypesRow r0 = ARBITER__V1__TYPES_ROW__INIT, r1 = ARBITER__V1__TYPES_ROW__INIT;
    Arbiter__V1__TypesRow *rows[] = {&r0, &r1};

    r0.s = (char *)"fine";
    r1.s = (char *)"";
    batch.rows = rows;
    batch.n_rows = 2;
    cr_expect(eq(str, (char *)check((svc_check)SVC_LEN("rows.s", 1, 9)), "rows[1].s: is required"));
}

Test(svc_check, rules_that_do_not_fit_fail_to_compile)
{
    static const svc_check bad[] = {
        SVC_LEN("one.i64", 1, 2), SVC_RANGE("one.s", 0, 1), SVC_ITEMS("one.s", 1, 0, 0),
        SVC_UUID("one.ss"),       SVC_ENUM("one.s"),        SVC_REQUIRED("one.i64"),
        SVC_LEN("one.nope", 1, 2), SVC_ITEMS("one.is", 3, 1, 5), SVC_VECTOR("one.is", 3),
        SVC_VECTOR("one.f", 3),
    };
    svc_rule r;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect(eq(int,
                     svc_rule_compile(&arbiter__v1__types_batch__descriptor, &bad[i], &r, err,
                                      sizeof(err)),
                     -EINVAL),
                  "%s", bad[i].field);
}
