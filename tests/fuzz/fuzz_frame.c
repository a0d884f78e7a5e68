/* libFuzzer target for rpc/frame: the Length-Prefixed-Message decoder fed
 * the way nghttp2 feeds DATA chunks, plus gunzip on compressed messages.
 *
 * Input layout:
 *   byte 0   the decoder's max_len: (b & 0x7f) * 8 bytes, or 4 MiB if b & 0x80
 *   byte 1   chunking: 0 = one chunk; otherwise chunk sizes are drawn from a
 *            small PRNG seeded with the byte, in 0..2*b (0-byte chunks too)
 *   rest     the DATA bytes of one stream
 *
 * Oracle: however the stream is split, the decoder must report the same
 * messages (count, flags, lengths, bytes) and the same final result as when
 * it gets the stream in one piece; no message exceeds max_len and the
 * buffer never grows past it. Violations trap, so the fuzzer reports them.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

struct outcome {
    uint64_t count;
    uint64_t hash; /* order-sensitive FNV-1a over every message */
    int rv;        /* first feed error, else the finish() result */
};

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static void on_message(const rpc_frame_msg *m, size_t max_len, struct outcome *o, bool inflate)
{
    uint8_t meta[9];

    CHECK(m->len <= max_len);
    CHECK(m->len == 0 || m->data != NULL);
    meta[0] = m->compressed;
    memcpy(meta + 1, &m->len, sizeof(m->len) < 8 ? sizeof(m->len) : 8);
    o->hash = fnv(o->hash, meta, sizeof(meta));
    o->hash = fnv(o->hash, m->data, m->len);
    o->count++;
    if (inflate && m->compressed) {
        uint8_t *out = NULL;
        size_t out_len = 0;
        if (rpc_frame_gunzip(m->data, m->len, max_len, &out, &out_len) == 0) {
            CHECK(out != NULL && out_len <= max_len);
            free(out);
        }
    }
}

/* Feeds one chunk and drains it. Returns the feed result (<= 0). */
static int feed(rpc_frame_decoder *d, const uint8_t *p, size_t n, struct outcome *o, bool inflate)
{
    for (;;) {
        rpc_frame_msg m;
        int rv = rpc_frame_decoder_feed(d, &p, &n, &m);
        CHECK(d->buf_cap <= d->max_len);
        if (rv < 0)
            return rv;
        if (rv == 0) {
            CHECK(n == 0);
            return 0;
        }
        CHECK(rv == 1);
        on_message(&m, d->max_len, o, inflate);
    }
}

static uint32_t next_rand(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 16;
}

static void run(const uint8_t *s, size_t n, size_t max_len, unsigned chunking, struct outcome *o,
                bool inflate)
{
    rpc_frame_decoder d;
    uint32_t seed = chunking;
    size_t off = 0;

    memset(o, 0, sizeof(*o));
    o->hash = 14695981039346656037ULL;
    rpc_frame_decoder_init(&d, max_len);
    do {
        size_t take = n - off;
        if (chunking) {
            size_t c = next_rand(&seed) % (2 * chunking + 1);
            take = c < take ? c : take;
        }
        o->rv = feed(&d, s + off, take, o, inflate);
        off += take;
    } while (o->rv == 0 && off < n);
    if (o->rv == 0)
        o->rv = rpc_frame_decoder_finish(&d);
    CHECK(o->rv == 0 || o->rv == -EPROTO || o->rv == -EMSGSIZE);
    rpc_frame_decoder_deinit(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct outcome whole, split;

    if (size < 2)
        return 0;
    size_t max_len = data[0] & 0x80 ? (size_t)4 << 20 : (size_t)(data[0] & 0x7f) * 8;
    unsigned chunking = data[1];
    run(data + 2, size - 2, max_len, 0, &whole, true);
    run(data + 2, size - 2, max_len, chunking, &split, false);
    CHECK(whole.count == split.count);
    CHECK(whole.hash == split.hash);
    CHECK(whole.rv == split.rv);
    return 0;
}
