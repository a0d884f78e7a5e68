#include "services/svc_util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rpc/base64.h"
#include "server.h"

/* ---- validation ------------------------------------------------------ */

void svc_invalid(rpc_call *call, const char *field, const char *fmt, ...)
{
    char what[192];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    rpc_call_finishf(call, RPC_INVALID_ARGUMENT, "%s: %s", field, what);
}

/* Code points in a UTF-8 string: every byte that is not a continuation
 * byte starts one. */
static size_t utf8_len(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

bool svc_check_len(rpc_call *call, const char *field, const char *value, size_t min, size_t max)
{
    size_t n = utf8_len(value ? value : "");

    if (n >= min && n <= max)
        return true;
    if (n == 0)
        svc_invalid(call, field, "is required");
    else
        svc_invalid(call, field, "must be %zu to %zu characters, got %zu", min, max, n);
    return false;
}

static bool is_uuid(const char *s)
{
    static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    size_t i;

    for (i = 0; shape[i]; i++) {
        char c = s[i];
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');

        if (shape[i] == '-' ? c != '-' : !hex)
            return false;
    }
    return s[i] == '\0';
}

bool svc_check_uuid(rpc_call *call, const char *field, const char *value)
{
    if (!value || !*value) {
        svc_invalid(call, field, "is required");
        return false;
    }
    if (!is_uuid(value)) {
        svc_invalid(call, field, "must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
        return false;
    }
    return true;
}

bool svc_check_uuid_opt(rpc_call *call, const char *field, const char *value)
{
    if (!value || !*value)
        return true;
    return svc_check_uuid(call, field, value);
}

bool svc_check_range(rpc_call *call, const char *field, double value, double lo, double hi)
{
    if (isfinite(value) && value >= lo && value <= hi)
        return true;
    svc_invalid(call, field, "must be between %g and %g", lo, hi);
    return false;
}

bool svc_check_strings(rpc_call *call, const char *field, char *const *items, size_t n,
                       size_t max_items, size_t max_len)
{
    char name[96];
    size_t i;

    if (n > max_items) {
        svc_invalid(call, field, "at most %zu items, got %zu", max_items, n);
        return false;
    }
    for (i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "%s[%zu]", field, i);
        if (!svc_check_len(call, name, items[i], 1, max_len))
            return false;
    }
    return true;
}

bool svc_check_tenant_id(rpc_call *call, const char *field, const char *value)
{
    size_t i, n = value ? strlen(value) : 0;

    if (!svc_check_len(call, field, value, 1, 64))
        return false;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)value[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == ':' || c == '-';

        if (!ok) {
            svc_invalid(call, field, "only letters, digits and _ . : - are allowed");
            return false;
        }
    }
    return true;
}

bool svc_page_size(rpc_call *call, const char *field, int32_t requested, int32_t def, int32_t max,
                   int32_t *out)
{
    if (requested < 0 || requested > max) {
        svc_invalid(call, field, "must be between 0 (default %d) and %d", (int)def, (int)max);
        return false;
    }
    *out = requested ? requested : def;
    return true;
}

/* ---- page tokens ----------------------------------------------------- */

#define TOKEN_VERSION 1
#define TOKEN_HEADER 10 /* version, kind, 8 bytes tenant hash */

/* FNV-1a, 64 bits: binds a token to its tenant (not a secret: the database
 * enforces isolation; this only turns a mixed-up token into a clear
 * INVALID_ARGUMENT instead of a confusing page). */
