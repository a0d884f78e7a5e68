/* rpc/frame: the Length-Prefixed-Message decoder over every way the h2
 * layer can split a stream, the limits it enforces, the encoder and gzip. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "health.pb-c.h"
#include "rpc/frame.h"

#define MAX_MSGS 16

/* What a decoding run produced: copies of every message, then the result. */
struct run {
    size_t n;
    size_t len[MAX_MSGS];
    bool compressed[MAX_MSGS];
    uint8_t *data[MAX_MSGS];
    int rv; /* first negative feed result, else finish() */
};

static void run_free(struct run *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->data[i]);
    memset(r, 0, sizeof(*r));
}

/* Feeds one chunk, draining every message it completes. */
static int feed_chunk(rpc_frame_decoder *d, const uint8_t *p, size_t n, struct run *r)
{
    for (;;) {
        rpc_frame_msg msg;
        int rv = rpc_frame_decoder_feed(d, &p, &n, &msg);
        if (rv <= 0) {
            cr_assert(rv < 0 || n == 0, "feed returned 0 with %zu bytes left", n);
            return rv;
        }
        cr_assert(lt(sz, r->n, MAX_MSGS));
        r->len[r->n] = msg.len;
        r->compressed[r->n] = msg.compressed;
        r->data[r->n] = malloc(msg.len + 1);
        if (msg.len)
            memcpy(r->data[r->n], msg.data, msg.len);
        r->n++;
    }
}

/* Decodes |s| cut at the sorted offsets |cuts| (each in 0..n). */
static void decode_cuts(const uint8_t *s, size_t n, const size_t *cuts, size_t ncuts,
                        size_t max_len, struct run *r)
{
    rpc_frame_decoder d;
    size_t prev = 0;

    memset(r, 0, sizeof(*r));
    rpc_frame_decoder_init(&d, max_len);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        r->rv = feed_chunk(&d, s + prev, end - prev, r);
        if (r->rv < 0)
            goto out;
        prev = end;
    }
    r->rv = rpc_frame_decoder_finish(&d);
out:
    rpc_frame_decoder_deinit(&d);
}

/* The sample stream: five messages, two of them empty, one compressed, one
 * larger than the decoder's initial buffer. */
static uint8_t stream[1024];
static size_t stream_len;
static size_t boundaries[8]; /* offsets where a message ends */
static size_t nboundaries;
static const size_t msg_lens[] = {5, 0, 700, 1, 0};
static const bool msg_comp[] = {false, false, true, false, false};
#define NMSG (sizeof(msg_lens) / sizeof(msg_lens[0]))

static uint8_t payload_byte(size_t msg, size_t i)
{
    return (uint8_t)(msg * 31 + i * 7 + 1);
}

static void build_stream(void)
{
    size_t o = 0;

    nboundaries = 0;
    for (size_t m = 0; m < NMSG; m++) {
        rpc_frame_write_prefix(stream + o, msg_comp[m], (uint32_t)msg_lens[m]);
        o += RPC_FRAME_PREFIX_LEN;
        for (size_t i = 0; i < msg_lens[m]; i++)
            stream[o++] = payload_byte(m, i);
        boundaries[nboundaries++] = o;
    }
    stream_len = o;
}

static void check_all_messages(const struct run *r)
{
    cr_assert(eq(int, r->rv, 0));
    cr_assert(eq(sz, r->n, NMSG));
    for (size_t m = 0; m < NMSG; m++) {
        cr_assert(eq(sz, r->len[m], msg_lens[m]), "message %zu", m);
        cr_assert(eq(int, r->compressed[m], msg_comp[m]), "message %zu", m);
        /* One assertion per message, not per byte: the split tests call
         * this a quarter of a million times. */
        size_t bad = msg_lens[m];
        for (size_t i = 0; i < msg_lens[m] && bad == msg_lens[m]; i++)
            if (r->data[m][i] != payload_byte(m, i))
                bad = i;
        cr_assert(eq(sz, bad, msg_lens[m]), "message %zu differs at byte %zu", m, bad);
    }
}

