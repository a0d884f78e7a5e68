#include "h2/filter.h"

#include <string.h>

#define H2_PREFACE_LEN 24
#define H2_FRAME_HEADER_LEN 9
#define H2_TYPE_RST_STREAM 0x3
#define H2_TYPE_WINDOW_UPDATE 0x8

void h2_filter_init(h2_filter *f, h2_filter_drop_fn drop, h2_filter_pass_fn pass, void *data)
{
    memset(f, 0, sizeof(*f));
    f->preface_left = H2_PREFACE_LEN;
    f->drop = drop;
    f->pass = pass;
    f->data = data;
}

static int pass_range(h2_filter *f, const uint8_t *from, const uint8_t *to)
{
    return to > from ? f->pass(f->data, from, (size_t)(to - from)) : 0;
}

static bool may_drop(uint8_t type, int32_t stream_id)
{
    return (type == H2_TYPE_RST_STREAM || type == H2_TYPE_WINDOW_UPDATE) && (stream_id & 1);
}

/* A complete frame header: decides whether the frame passes. Only frames
 * that may be dropped need the bytes before them passed first, so that the
 * drop callback sees the session's current state. |*pending| is the start
 * of the bytes not yet passed, |at| where this header starts in the input
 * (NULL when it came in pieces and sits in f->hdr). */
static int on_header(h2_filter *f, const uint8_t *h, const uint8_t **pending, const uint8_t *at)
{
    uint32_t len = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
    uint8_t type = h[3];
    int32_t id =
        (int32_t)(((uint32_t)h[5] << 24 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 8 | h[8]) &
                  0x7fffffffu);
    int rv;

    f->frame_left = len;
    f->dropping = false;
    if (!may_drop(type, id))
        return 0;
    if (at) {
        rv = pass_range(f, *pending, at);
        *pending = at;
        if (rv < 0)
            return rv;
    }
    if (f->drop(f->data, type, id)) {
        f->dropping = true;
        f->dropped++;
        if (at)
            *pending = at + H2_FRAME_HEADER_LEN;
    }
    return 0;
}

/* Takes bytes of a frame header split across reads into f->hdr. */
static int take_split_header(h2_filter *f, const uint8_t **p, const uint8_t *end,
                             const uint8_t **pending)
{
    size_t n = H2_FRAME_HEADER_LEN - f->hdr_have;
    int rv;

    if (n > (size_t)(end - *p))
        n = (size_t)(end - *p);
    /* These bytes are held back until the header is whole. */
    rv = pass_range(f, *pending, *p);
    if (rv < 0)
        return rv;
    memcpy(f->hdr + f->hdr_have, *p, n);
    f->hdr_have += (uint8_t)n;
    *p += n;
    *pending = *p;
    if (f->hdr_have < H2_FRAME_HEADER_LEN)
        return 0;
    f->hdr_have = 0;
    rv = on_header(f, f->hdr, pending, NULL);
    if (rv == 0 && !f->dropping)
        rv = f->pass(f->data, f->hdr, H2_FRAME_HEADER_LEN);
    return rv;
}

int h2_filter_feed(h2_filter *f, const uint8_t *bytes, size_t len)
{
    const uint8_t *p = bytes, *end = bytes + len, *pending = bytes;
    int rv = 0;

    while (p < end && rv == 0) {
        size_t avail = (size_t)(end - p);
        if (f->preface_left || f->frame_left) {
            uint32_t *left = f->preface_left ? &f->preface_left : &f->frame_left;
            size_t n = avail < *left ? avail : *left;
            if (f->dropping && !f->preface_left) {
                rv = pass_range(f, pending, p);
                pending = p + n;
            }
            p += n;
            *left -= (uint32_t)n;
        } else if (f->hdr_have == 0 && avail >= H2_FRAME_HEADER_LEN) {
            rv = on_header(f, p, &pending, p);
            p += H2_FRAME_HEADER_LEN;
        } else {
            rv = take_split_header(f, &p, end, &pending);
        }
    }
    if (rv == 0)
        rv = pass_range(f, pending, end);
    return rv;
}