static uint64_t tenant_hash(rpc_call *call)
{
    const char *s = rpc_call_tenant(call);
    uint64_t h = 1469598103934665603ULL;

    for (; s && *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

char *svc_page_token_encode(rpc_call *call, enum svc_page_kind kind, const void *key, size_t len)
{
    uint8_t raw[TOKEN_HEADER + SVC_PAGE_KEY_MAX];
    uint64_t h = tenant_hash(call);
    size_t cap, out_len;
    char *out;
    int i;

    if (len > SVC_PAGE_KEY_MAX)
        return NULL;
    raw[0] = TOKEN_VERSION;
    raw[1] = (uint8_t)kind;
    for (i = 0; i < 8; i++)
        raw[2 + i] = (uint8_t)(h >> (56 - 8 * i));
    memcpy(raw + TOKEN_HEADER, key, len);
    cap = rpc_base64_encoded_len(TOKEN_HEADER + len) + 1;
    out = rpc_call_alloc(call, cap);
    if (!out || rpc_base64_encode(raw, TOKEN_HEADER + len, out, cap, &out_len) < 0)
        return NULL;
    return out;
}

bool svc_page_token_decode(rpc_call *call, const char *field, const char *token,
                           enum svc_page_kind kind, void *key, size_t cap, size_t *len)
{
    uint8_t raw[TOKEN_HEADER + SVC_PAGE_KEY_MAX + 8];
    size_t n, tlen = token ? strlen(token) : 0;
    uint64_t h = 0;
    int i;

    *len = 0;
    if (tlen == 0)
        return true;
    if (rpc_base64_decoded_max(tlen) > sizeof(raw) ||
        rpc_base64_decode(token, tlen, raw, sizeof(raw), &n) < 0 || n < TOKEN_HEADER ||
        n - TOKEN_HEADER > cap || raw[0] != TOKEN_VERSION) {
        svc_invalid(call, field, "is not a page token of this server");
        return false;
    }
    for (i = 0; i < 8; i++)
        h = h << 8 | raw[2 + i];
    if (raw[1] != (uint8_t)kind || h != tenant_hash(call)) {
        svc_invalid(call, field, "belongs to another query or tenant");
        return false;
    }
    memcpy(key, raw + TOKEN_HEADER, n - TOKEN_HEADER);
    *len = n - TOKEN_HEADER;
    return true;
}

/* ---- rows ------------------------------------------------------------ */

svc_row svc_row_at(rpc_call *call, const db_txn *t, int stmt, int row)
{
    svc_row r = {.t = t, .a = rpc_call_arena(call), .stmt = stmt, .row = row};

    return r;
}

char *svc_row_text(svc_row *r)
{
    char *s = arena_strdup(r->a, db_text(r->t, r->stmt, r->row, r->col++));

    if (!s) {
        r->oom = true;
        return (char *)"";
    }
    return s;
}

int64_t svc_row_int64(svc_row *r)
{
    return db_int64(r->t, r->stmt, r->row, r->col++);
}

int32_t svc_row_int32(svc_row *r)
{
    int64_t v = db_int64(r->t, r->stmt, r->row, r->col++);

    if (v > INT32_MAX)
        return INT32_MAX;
    if (v < INT32_MIN)
        return INT32_MIN;
    return (int32_t)v;
}

double svc_row_double(svc_row *r)
{
    return db_double(r->t, r->stmt, r->row, r->col++);
}

bool svc_row_bool(svc_row *r)
{
    return db_bool(r->t, r->stmt, r->row, r->col++);
}

Google__Protobuf__Timestamp *svc_row_timestamp(svc_row *r)
{
    Google__Protobuf__Timestamp *ts;
    int64_t sec;
    int32_t nanos;
    int col = r->col++;

    if (db_isnull(r->t, r->stmt, r->row, col))
        return NULL;
    db_timestamp(r->t, r->stmt, r->row, col, &sec, &nanos);
    ts = arena_alloc(r->a, sizeof(*ts));
    if (!ts) {
        r->oom = true;
        return NULL;
    }
    google__protobuf__timestamp__init(ts);
    ts->seconds = sec;
    ts->nanos = nanos;
    return ts;
}

int64_t svc_row_micros(svc_row *r)
{
    int64_t sec;
    int32_t nanos;

    db_timestamp(r->t, r->stmt, r->row, r->col++, &sec, &nanos);
    return sec * 1000000 + nanos / 1000;
}

char **svc_row_text_array(svc_row *r, size_t *n)
{
    char **items = NULL;

    int rc;

    *n = 0;
    rc = db_text_array(r->t, r->stmt, r->row, r->col++, r->a, &items, n);
    if (rc < 0) {
        if (rc == -ENOMEM)
            r->oom = true;
        else
            r->bad = true;
        *n = 0;
        return NULL;
    }
    return items;
}

void svc_row_skip(svc_row *r)
{
    r->col++;
}

bool svc_row_ok(rpc_call *call, const svc_row *r)
{
    if (r->oom)
        svc_oom(call);
    else if (r->bad)
        rpc_call_finish(call, RPC_INTERNAL, "unexpected column value from the database");
    return !r->oom && !r->bad;
}

/* ---- messages -------------------------------------------------------- */

Google__Protobuf__Timestamp *svc_timestamp_new(rpc_call *call, int64_t seconds, int32_t nanos)
{
    Google__Protobuf__Timestamp *ts = rpc_call_alloc(call, sizeof(*ts));

    if (!ts)
        return NULL;
    google__protobuf__timestamp__init(ts);
    ts->seconds = seconds;
    ts->nanos = nanos;
    return ts;
}

void *svc_alloc_array(rpc_call *call, size_t n, size_t size)
{
    if (n == 0)
        return NULL;
    if (n > SIZE_MAX / size)
        return NULL;
    return rpc_call_alloc(call, n * size);
}

void svc_oom(rpc_call *call)
{
    rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
}

struct db_pool *svc_pool(rpc_call *call)
{
    return rpc_call_server(call)->pool;
}