TestSuite(rpc_frame, .init = build_stream, .timeout = 30);

Test(rpc_frame, whole_stream_in_one_chunk)
{
    struct run r;
    decode_cuts(stream, stream_len, NULL, 0, 4096, &r);
    check_all_messages(&r);
    run_free(&r);
}

Test(rpc_frame, every_single_split_point)
{
    for (size_t i = 0; i <= stream_len; i++) {
        struct run r;
        decode_cuts(stream, stream_len, &i, 1, 4096, &r);
        check_all_messages(&r);
        run_free(&r);
    }
}

Test(rpc_frame, every_pair_of_split_points)
{
    /* Three chunks cut anywhere: covers a prefix split in two places and
     * a payload split around a whole message. */
    for (size_t i = 0; i <= stream_len; i += 1) {
        for (size_t j = i; j <= stream_len; j++) {
            size_t cuts[2] = {i, j};
            struct run r;
            decode_cuts(stream, stream_len, cuts, 2, 4096, &r);
            check_all_messages(&r);
            run_free(&r);
        }
    }
}

Test(rpc_frame, every_chunk_size)
{
    size_t cuts[1024];

    for (size_t size = 1; size <= stream_len; size++) {
        size_t n = 0;
        for (size_t c = size; c < stream_len; c += size)
            cuts[n++] = c;
        struct run r;
        decode_cuts(stream, stream_len, cuts, n, 4096, &r);
        check_all_messages(&r);
        run_free(&r);
    }
}

static bool is_boundary(size_t k)
{
    for (size_t i = 0; i < nboundaries; i++)
        if (boundaries[i] == k)
            return true;
    return k == 0;
}

Test(rpc_frame, truncated_at_every_position_fails_finish)
{
    for (size_t k = 0; k < stream_len; k++) {
        /* Also cut in two so that buffered states are reached. */
        for (size_t cut = 0; cut <= k; cut += 7) {
            struct run r;
            decode_cuts(stream, k, &cut, 1, 4096, &r);
            cr_assert(eq(int, r.rv, is_boundary(k) ? 0 : -EPROTO), "stream cut at %zu", k);
            run_free(&r);
        }
    }
}

Test(rpc_frame, empty_stream_finishes_clean)
{
    rpc_frame_decoder d;
    rpc_frame_decoder_init(&d, 10);
    cr_assert(rpc_frame_decoder_idle(&d));
    cr_assert(eq(int, rpc_frame_decoder_finish(&d), 0));
    rpc_frame_decoder_deinit(&d);
}

Test(rpc_frame, null_empty_chunk_is_fine)
{
    rpc_frame_decoder d;
    const uint8_t *p = NULL;
    size_t n = 0;
    rpc_frame_msg msg;

    rpc_frame_decoder_init(&d, 10);
    cr_assert(eq(int, rpc_frame_decoder_feed(&d, &p, &n, &msg), 0));
    cr_assert(eq(int, rpc_frame_decoder_finish(&d), 0));
    rpc_frame_decoder_deinit(&d);
}

Test(rpc_frame, counts_messages)
{
    rpc_frame_decoder d;
    const uint8_t *p = stream;
    size_t n = stream_len;
    rpc_frame_msg msg;

    rpc_frame_decoder_init(&d, 4096);
    while (rpc_frame_decoder_feed(&d, &p, &n, &msg) > 0)
        ;
    cr_assert(eq(u64, d.messages, NMSG));
    rpc_frame_decoder_deinit(&d);
}

