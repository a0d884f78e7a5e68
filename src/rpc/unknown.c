#include "rpc/unknown.h"

#include <stdbool.h>

#define MAX_DEPTH 32

/* Reads a varint at *|p| (before |end|); false when malformed. */
static bool varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;

    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;

        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* Skips the value of wire type |wt|; for length-delimited values sets
 * |sub| and |sublen|. False when malformed or a group. */
static bool skip(const uint8_t **p, const uint8_t *end, unsigned wt, const uint8_t **sub,
                 size_t *sublen)
{
    uint64_t v;

    switch (wt) {
    case 0:
        return varint(p, end, &v);
    case 1:
        if (end - *p < 8)
            return false;
        *p += 8;
        return true;
    case 2:
        if (!varint(p, end, &v) || v > (uint64_t)(end - *p))
            return false;
        *sub = *p;
        *sublen = (size_t)v;
        *p += v;
        return true;
    case 5:
        if (end - *p < 4)
            return false;
        *p += 4;
        return true;
    default:
        return false; /* groups are not proto3 */
    }
}

static size_t count(const ProtobufCMessageDescriptor *desc, const uint8_t *p, const uint8_t *end,
                    size_t max, size_t n, int depth)
{
    if (depth > MAX_DEPTH)
        return max + 1;
    while (p < end && n <= max) {
        const ProtobufCFieldDescriptor *f;
        const uint8_t *sub = NULL;
        size_t sublen = 0;
        uint64_t tag;

        if (!varint(&p, end, &tag) || tag >> 3 > UINT32_MAX ||
            !skip(&p, end, (unsigned)(tag & 7), &sub, &sublen))
            return n;
        f = protobuf_c_message_descriptor_get_field(desc, (unsigned)(tag >> 3));
        if (f == NULL)
            n++;
        else if (f->type == PROTOBUF_C_TYPE_MESSAGE && sub != NULL)
            n = count(f->descriptor, sub, sub + sublen, max, n, depth + 1);
    }
    return n;
}

size_t rpc_count_unknown_fields(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                                size_t len, size_t max)
{
    if (len == 0) /* data may be NULL: an empty message has no fields */
        return 0;
    return count(desc, data, data + len, max, 0, 0);
}
