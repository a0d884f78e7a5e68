/* services/svc_json: a message written as JSON reads back equal, field by
 * field (protobuf's JSON mapping with the .proto names). */
#include <errno.h>
#include <math.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "services/svc_json.h"
#include "testing.pb-c.h"
#include "timestamp.pb-c.h"
#include "wrappers.pb-c.h"

static arena a;

static void setup(void)
{
    arena_init(&a, 0, NULL);
}

static void teardown(void)
{
    arena_deinit(&a);
}

TestSuite(svc_json, .init = setup, .fini = teardown, .timeout = 5);

Test(svc_json, round_trip_of_every_kind)
{
    Arbiter__V1__TypesBatch in = ARBITER__V1__TYPES_BATCH__INIT, out = ARBITER__V1__TYPES_BATCH__INIT;
    Arbiter__V1__TypesRow one = ARBITER__V1__TYPES_ROW__INIT;
    Arbiter__V1__TypesRow__Inner inner = ARBITER__V1__TYPES_ROW__INNER__INIT;
    Arbiter__V1__TypesRow__CountsEntry c1 = ARBITER__V1__TYPES_ROW__COUNTS_ENTRY__INIT;
    Arbiter__V1__TypesRow__CountsEntry *counts[] = {&c1};
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Google__Protobuf__DoubleValue dv = GOOGLE__PROTOBUF__DOUBLE_VALUE__INIT;
    static uint8_t bytes[] = {1, 2, 250};
    char *ss[] = {(char *)"x\"y", (char *)"\n"};
    double ds[] = {1.25, INFINITY};
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(&arbiter__v1__types_batch__descriptor, "one");
    Arbiter__V1__TypesRow *r;
    strbuf b;
    char err[128], *json;
    size_t len;

    one.s = (char *)"héllo";
    one.b.data = bytes;
    one.b.len = 3;
    one.i64 = -9007199254740993LL;
    one.u64 = UINT64_MAX;
    one.f = 0.5f;
    one.color = ARBITER__V1__TYPES_ROW__COLOR__COLOR_RED;
    one.ss = ss;
    one.n_ss = 2;
    one.ds = ds;
    one.n_ds = 2;
    ts.seconds = 1;
    ts.nanos = 5000;
    one.at = &ts;
    dv.value = -1;
    one.maybe_d = &dv;
    inner.label = (char *)"in";
    one.inner = &inner;
    c1.key = (char *)"k";
    c1.value = 7;
    one.counts = counts;
    one.n_counts = 1;
    in.one = &one;

    strbuf_init(&b, 1 << 20, NULL);
    cr_assert(svc_json_write_field(&b, &in.base, f));
    json = strbuf_take(&b, &len);
    cr_assert(json != NULL);
    cr_assert(eq(int, svc_json_read_field(json, len, &out.base, f, &a, err, sizeof(err)), 0),
              "%s: %s", err, json);
    free(json);
    r = out.one;
    cr_assert(r != NULL);
    cr_expect(eq(str, r->s, "héllo"));
    cr_expect(eq(sz, r->b.len, 3));
    cr_expect(eq(int, r->b.data[2], 250));
    cr_expect(eq(i64, r->i64, -9007199254740993LL));
    cr_expect(eq(u64, r->u64, UINT64_MAX));
    cr_expect(eq(flt, r->f, 0.5f));
    cr_expect(eq(int, r->color, ARBITER__V1__TYPES_ROW__COLOR__COLOR_RED));
    cr_assert(eq(sz, r->n_ss, 2));
    cr_expect(eq(str, r->ss[0], "x\"y"));
    cr_expect(eq(str, r->ss[1], "\n"));
    cr_assert(eq(sz, r->n_ds, 2));
    cr_expect(isinf(r->ds[1]));
    cr_assert(r->at != NULL);
    cr_expect(eq(i64, r->at->seconds, 1));
    cr_expect(eq(i32, r->at->nanos, 5000));
    cr_assert(r->maybe_d != NULL);
    cr_expect(eq(dbl, r->maybe_d->value, -1));
    cr_expect(eq(ptr, r->maybe_i, NULL));
    cr_assert(r->inner != NULL);
    cr_expect(eq(str, r->inner->label, "in"));
    cr_assert(eq(sz, r->n_counts, 1));
    cr_expect(eq(str, r->counts[0]->key, "k"));
    cr_expect(eq(i64, r->counts[0]->value, 7));
}
