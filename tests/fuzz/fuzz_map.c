/* libFuzzer target for the services' row mapper and parameter binder
 * (services/svc_map, svc_value, svc_json, svc_bind): the input becomes a
 * database result (column names, type OIDs, text values), which is mapped
 * into arbiter.v1.TypesRow (every kind of field); each row that maps is
 * then bound back through every path the binder accepts.
 *
 * Input layout: byte 0 is the column count (1..8) and byte 1 the row count
 * (0..3); then, NUL-separated, the column names, then one type byte per
 * column (an index into a table of OIDs), then the values row by row, where
 * a value "\x01" alone is SQL NULL.
 *
 * Oracles: no crash, leak or undefined behaviour; a mapped row packs and
 * unpacks again; a row that does not map is an error with a reason, never
 * a half-filled message that crashes later. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "services/svc_bind.h"
#include "services/svc_map.h"
#include "testing.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static const unsigned oids[] = {16,   17,   20,   21,   23,   25,   114,  700,  701,  1000, 1007,
                                1009, 1016, 1021, 1022, 1043, 1184, 1700, 2950, 3802, 16400};

static const char *const bind_paths[] = {
    "one.s",
    "one.b",
    "one.flag",
    "one.i32",
    "one.i64",
    "one.u32",
    "one.u64",
    "one.si32",
    "one.f64",
    "one.f",
    "one.d",
    "one.color",
    "one.ss",
    "one.is",
    "one.ds",
    "one.bs",
    "one.colors",
    "one.fs",
    "one.at",
    "one.maybe_d",
    "one.maybe_i",
    "one.maybe_s",
    "one.maybe_b",
    "one.inner",
    "one.inners",
    "one.counts",
    "one.pick_s",
    "one.pick_i",
    "one.inner.deeper.weight",
    "rows.s",
    "rows.at",
    "rows",
};

/* Splits the input into NUL-terminated tokens (the input is copied). */
static int tokens(char *buf, size_t len, char **out, int max)
{
    int n = 0;
    size_t start = 0;

    for (size_t i = 0; i <= len && n < max; i++) {
        if (i == len || buf[i] == '\0') {
            buf[i] = '\0';
            out[n++] = buf + start;
            start = i + 1;
        }
    }
    return n;
}

static void bind_all(ProtobufCMessage *row, arena *a)
{
    Arbiter__V1__TypesBatch batch = ARBITER__V1__TYPES_BATCH__INIT;
    Arbiter__V1__TypesRow *rows[2] = {(void *)row, (void *)row};
    static const db_stmt stmt = {.name = "f", .sql = "SELECT $1", .nparams = 1};
    db_ctx ctx = {.arena = a, .deadline_ms = UINT64_MAX};
    char err[128];

    batch.one = (void *)row;
    batch.rows = rows;
    batch.n_rows = 2;
    for (size_t i = 0; i < sizeof(bind_paths) / sizeof(bind_paths[0]); i++) {
        db_txn *t = db_txn_new(NULL, &ctx);
        svc_param p;

        if (t == NULL)
            return;
        CHECK(svc_param_compile(&arbiter__v1__types_batch__descriptor, bind_paths[i], &p, err,
                                sizeof(err)) == 0);
        db_txn_stmt(t, &stmt);
        (void)svc_param_bind(t, &p, &batch.base, NULL, a);
    }
}

static void map_rows(const svc_map *m, const db_result *r, int nrows, arena *a)
{
    char err[256];

    for (int row = 0; row < nrows; row++) {
        int rv;
        ProtobufCMessage *msg = svc_map_new_row(m, r, row, a, &rv, err, sizeof(err));
        size_t len;
        uint8_t *packed;
        ProtobufCMessage *back;

        if (msg == NULL) {
            CHECK(rv != 0 && (rv == -ENOMEM || err[0] != '\0'));
            continue;
        }
        len = protobuf_c_message_get_packed_size(msg);
        packed = malloc(len ? len : 1);
        CHECK(packed != NULL);
        CHECK(protobuf_c_message_pack(msg, packed) == len);
        back = protobuf_c_message_unpack(&arbiter__v1__types_row__descriptor, NULL, len, packed);
        CHECK(back != NULL);
        protobuf_c_message_free_unpacked(back, NULL);
        free(packed);
        bind_all(msg, a);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf, *tok[64];
    const char *names[8], *values[8 * 3];
    unsigned types[8];
    int ncols, nrows, n, at;
    db_result *r;
    svc_map *m;
    arena a;
    char err[256];

    if (size < 2)
        return 0;
    ncols = 1 + data[0] % 8;
    nrows = data[1] % 4;
    buf = malloc(size - 1);
    CHECK(buf != NULL);
    memcpy(buf, data + 2, size - 2);
    n = tokens(buf, size - 2, tok, 64);
    if (n < ncols + 1 + ncols * nrows) {
        free(buf);
        return 0;
    }
    for (int c = 0; c < ncols; c++) {
        names[c] = tok[c];
        types[c] = oids[(unsigned char)tok[ncols][c % (strlen(tok[ncols]) + 1)] % 21];
    }
    at = ncols + 1;
    for (int i = 0; i < ncols * nrows; i++, at++)
        values[i] = strcmp(tok[at], "\x01") == 0 ? NULL : tok[at];
    r = db_result_new(ncols, names, types, nrows, values);
    if (r != NULL) {
        m = svc_map_new(&arbiter__v1__types_row__descriptor, r, err, sizeof(err));
        CHECK(m != NULL || err[0] != '\0');
        arena_init(&a, 1u << 24, NULL);
        if (m != NULL)
            map_rows(m, r, nrows, &a);
        arena_deinit(&a);
        svc_map_free(m);
        db_result_free(r);
    }
    free(buf);
    return 0;
}
