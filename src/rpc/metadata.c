#include "rpc/metadata.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "rpc/base64.h"

static bool span_all(const char *s, size_t len, bool (*ok)(unsigned char))
{
    for (size_t i = 0; i < len; i++)
        if (!ok((unsigned char)s[i]))
            return false;
    return true;
}

static bool name_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '_' || c == '.' || c == '-';
}

static bool value_char(unsigned char c)
{
    return c >= 0x20 && c <= 0x7e;
}

static bool tenant_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           c == '.' || c == ':' || c == '-';
}

static bool path_char(unsigned char c)
{
    return c > 0x20 && c <= 0x7e;
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* ASCII case-insensitive comparison of n bytes. */
static bool eq_nocase(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return false;
    return true;
}

bool rpc_metadata_name_valid(const char *name, size_t len)
{
    return len > 0 && span_all(name, len, name_char);
}

bool rpc_metadata_value_valid(const char *value, size_t len)
{
    return span_all(value, len, value_char);
}

bool rpc_metadata_name_is_bin(const char *name, size_t len)
{
    return len >= 4 && memcmp(name + len - 4, "-bin", 4) == 0;
}

bool rpc_metadata_name_is_reserved(const char *name, size_t len)
{
    return len >= 5 && memcmp(name, "grpc-", 5) == 0;
}

bool rpc_tenant_valid(const char *s, size_t len)
{
    return len > 0 && len <= RPC_TENANT_MAX_LEN && span_all(s, len, tenant_char);
}

bool rpc_content_type_is_grpc(const char *value, size_t len)
{
    static const char base[] = "application/grpc";
    const size_t n = sizeof(base) - 1;

    if (len < n || !eq_nocase(value, base, n))
        return false;
    return len == n || value[n] == '+' || value[n] == ';';
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

bool rpc_te_has_trailers(const char *value, size_t len)
{
    size_t start = 0;

    while (start < len) {
        size_t end = start;
        while (end < len && value[end] != ',')
            end++;
        size_t a = start, b = end;
        /* The token ends at ';' (parameters) or whitespace. */
        for (size_t i = a; i < b; i++) {
            if (value[i] == ';') {
                b = i;
                break;
            }
        }
        while (a < b && is_ows(value[a]))
            a++;
        while (b > a && is_ows(value[b - 1]))
            b--;
        if (b - a == 8 && eq_nocase(value + a, "trailers", 8))
            return true;
        start = end + 1;
    }
    return false;
}

bool rpc_path_valid(const char *path, size_t len)
{
    size_t slash = 0;

    if (len < 4 || path[0] != '/' || !span_all(path, len, path_char))
        return false;
    for (size_t i = 1; i < len; i++) {
        if (path[i] != '/')
            continue;
        if (slash)
            return false; /* a third '/' */
        slash = i;
    }
    /* Non-empty service before the slash, non-empty method after it. */
    return slash > 1 && slash < len - 1;
}

void rpc_metadata_init(rpc_metadata *m, arena *a, size_t max_entries, size_t max_bytes)
{
    memset(m, 0, sizeof(*m));
    m->arena = a;
    m->max_entries = max_entries;
    m->max_bytes = max_bytes;
}

static rpc_metadata_entry *find(const rpc_metadata *m, const char *name, size_t len)
{
    for (size_t i = 0; i < m->len; i++) {
        rpc_metadata_entry *e = &m->items[i];
        if (e->name_len == len && memcmp(e->name, name, len) == 0)
            return e;
    }
    return NULL;
}

/* Decodes or copies the value into the arena (NUL-terminated). */
static int copy_value(rpc_metadata *m, bool bin, const char *value, size_t len, const char **out,
                      size_t *out_len)
{
    if (bin) {
        uint8_t *v;
        int rv = rpc_base64_decode_arena(m->arena, value, len, &v, out_len);
        if (rv < 0)
            return rv;
        *out = (const char *)v;
        return 0;
    }
    if (!rpc_metadata_value_valid(value, len))
        return -EINVAL;
    char *v = arena_strndup(m->arena, len ? value : "", len);
    if (!v)
        return -ENOMEM;
    *out = v;
    *out_len = len;
    return 0;
}

/* Replaces e's value with old + sep + add (sep is "," for ASCII values). */
static int merge(rpc_metadata *m, rpc_metadata_entry *e, bool bin, const char *add, size_t len)
{
    size_t sep = bin ? 0 : 1;
    size_t total = e->value_len + sep + len;
    char *v = arena_alloc(m->arena, total + 1);

    if (!v)
        return -ENOMEM;
    memcpy(v, e->value, e->value_len);
    if (sep)
        v[e->value_len] = ',';
    if (len)
        memcpy(v + e->value_len + sep, add, len);
    v[total] = '\0';
    e->value = v;
    e->value_len = total;
    return 0;
}

static int grow(rpc_metadata *m)
{
    size_t cap = m->cap ? m->cap * 2 : 8;
    if (cap > m->max_entries)
        cap = m->max_entries;
    rpc_metadata_entry *items = arena_alloc(m->arena, cap * sizeof(*items));
    if (!items)
        return -ENOMEM;
    if (m->len)
        memcpy(items, m->items, m->len * sizeof(*items));
    m->items = items;
    m->cap = cap;
    return 0;
}

static int append(rpc_metadata *m, const char *name, size_t name_len, const char *value,
                  size_t value_len)
{
    if (m->len >= m->max_entries)
        return -E2BIG;
    if (m->len == m->cap) {
        int rv = grow(m);
        if (rv < 0)
            return rv;
    }
    char *n = arena_strndup(m->arena, name, name_len);
    if (!n)
        return -ENOMEM;
    m->items[m->len++] = (rpc_metadata_entry){n, name_len, value, value_len};
    return 0;
}

int rpc_metadata_add(rpc_metadata *m, const char *name, size_t name_len, const char *value,
                     size_t value_len)
{
    const char *v;
    size_t vlen;

    if (!rpc_metadata_name_valid(name, name_len))
        return -EINVAL;
    size_t cost = name_len + value_len + RPC_METADATA_ENTRY_OVERHEAD;
    if (m->max_bytes && (cost > m->max_bytes || m->bytes > m->max_bytes - cost))
        return -E2BIG;
    bool bin = rpc_metadata_name_is_bin(name, name_len);
    rpc_metadata_entry *e = find(m, name, name_len);
    if (!e && m->len >= m->max_entries)
        return -E2BIG;
    int rv = copy_value(m, bin, value, value_len, &v, &vlen);
    if (rv < 0)
        return rv;
    rv = e ? merge(m, e, bin, v, vlen) : append(m, name, name_len, v, vlen);
    if (rv < 0)
        return rv;
    m->bytes += cost;
    return 0;
}

const char *rpc_metadata_get(const rpc_metadata *m, const char *name, size_t name_len,
                             size_t *value_len)
{
    const rpc_metadata_entry *e = find(m, name, name_len);

    if (!e)
        return NULL;
    if (value_len)
        *value_len = e->value_len;
    return e->value;
}
