/* The frame filter in front of nghttp2 (src/h2/filter.h): drops exactly the
 * frames the drop callback refuses, passes every other byte in order, and
 * asks only after everything before the frame was passed, whatever the read
 * boundaries. Regression for grpc/grpc#19655 (RST_STREAM on idle streams
 * from grpcio made nghttp2 close the whole connection). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <string.h>

#include "h2/filter.h"

#define MAX_STREAM 512

struct sink {
    uint8_t out[MAX_STREAM];
    size_t len;
    int asked;
    size_t passed_when_asked[8];
    int32_t drop_from; /* drop RST/WINDOW_UPDATE for stream ids >= this */
};

static bool drop_cb(void *data, uint8_t type, int32_t id)
{
    struct sink *s = data;
    (void)type;
    if (s->asked < 8)
        s->passed_when_asked[s->asked] = s->len;
    s->asked++;
    return id >= s->drop_from;
}

static int pass_cb(void *data, const uint8_t *p, size_t n)
{
    struct sink *s = data;
    cr_assert(s->len + n <= MAX_STREAM);
    memcpy(s->out + s->len, p, n);
    s->len += n;
    return 0;
}

static size_t frame(uint8_t *dst, uint8_t type, uint8_t flags, uint32_t id, const uint8_t *payload,
                    uint32_t len)
{
    dst[0] = (uint8_t)(len >> 16);
    dst[1] = (uint8_t)(len >> 8);
    dst[2] = (uint8_t)len;
    dst[3] = type;
    dst[4] = flags;
    dst[5] = (uint8_t)(id >> 24);
    dst[6] = (uint8_t)(id >> 16);
    dst[7] = (uint8_t)(id >> 8);
    dst[8] = (uint8_t)id;
    if (len)
        memcpy(dst + 9, payload, len);
    return 9 + len;
}

/* in: the whole input; want: the input without the frames for ids >= 3
 * of type RST_STREAM / WINDOW_UPDATE. */
static size_t build(uint8_t *in, uint8_t *want, size_t *want_len)
{
    static const uint8_t zero4[4] = {0, 0, 0, 8};
    static const uint8_t body[13] = "\0\0\0\0\x08hello!!!";
    uint8_t f[64];
    size_t n = 0, w = 0, k;

    memcpy(in, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    memcpy(want, in, 24);
    n = w = 24;
#define KEEP(expr)                                                                                 \
    do {                                                                                           \
        k = (expr);                                                                                \
        memcpy(in + n, f, k);                                                                      \
        memcpy(want + w, f, k);                                                                    \
        n += k;                                                                                    \
        w += k;                                                                                    \
    } while (0)
#define DROP(expr)                                                                                 \
    do {                                                                                           \
        k = (expr);                                                                                \
        memcpy(in + n, f, k);                                                                      \
        n += k;                                                                                    \
    } while (0)
    KEEP(frame(f, 0x4, 0, 0, NULL, 0));    /* SETTINGS */
    KEEP(frame(f, 0x8, 0, 0, zero4, 4));   /* connection WINDOW_UPDATE */
    KEEP(frame(f, 0x1, 0x4, 1, body, 5));  /* HEADERS 1 */
    DROP(frame(f, 0x3, 0, 3, zero4, 4));   /* RST_STREAM 3 (idle) */
    KEEP(frame(f, 0x0, 0x1, 1, body, 13)); /* DATA 1 */
    DROP(frame(f, 0x8, 0, 5, zero4, 4));   /* WINDOW_UPDATE 5 (idle) */
    DROP(frame(f, 0x3, 0, 7, zero4, 4));   /* RST_STREAM 7 (idle) */
    KEEP(frame(f, 0x3, 0, 1, zero4, 4));   /* RST_STREAM 1 (known) */
    KEEP(frame(f, 0x0, 0, 2, NULL, 0));    /* even id: never asked */
#undef KEEP
#undef DROP
    *want_len = w;
    return n;
}

static void run_chunks(size_t chunk, size_t first)
{
    uint8_t in[MAX_STREAM], want[MAX_STREAM];
    size_t want_len, n = build(in, want, &want_len), pos = 0;
    struct sink s = {.drop_from = 3};
    h2_filter f;

    h2_filter_init(&f, drop_cb, pass_cb, &s);
    if (first) {
        cr_assert(eq(int, h2_filter_feed(&f, in, first), 0));
        pos = first;
    }
    while (pos < n) {
        size_t k = n - pos < chunk ? n - pos : chunk;
        cr_assert(eq(int, h2_filter_feed(&f, in + pos, k), 0));
        pos += k;
    }
    cr_assert(eq(sz, s.len, want_len), "chunk %zu first %zu", chunk, first);
    cr_assert(eq(int, memcmp(s.out, want, want_len), 0), "chunk %zu first %zu", chunk, first);
    cr_assert(eq(u64, f.dropped, 3));
    /* Asked for RST 3, WU 5, RST 7, RST 1, each once everything before it
     * had been passed on. */
    cr_assert(eq(int, s.asked, 4));
    size_t before_rst3 = 24 + 9 + 13 + 14;
    cr_assert(eq(sz, s.passed_when_asked[0], before_rst3));
    cr_assert(eq(sz, s.passed_when_asked[1], before_rst3 + 22));
    cr_assert(eq(sz, s.passed_when_asked[2], before_rst3 + 22));
    cr_assert(eq(sz, s.passed_when_asked[3], before_rst3 + 22));
}

TestSuite(h2_filter, .timeout = 10);

Test(h2_filter, whole_stream_in_one_read)
{
    run_chunks(MAX_STREAM, 0);
}

Test(h2_filter, every_chunk_size)
{
    for (size_t chunk = 1; chunk < 140; chunk++)
        run_chunks(chunk, 0);
}

Test(h2_filter, every_split_point)
{
    for (size_t first = 1; first < 140; first++)
        run_chunks(MAX_STREAM, first);
}

Test(h2_filter, every_split_then_small_chunks)
{
    for (size_t first = 1; first < 140; first++)
        for (size_t chunk = 1; chunk < 12; chunk++)
            run_chunks(chunk, first);
}

static int fail_cb(void *data, const uint8_t *p, size_t n)
{
    (void)data;
    (void)p;
    (void)n;
    return -42;
}

Test(h2_filter, pass_error_stops_feed)
{
    struct sink s = {.drop_from = 3};
    h2_filter f;
    h2_filter_init(&f, drop_cb, fail_cb, &s);
    cr_assert(eq(int, h2_filter_feed(&f, (const uint8_t *)"PRI", 3), -42));
}

Test(h2_filter, nothing_dropped_when_callback_says_no)
{
    uint8_t in[MAX_STREAM], want[MAX_STREAM];
    size_t want_len, n = build(in, want, &want_len);
    struct sink s = {.drop_from = 1000};
    h2_filter f;

    h2_filter_init(&f, drop_cb, pass_cb, &s);
    cr_assert(eq(int, h2_filter_feed(&f, in, n), 0));
    cr_assert(eq(sz, s.len, n));
    cr_assert(eq(int, memcmp(s.out, in, n), 0));
    cr_assert(eq(u64, f.dropped, 0));
}