Test(rpc_frame, rejects_len_over_max_before_buffering)
{
    rpc_frame_decoder d;
    uint8_t prefix[RPC_FRAME_PREFIX_LEN];
    const uint8_t *p = prefix;
    size_t n = sizeof(prefix);
    rpc_frame_msg msg;

    rpc_frame_write_prefix(prefix, false, 101);
    rpc_frame_decoder_init(&d, 100);
    cr_assert(eq(int, rpc_frame_decoder_feed(&d, &p, &n, &msg), -EMSGSIZE));
    cr_assert(eq(ptr, d.buf, NULL));
    cr_assert(eq(sz, d.buf_cap, 0));
    /* Sticky: more input changes nothing and is not consumed. */
    p = prefix;
    n = sizeof(prefix);
    cr_assert(eq(int, rpc_frame_decoder_feed(&d, &p, &n, &msg), -EMSGSIZE));
    cr_assert(eq(sz, n, sizeof(prefix)));
    cr_assert(eq(int, rpc_frame_decoder_finish(&d), -EMSGSIZE));
    rpc_frame_decoder_deinit(&d);
}

Test(rpc_frame, rejects_max_u32_len_with_default_limit)
{
    rpc_frame_decoder d;
    const uint8_t prefix[] = {0, 0xff, 0xff, 0xff, 0xff};
    const uint8_t *p = prefix;
    size_t n = sizeof(prefix);
    rpc_frame_msg msg;

    rpc_frame_decoder_init(&d, 4u << 20);
    cr_assert(eq(int, rpc_frame_decoder_feed(&d, &p, &n, &msg), -EMSGSIZE));
    rpc_frame_decoder_deinit(&d);
}

Test(rpc_frame, accepts_len_equal_to_max)
{
    uint8_t s[RPC_FRAME_PREFIX_LEN + 100];
    struct run r;

    rpc_frame_write_prefix(s, false, 100);
    memset(s + RPC_FRAME_PREFIX_LEN, 'a', 100);
    decode_cuts(s, sizeof(s), NULL, 0, 100, &r);
    cr_assert(eq(int, r.rv, 0));
    cr_assert(eq(sz, r.n, 1));
    cr_assert(eq(sz, r.len[0], 100));
    run_free(&r);
}

Test(rpc_frame, oversize_second_message_after_good_one)
{
    uint8_t s[2 * RPC_FRAME_PREFIX_LEN + 3];
    struct run r;

    rpc_frame_write_prefix(s, false, 3);
    memcpy(s + 5, "abc", 3);
    rpc_frame_write_prefix(s + 8, false, 11);
    decode_cuts(s, sizeof(s), NULL, 0, 10, &r);
    cr_assert(eq(int, r.rv, -EMSGSIZE));
    cr_assert(eq(sz, r.n, 1));
    run_free(&r);
}

Test(rpc_frame, zero_max_accepts_only_empty_messages)
{
    uint8_t s[2 * RPC_FRAME_PREFIX_LEN + 1];
    struct run r;

    rpc_frame_write_prefix(s, false, 0);
    rpc_frame_write_prefix(s + 5, false, 1);
    s[10] = 'x';
    decode_cuts(s, sizeof(s), NULL, 0, 0, &r);
    cr_assert(eq(int, r.rv, -EMSGSIZE));
    cr_assert(eq(sz, r.n, 1));
    cr_assert(eq(sz, r.len[0], 0));
    run_free(&r);
}

Test(rpc_frame, rejects_bad_compressed_flag)
{
    const uint8_t s[] = {2, 0, 0, 0, 0};
    struct run r;
    decode_cuts(s, sizeof(s), NULL, 0, 10, &r);
    cr_assert(eq(int, r.rv, -EPROTO));
    cr_assert(eq(sz, r.n, 0));
    run_free(&r);
}

Test(rpc_frame, reports_compressed_flag)
{
    const uint8_t s[] = {1, 0, 0, 0, 1, 'z', 0, 0, 0, 0, 1, 'y'};
    struct run r;
    decode_cuts(s, sizeof(s), NULL, 0, 10, &r);
    cr_assert(eq(int, r.rv, 0));
    cr_assert(eq(sz, r.n, 2));
    cr_assert(r.compressed[0]);
    cr_assert(not(r.compressed[1]));
    run_free(&r);
}

