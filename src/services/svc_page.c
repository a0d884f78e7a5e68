/* Token layout, before base64: version (1), method hash (4, big endian),
 * tenant hash (8), key count (1), then per key its length (2) and bytes. */
#include "services/svc_page.h"

#include <errno.h>
#include <string.h>

#include "rpc/base64.h"

#define TOKEN_VERSION 2
#define TOKEN_HEADER 14
#define TOKEN_MAX (TOKEN_HEADER + SVC_PAGE_MAX_KEYS * (2 + SVC_PAGE_KEY_MAX))

uint32_t svc_page_hash(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

/* FNV-1a, 64 bits, of the tenant ("" without one). */
static uint64_t tenant_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; s && *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static void put_be(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, int bytes)
{
    uint64_t v = 0;

    for (int i = 0; i < bytes; i++)
        v = v << 8 | p[i];
    return v;
}

char *svc_page_token(arena *a, const char *tenant, uint32_t method, const char *const *keys,
                     unsigned n)
{
    uint8_t raw[TOKEN_MAX];
    size_t len = TOKEN_HEADER, cap, out_len;
    char *out;

    if (n > SVC_PAGE_MAX_KEYS)
        return NULL;
    raw[0] = TOKEN_VERSION;
    put_be(raw + 1, method, 4);
    put_be(raw + 5, tenant_hash(tenant), 8);
    raw[13] = (uint8_t)n;
    for (unsigned i = 0; i < n; i++) {
        size_t k = strlen(keys[i]);

        if (k > SVC_PAGE_KEY_MAX)
            return NULL;
        put_be(raw + len, k, 2);
        memcpy(raw + len + 2, keys[i], k);
        len += 2 + k;
    }
    cap = rpc_base64_encoded_len(len) + 1;
    out = arena_alloc(a, cap);
    if (!out || rpc_base64_encode(raw, len, out, cap, &out_len) < 0)
        return NULL;
    return out;
}

/* Splits the keys after the header into |out|. */
static int read_keys(arena *a, const uint8_t *raw, size_t n, svc_page_pos *out)
{
    size_t at = TOKEN_HEADER;

    out->nkeys = raw[13];
    if (out->nkeys > SVC_PAGE_MAX_KEYS)
        return -EINVAL;
    for (unsigned i = 0; i < out->nkeys; i++) {
        size_t k;

        if (at + 2 > n)
            return -EINVAL;
        k = (size_t)get_be(raw + at, 2);
        if (k > n - at - 2)
            return -EINVAL;
        out->keys[i] = arena_strndup(a, (const char *)raw + at + 2, k);
        if (out->keys[i] == NULL)
            return -ENOMEM;
        if (strlen(out->keys[i]) != k)
            return -EINVAL; /* a NUL inside */
        at += 2 + k;
    }
    return at == n ? 0 : -EINVAL;
}

int svc_page_decode(arena *a, const char *tenant, const char *token, uint32_t method,
                    unsigned nkeys, svc_page_pos *out)
{
    uint8_t raw[TOKEN_MAX + 8];
    size_t n, tlen = token ? strlen(token) : 0;
    int rv;

    memset(out, 0, sizeof(*out));
    if (tlen == 0)
        return 0;
    if (rpc_base64_decoded_max(tlen) > sizeof(raw) ||
        rpc_base64_decode(token, tlen, raw, sizeof(raw), &n) < 0 || n < TOKEN_HEADER ||
        raw[0] != TOKEN_VERSION)
        return -EINVAL;
    if (get_be(raw + 1, 4) != method || get_be(raw + 5, 8) != tenant_hash(tenant))
        return -EPERM;
    rv = read_keys(a, raw, n, out);
    if (rv == 0 && out->nkeys != nkeys)
        rv = -EINVAL;
    if (rv < 0)
        memset(out, 0, sizeof(*out));
    return rv;
}
