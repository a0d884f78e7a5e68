#include "rpc/frame.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

/* A payload buffer bigger than this is released after its message instead
 * of being kept for the next one, so an idle stream holds little memory. */
#define FRAME_KEEP_BUF (64u * 1024u)
#define FRAME_MIN_BUF 256u

void rpc_frame_decoder_init(rpc_frame_decoder *d, size_t max_len)
{
    memset(d, 0, sizeof(*d));
    d->state = RPC_FRAME_PREFIX;
    d->max_len = max_len > RPC_FRAME_MAX_LEN ? RPC_FRAME_MAX_LEN : max_len;
}

void rpc_frame_decoder_set_budget(rpc_frame_decoder *d, budget *b)
{
    d->budget = b;
}

/* Frees the buffer and gives its bytes back to the budget. */
static void drop_buf(rpc_frame_decoder *d)
{
    budget_release(d->budget, d->buf_cap);
    free(d->buf);
    d->buf = NULL;
    d->buf_cap = 0;
}

void rpc_frame_decoder_deinit(rpc_frame_decoder *d)
{
    drop_buf(d);
    d->buf_have = 0;
}

static int fail(rpc_frame_decoder *d, int err)
{
    d->state = RPC_FRAME_FAILED;
    d->error = err;
    return err;
}