Test(rpc_frame, whole_message_in_chunk_is_zero_copy)
{
    const uint8_t s[] = {0, 0, 0, 0, 3, 'a', 'b', 'c'};
    const uint8_t *p = s;
    size_t n = sizeof(s);
    rpc_frame_decoder d;
    rpc_frame_msg msg;

    rpc_frame_decoder_init(&d, 10);
    cr_assert(eq(int, rpc_frame_decoder_feed(&d, &p, &n, &msg), 1));
    cr_assert(eq(ptr, (void *)msg.data, (void *)(s + 5)));
    cr_assert(eq(sz, msg.len, 3));
    cr_assert(eq(sz, n, 0));
    cr_assert(eq(int, rpc_frame_decoder_feed(&d, &p, &n, &msg), 0));
    rpc_frame_decoder_deinit(&d);
}

Test(rpc_frame, buffer_grows_with_received_bytes_not_declared_length)
{
    uint8_t s[RPC_FRAME_PREFIX_LEN + 10] = {0};
    const uint8_t *p = s;
    size_t n = sizeof(s);
    rpc_frame_decoder d;
    rpc_frame_msg msg;

    rpc_frame_write_prefix(s, false, 4u << 20);
    rpc_frame_decoder_init(&d, 4u << 20);
    cr_assert(eq(int, rpc_frame_decoder_feed(&d, &p, &n, &msg), 0));
    cr_assert(le(sz, d.buf_cap, 256));
    cr_assert(eq(int, rpc_frame_decoder_finish(&d), -EPROTO));
    rpc_frame_decoder_deinit(&d);
}

Test(rpc_frame, large_message_byte_by_byte)
{
    const size_t len = 200000;
    uint8_t *s = malloc(RPC_FRAME_PREFIX_LEN + len);
    rpc_frame_decoder d;
    size_t got = 0;

    rpc_frame_write_prefix(s, false, (uint32_t)len);
    for (size_t i = 0; i < len; i++)
        s[RPC_FRAME_PREFIX_LEN + i] = (uint8_t)(i * 13);
    rpc_frame_decoder_init(&d, len);
    for (size_t i = 0; i < RPC_FRAME_PREFIX_LEN + len; i++) {
        const uint8_t *p = s + i;
        size_t n = 1;
        rpc_frame_msg msg;
        int rv = rpc_frame_decoder_feed(&d, &p, &n, &msg);
        cr_assert(ge(int, rv, 0));
        cr_assert(le(sz, d.buf_cap, len));
        if (rv == 1) {
            cr_assert(eq(sz, msg.len, len));
            cr_assert(eq(int, memcmp(msg.data, s + RPC_FRAME_PREFIX_LEN, len), 0));
            got++;
        }
    }
    cr_assert(eq(sz, got, 1));
    cr_assert(eq(int, rpc_frame_decoder_finish(&d), 0));
    rpc_frame_decoder_deinit(&d);
    free(s);
}

Test(rpc_frame, decoder_reusable_after_deinit)
{
    struct run r;
    rpc_frame_decoder d;
    const uint8_t bad[] = {9, 0, 0, 0, 0};
    const uint8_t *p = bad;
    size_t n = sizeof(bad);
    rpc_frame_msg msg;

    rpc_frame_decoder_init(&d, 10);
    cr_assert(eq(int, rpc_frame_decoder_feed(&d, &p, &n, &msg), -EPROTO));
    rpc_frame_decoder_deinit(&d);
    rpc_frame_decoder_init(&d, 10);
    cr_assert(eq(int, rpc_frame_decoder_finish(&d), 0));
    rpc_frame_decoder_deinit(&d);
    decode_cuts(stream, stream_len, NULL, 0, 4096, &r);
    check_all_messages(&r);
    run_free(&r);
}

