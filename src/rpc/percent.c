#include "rpc/percent.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

static bool passes(unsigned char c)
{
    return c >= 0x20 && c <= 0x7e && c != '%';
}

size_t rpc_percent_encoded_len(const char *in, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++)
        n += passes((unsigned char)in[i]) ? 1 : 3;
    return n;
}

/* Input bytes [start, end) of a truncated encoding end inside a UTF-8
 * sequence when the first dropped byte is a continuation byte: back off to
 * the sequence's lead byte so the client decodes no broken character. */
static size_t utf8_backoff(const unsigned char *in, size_t end, size_t len)
{
    if (end >= len || (in[end] & 0xc0) != 0x80)
        return end;
    size_t i = end;
    /* A sequence is at most 4 bytes: look back at most 3. */
    while (i > 0 && end - i < 3 && (in[i - 1] & 0xc0) == 0x80)
        i--;
    if (i > 0 && in[i - 1] >= 0xc0)
        return i - 1;
    return end;
}

int rpc_percent_encode(const char *in, size_t len, char *out, size_t cap, size_t *out_len)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *u = (const unsigned char *)in;
    size_t o = 0, i;

    for (i = 0; i < len; i++) {
        size_t need = passes(u[i]) ? 1 : 3;
        if (cap == 0 || cap - 1 - o < need)
            break;
        o += need;
    }
    bool truncated = i < len;
    if (truncated)
        i = utf8_backoff(u, i, len);
    /* Second pass writes exactly the first |i| input bytes. */
    o = 0;
    for (size_t j = 0; j < i; j++) {
        if (passes(u[j])) {
            out[o++] = (char)u[j];
        } else {
            out[o++] = '%';
            out[o++] = hex[u[j] >> 4];
            out[o++] = hex[u[j] & 0x0f];
        }
    }
    if (cap > 0)
        out[o] = '\0';
    *out_len = o;
    return truncated ? -ENOBUFS : 0;
}

int rpc_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t rpc_percent_decode(const char *in, size_t len, char *out)
{
    const unsigned char *u = (const unsigned char *)in;
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        if (u[i] == '%' && i + 2 < len && rpc_hex_value(u[i + 1]) >= 0 &&
            rpc_hex_value(u[i + 2]) >= 0) {
            out[o++] = (char)(rpc_hex_value(u[i + 1]) << 4 | rpc_hex_value(u[i + 2]));
            i += 2;
        } else {
            out[o++] = (char)u[i];
        }
    }
    return o;
}