static uint32_t get_u32be(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Ensures room for |want| payload bytes in total. Grows geometrically with
 * what arrived, never past the declared length. */
static int reserve(rpc_frame_decoder *d, size_t want)
{
    if (want <= d->buf_cap)
        return 0;
    size_t cap = d->buf_cap < FRAME_MIN_BUF ? FRAME_MIN_BUF : d->buf_cap;
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    if (cap > d->msg_len)
        cap = d->msg_len;
    if (!budget_charge(d->budget, cap - d->buf_cap))
        return -ENOBUFS;
    uint8_t *nb = realloc(d->buf, cap);
    if (!nb) {
        budget_release(d->budget, cap - d->buf_cap);
        return -ENOMEM;
    }
    d->buf = nb;
    d->buf_cap = cap;
    return 0;
}

/* Called when a message was handed out: back to reading a prefix. */
static void message_done(rpc_frame_decoder *d)
{
    d->state = RPC_FRAME_PREFIX;
    d->prefix_have = 0;
    d->buf_have = 0;
    d->messages++;
}

/* The prefix is complete: validate it before buffering anything. */
static int prefix_done(rpc_frame_decoder *d)
{
    uint8_t flag = d->prefix[0];
    uint32_t len = get_u32be(d->prefix + 1);

    if (flag > 1)
        return fail(d, -EPROTO);
    if (len > d->max_len)
        return fail(d, -EMSGSIZE);
    d->compressed = flag == 1;
    d->msg_len = len;
    d->buf_have = 0;
    d->state = RPC_FRAME_PAYLOAD;
    return 0;
}

static void emit(rpc_frame_decoder *d, const uint8_t *data, rpc_frame_msg *msg)
{
    msg->data = data;
    msg->len = d->msg_len;
    msg->compressed = d->compressed;
    message_done(d);
}

/* Reads payload bytes; returns 1 when the message is complete. */
static int read_payload(rpc_frame_decoder *d, const uint8_t **data, size_t *len, rpc_frame_msg *msg)
{
    size_t need = d->msg_len - d->buf_have;

    if (need == 0) {
        /* An empty message: complete without touching the input. */
        emit(d, NULL, msg);
        return 1;
    }
    if (*len == 0)
        return 0;
    if (d->buf_have == 0 && *len >= need) {
        /* The whole payload is inside this chunk: hand it out in place. */
        const uint8_t *p = *data;
        *data += need;
        *len -= need;
        emit(d, p, msg);
        return 1;
    }
    size_t take = *len < need ? *len : need;
    int rv = reserve(d, d->buf_have + take);
    if (rv < 0)
        return fail(d, rv);
    memcpy(d->buf + d->buf_have, *data, take);
    d->buf_have += take;
    *data += take;
    *len -= take;
    if (d->buf_have < d->msg_len)
        return 0;
    emit(d, d->buf, msg);
    return 1;
}

static void maybe_shrink(rpc_frame_decoder *d)
{
    if (d->buf_cap > FRAME_KEEP_BUF && d->state == RPC_FRAME_PREFIX)
        drop_buf(d);
}

int rpc_frame_decoder_feed(rpc_frame_decoder *d, const uint8_t **data, size_t *len,
                           rpc_frame_msg *msg)
{
    if (d->state == RPC_FRAME_FAILED)
        return d->error;
    /* The previous message (possibly in our buffer) is no longer borrowed. */
    maybe_shrink(d);
    while (*len > 0 || d->state == RPC_FRAME_PAYLOAD) {
        if (d->state == RPC_FRAME_PREFIX) {
            size_t take = RPC_FRAME_PREFIX_LEN - d->prefix_have;
            if (take > *len)
                take = *len;
            memcpy(d->prefix + d->prefix_have, *data, take);
            d->prefix_have += take;
            *data += take;
            *len -= take;
            if (d->prefix_have < RPC_FRAME_PREFIX_LEN)
                return 0;
            int rv = prefix_done(d);
            if (rv < 0)
                return rv;
            continue;
        }
        /* RPC_FRAME_PAYLOAD: an empty payload completes without input. */
        return read_payload(d, data, len, msg);
    }
    return 0;
}

int rpc_frame_decoder_finish(const rpc_frame_decoder *d)
{
    if (d->state == RPC_FRAME_FAILED)
        return d->error;
    return rpc_frame_decoder_idle(d) ? 0 : -EPROTO;
}

bool rpc_frame_decoder_idle(const rpc_frame_decoder *d)
{
    return d->state == RPC_FRAME_PREFIX && d->prefix_have == 0;
}

void rpc_frame_write_prefix(uint8_t out[RPC_FRAME_PREFIX_LEN], bool compressed, uint32_t len)
{
    out[0] = compressed ? 1 : 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

size_t rpc_frame_packed_size(const ProtobufCMessage *msg)
{
    return RPC_FRAME_PREFIX_LEN + protobuf_c_message_get_packed_size(msg);
}

int rpc_frame_pack_to(const ProtobufCMessage *msg, size_t max_len, uint8_t *buf, size_t cap,
                      size_t *out_len)
{
    size_t n = protobuf_c_message_get_packed_size(msg);

    if (n > max_len || n > RPC_FRAME_MAX_LEN)
        return -EMSGSIZE;
    if (cap < RPC_FRAME_PREFIX_LEN || cap - RPC_FRAME_PREFIX_LEN < n)
        return -ENOBUFS;
    size_t packed = protobuf_c_message_pack(msg, buf + RPC_FRAME_PREFIX_LEN);
    /* get_packed_size and pack walk the same message: a mismatch is a bug. */
    if (packed != n)
        return -EPROTO;
    rpc_frame_write_prefix(buf, false, (uint32_t)n);
    *out_len = RPC_FRAME_PREFIX_LEN + n;
    return 0;
}

int rpc_frame_pack_new(const ProtobufCMessage *msg, size_t max_len, uint8_t **out, size_t *out_len)
{
    size_t n = protobuf_c_message_get_packed_size(msg);

    if (n > max_len || n > RPC_FRAME_MAX_LEN)
        return -EMSGSIZE;
    uint8_t *buf = malloc(RPC_FRAME_PREFIX_LEN + n);
    if (!buf)
        return -ENOMEM;
    int rv = rpc_frame_pack_to(msg, max_len, buf, RPC_FRAME_PREFIX_LEN + n, out_len);
    if (rv < 0) {
        free(buf);
        return rv;
    }
    *out = buf;
    return 0;
}

int rpc_frame_pack_arena(const ProtobufCMessage *msg, size_t max_len, arena *a, uint8_t **out,
                         size_t *out_len)
{
    size_t n = protobuf_c_message_get_packed_size(msg);

    if (n > max_len || n > RPC_FRAME_MAX_LEN)
        return -EMSGSIZE;
    uint8_t *buf = arena_alloc(a, RPC_FRAME_PREFIX_LEN + n);
    if (!buf)
        return -ENOMEM;
    int rv = rpc_frame_pack_to(msg, max_len, buf, RPC_FRAME_PREFIX_LEN + n, out_len);
    if (rv < 0)
        return rv;
    *out = buf;
    return 0;
}

/* Grows the inflate output buffer, never past |limit| bytes. */
static int grow_out(uint8_t **buf, size_t *cap, size_t limit)
{
    size_t ncap = *cap * 2;
    if (ncap < *cap || ncap > limit)
        ncap = limit;
    uint8_t *nb = realloc(*buf, ncap);
    if (!nb)
        return -ENOMEM;
    *buf = nb;
    *cap = ncap;
    return 0;
}

/* Runs inflate to the end of the gzip member. The buffer may grow to
 * max_len + 1 bytes: producing that extra byte proves the output is over
 * the cap without inflating any further. */
static int inflate_all(z_stream *zs, const uint8_t *in, size_t in_len, size_t max_len,
                       uint8_t **buf, size_t *cap)
{
    size_t limit = max_len + 1;

    for (;;) {
        if (zs->avail_in == 0 && in_len > 0) {
            uInt chunk = in_len > UINT_MAX ? UINT_MAX : (uInt)in_len;
            zs->next_in = (Bytef *)(uintptr_t)in;
            zs->avail_in = chunk;
            in += chunk;
            in_len -= chunk;
        }
        if (zs->total_out == *cap) {
            if (*cap >= limit)
                return -EMSGSIZE;
            int rv = grow_out(buf, cap, limit);
            if (rv < 0)
                return rv;
        }
        size_t room = *cap - zs->total_out;
        zs->next_out = *buf + zs->total_out;
        zs->avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
        int zr = inflate(zs, Z_NO_FLUSH);
        if (zr == Z_STREAM_END)
            return zs->total_out > max_len ? -EMSGSIZE : 0;
        if (zr == Z_MEM_ERROR)
            return -ENOMEM;
        if (zr == Z_BUF_ERROR && zs->avail_in == 0 && in_len == 0)
            return -EPROTO; /* truncated */
        if (zr != Z_OK && zr != Z_BUF_ERROR)
            return -EPROTO;
        if (zs->total_out > max_len)
            return -EMSGSIZE;
    }
}

int rpc_frame_gunzip(const uint8_t *in, size_t in_len, size_t max_len, uint8_t **out,
                     size_t *out_len)
{
    z_stream zs;
    uint8_t *buf = NULL;
    size_t cap;
    int rv;

    if (max_len >= SIZE_MAX / 2)
        max_len = SIZE_MAX / 2;
    /* Start near the typical ratio but never above the cap. */
    cap = in_len < SIZE_MAX / 4 ? in_len * 4 : SIZE_MAX / 2;
    if (cap < FRAME_MIN_BUF)
        cap = FRAME_MIN_BUF;
    if (cap > max_len + 1)
        cap = max_len + 1;
    buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, 15 + 16) != Z_OK) {
        rv = -ENOMEM;
        goto fail_buf;
    }
    rv = inflate_all(&zs, in, in_len, max_len, &buf, &cap);
    /* A member followed by more bytes is not one gzip message. */
    if (rv == 0 && (zs.avail_in > 0 || zs.total_in != in_len))
        rv = -EPROTO;
    size_t n = zs.total_out;
    inflateEnd(&zs);
    if (rv < 0)
        goto fail_buf;
    *out = buf;
    *out_len = n;
    return 0;

fail_buf:
    free(buf);
    return rv;
}

int rpc_frame_gzip(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
    z_stream zs;
    int rv = -ENOMEM;

    if (in_len > UINT_MAX / 2)
        return -EMSGSIZE;
    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return -ENOMEM;
    uLong bound = deflateBound(&zs, (uLong)in_len) + 32;
    uint8_t *buf = bound > UINT_MAX ? NULL : malloc(bound);
    if (!buf)
        goto fail_zs;
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)in_len;
    zs.next_out = buf;
    zs.avail_out = (uInt)bound;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
        free(buf);
        goto fail_zs;
    }
    *out = buf;
    *out_len = zs.total_out;
    rv = 0;

fail_zs:
    deflateEnd(&zs);
    return rv;
}