Test(rpc_frame, write_prefix_is_big_endian)
{
    uint8_t p[RPC_FRAME_PREFIX_LEN];
    rpc_frame_write_prefix(p, true, 0x01020304);
    cr_assert(eq(u8[5], p, ((uint8_t[]){1, 1, 2, 3, 4})));
}

/* The HttpArena unary example from REFERENCES.md A.2. */
Test(rpc_frame, decodes_reference_example)
{
    const uint8_t s[] = {0x00, 0x00, 0x00, 0x00, 0x04, 0x08, 0x01, 0x10, 0x02};
    struct run r;
    decode_cuts(s, sizeof(s), NULL, 0, 4 << 20, &r);
    cr_assert(eq(int, r.rv, 0));
    cr_assert(eq(sz, r.n, 1));
    cr_assert(eq(u8[4], r.data[0], ((uint8_t[]){8, 1, 0x10, 2})));
    run_free(&r);
}

static void set_service(Grpc__Health__V1__HealthCheckRequest *req, char *svc)
{
    grpc__health__v1__health_check_request__init(req);
    req->service = svc;
}

Test(rpc_frame, pack_round_trip)
{
    Grpc__Health__V1__HealthCheckRequest req;
    uint8_t *buf = NULL;
    size_t n = 0;
    struct run r;

    set_service(&req, "arbiter.v1.AgentRegistry");
    cr_assert(eq(int, rpc_frame_pack_new(&req.base, 1024, &buf, &n), 0));
    cr_assert(eq(sz, n, rpc_frame_packed_size(&req.base)));
    decode_cuts(buf, n, NULL, 0, 1024, &r);
    cr_assert(eq(int, r.rv, 0));
    cr_assert(eq(sz, r.n, 1));
    Grpc__Health__V1__HealthCheckRequest *back =
        grpc__health__v1__health_check_request__unpack(NULL, r.len[0], r.data[0]);
    cr_assert(not(eq(ptr, back, NULL)));
    cr_assert(eq(str, back->service, "arbiter.v1.AgentRegistry"));
    grpc__health__v1__health_check_request__free_unpacked(back, NULL);
    run_free(&r);
    free(buf);
}

Test(rpc_frame, pack_empty_message_is_prefix_only)
{
    Grpc__Health__V1__HealthCheckRequest req;
    uint8_t buf[8];
    size_t n = 0;

    set_service(&req, "");
    cr_assert(eq(int, rpc_frame_pack_to(&req.base, 10, buf, sizeof(buf), &n), 0));
    cr_assert(eq(sz, n, 5));
    cr_assert(eq(u8[5], buf, ((uint8_t[]){0, 0, 0, 0, 0})));
}

Test(rpc_frame, pack_limits)
{
    Grpc__Health__V1__HealthCheckRequest req;
    uint8_t buf[64];
    uint8_t *heap = NULL;
    size_t n = 12345;

    set_service(&req, "0123456789"); /* packs to 12 bytes */
    cr_assert(eq(sz, rpc_frame_packed_size(&req.base), 17));
    cr_assert(eq(int, rpc_frame_pack_to(&req.base, 11, buf, sizeof(buf), &n), -EMSGSIZE));
    cr_assert(eq(int, rpc_frame_pack_to(&req.base, 12, buf, 16, &n), -ENOBUFS));
    cr_assert(eq(sz, n, 12345));
    cr_assert(eq(int, rpc_frame_pack_to(&req.base, 12, buf, 17, &n), 0));
    cr_assert(eq(sz, n, 17));
    cr_assert(eq(int, rpc_frame_pack_new(&req.base, 11, &heap, &n), -EMSGSIZE));
    cr_assert(eq(ptr, heap, NULL));
}

Test(rpc_frame, pack_into_arena)
{
    Grpc__Health__V1__HealthCheckRequest req;
    arena a;
    uint8_t *buf = NULL;
    size_t n = 0;

    arena_init(&a, 0, NULL);
    set_service(&req, "x");
    cr_assert(eq(int, rpc_frame_pack_arena(&req.base, 100, &a, &buf, &n), 0));
    cr_assert(eq(sz, n, 8));
    cr_assert(eq(u8[8], buf, ((uint8_t[]){0, 0, 0, 0, 3, 0x0a, 1, 'x'})));
    arena_deinit(&a);
}

