#include "rpc/base64.h"

#include <errno.h>
#include <stdbool.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int decode_char(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

size_t rpc_base64_decoded_max(size_t len)
{
    return len / 4 * 3 + 3;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Decodes one part (no commas, whitespace trimmed) and appends it at
 * out[*o]. */
static int decode_part(const unsigned char *p, size_t n, uint8_t *out, size_t cap, size_t *o)
{
    size_t pad = 0;

    while (pad < 2 && n > pad && p[n - 1 - pad] == '=')
        pad++;
    if (pad > 0 && n % 4 != 0)
        return -EINVAL;
    n -= pad;
    if (n % 4 == 1)
        return -EINVAL;
    size_t bytes = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (cap - *o < bytes)
        return -ENOBUFS;
    uint32_t acc = 0;
    size_t bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = decode_char(p[i]);
        if (v < 0)
            return -EINVAL; /* also a '=' that is not trailing padding */
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[(*o)++] = (uint8_t)(acc >> bits);
        }
    }
    return 0;
}

int rpc_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    const unsigned char *u = (const unsigned char *)in;
    size_t o = 0, start = 0;

    if (len == 0) {
        *out_len = 0;
        return 0;
    }
    while (start <= len) {
        size_t end = start;
        while (end < len && u[end] != ',')
            end++;
        size_t a = start, b = end;
        while (a < b && is_ows(in[a]))
            a++;
        while (b > a && is_ows(in[b - 1]))
            b--;
        int rv = decode_part(u + a, b - a, out, cap, &o);
        if (rv < 0)
            return rv;
        start = end + 1;
    }
    *out_len = o;
    return 0;
}

int rpc_base64_decode_arena(arena *a, const char *in, size_t len, uint8_t **out, size_t *out_len)
{
    size_t cap = rpc_base64_decoded_max(len);
    uint8_t *buf = arena_alloc(a, cap + 1);
    size_t n;

    if (!buf)
        return -ENOMEM;
    int rv = rpc_base64_decode(in, len, buf, cap, &n);
    if (rv < 0)
        return rv == -ENOBUFS ? -EINVAL : rv;
    buf[n] = 0;
    *out = buf;
    *out_len = n;
    return 0;
}

size_t rpc_base64_encoded_len(size_t n)
{
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

int rpc_base64_encode(const uint8_t *in, size_t n, char *out, size_t cap, size_t *out_len)
{
    size_t need = rpc_base64_encoded_len(n);
    size_t o = 0, i = 0;

    if (cap <= need)
        return -ENOBUFS;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
        out[o++] = alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
    }
    out[o] = '\0';
    *out_len = o;
    return 0;
}