static void gzip_of(const uint8_t *in, size_t n, uint8_t **out, size_t *out_len)
{
    cr_assert(eq(int, rpc_frame_gzip(in, n, out, out_len), 0));
}

Test(rpc_frame, gzip_round_trip)
{
    size_t n = 10000, zn, un;
    uint8_t *in = malloc(n), *z, *u;

    for (size_t i = 0; i < n; i++)
        in[i] = (uint8_t)(i % 17 + i / 1000);
    gzip_of(in, n, &z, &zn);
    cr_assert(lt(sz, zn, n));
    cr_assert(eq(int, rpc_frame_gunzip(z, zn, n, &u, &un), 0));
    cr_assert(eq(sz, un, n));
    cr_assert(eq(int, memcmp(u, in, n), 0));
    free(u);
    /* One byte under the cap is too small. */
    u = NULL;
    cr_assert(eq(int, rpc_frame_gunzip(z, zn, n - 1, &u, &un), -EMSGSIZE));
    cr_assert(eq(ptr, u, NULL));
    free(z);
    free(in);
}

Test(rpc_frame, gzip_empty_payload)
{
    uint8_t *z, *u = NULL;
    size_t zn, un = 99;

    gzip_of((const uint8_t *)"", 0, &z, &zn);
    cr_assert(eq(int, rpc_frame_gunzip(z, zn, 0, &u, &un), 0));
    cr_assert(not(eq(ptr, u, NULL)));
    cr_assert(eq(sz, un, 0));
    free(u);
    free(z);
}

Test(rpc_frame, gzip_bomb_stops_at_cap)
{
    /* 64 MiB of zeros compresses to ~64 KiB; the cap is 4 MiB. */
    size_t n = 64u << 20, zn, un;
    uint8_t *zeros = calloc(1, n), *z, *u = NULL;

    gzip_of(zeros, n, &z, &zn);
    free(zeros);
    cr_assert(lt(sz, zn, 100000));
    cr_assert(eq(int, rpc_frame_gunzip(z, zn, 4u << 20, &u, &un), -EMSGSIZE));
    cr_assert(eq(ptr, u, NULL));
    free(z);
}

Test(rpc_frame, gunzip_rejects_corrupt_truncated_and_trailing)
{
    const char *text = "hello hello hello hello, gRPC";
    uint8_t *z, *u = NULL, *t;
    size_t zn, un;

    gzip_of((const uint8_t *)text, strlen(text), &z, &zn);
    /* Every truncation is an error. */
    for (size_t k = 0; k < zn; k++)
        cr_assert(eq(int, rpc_frame_gunzip(z, k, 1000, &u, &un), -EPROTO), "cut at %zu", k);
    /* Trailing bytes after the member. */
    t = malloc(zn + 1);
    memcpy(t, z, zn);
    t[zn] = 0;
    cr_assert(eq(int, rpc_frame_gunzip(t, zn + 1, 1000, &u, &un), -EPROTO));
    /* A flipped byte in the header magic and one in the CRC trailer. */
    memcpy(t, z, zn);
    t[0] ^= 0xff;
    cr_assert(eq(int, rpc_frame_gunzip(t, zn, 1000, &u, &un), -EPROTO));
    memcpy(t, z, zn);
    t[zn - 6] ^= 0x01;
    cr_assert(eq(int, rpc_frame_gunzip(t, zn, 1000, &u, &un), -EPROTO));
    /* Plain text is not gzip. */
    cr_assert(
        eq(int, rpc_frame_gunzip((const uint8_t *)text, strlen(text), 1000, &u, &un), -EPROTO));
    cr_assert(eq(ptr, u, NULL));
    free(t);
    free(z);
}
