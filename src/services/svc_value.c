#include "services/svc_value.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "rpc/base64.h"
#include "rpc/percent.h"
#include "services/svc_path.h"
#include "timestamp.pb-c.h"

/* ---- writing ---------------------------------------------------------- */

static int64_t int_at(const ProtobufCFieldDescriptor *f, const void *elem)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return *(const int64_t *)elem;
    default:
        return *(const int32_t *)elem;
    }
}

static uint64_t uint_at(const ProtobufCFieldDescriptor *f, const void *elem)
{
    if (f->type == PROTOBUF_C_TYPE_UINT64 || f->type == PROTOBUF_C_TYPE_FIXED64)
        return *(const uint64_t *)elem;
    return *(const uint32_t *)elem;
}

static double float_at(const ProtobufCFieldDescriptor *f, const void *elem)
{
    return f->type == PROTOBUF_C_TYPE_FLOAT ? *(const float *)elem : *(const double *)elem;
}

static void write_float(strbuf *b, const ProtobufCFieldDescriptor *f, double v, bool json)
{
    if (isnan(v))
        strbuf_puts(b, json ? "\"NaN\"" : "NaN");
    else if (isinf(v))
        strbuf_puts(b, v > 0 ? (json ? "\"Infinity\"" : "Infinity")
                             : (json ? "\"-Infinity\"" : "-Infinity"));
    else
        strbuf_printf(b, f->type == PROTOBUF_C_TYPE_FLOAT ? "%.9g" : "%.17g", v);
}

/* A JSON string literal. */
static void write_json_string(strbuf *b, const char *s)
{
    strbuf_putc(b, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            strbuf_putc(b, '\\');
            strbuf_putc(b, (char)c);
        } else if (c < 0x20) {
            strbuf_printf(b, "\\u%04x", c);
        } else {
            strbuf_putc(b, (char)c);
        }
    }
    strbuf_putc(b, '"');
}

static void write_bytes(strbuf *b, const ProtobufCBinaryData *d, bool json)
{
    static const char hex[] = "0123456789abcdef";

    if (json) {
        size_t cap = rpc_base64_encoded_len(d->len) + 1, n;
        char *tmp = alloc_malloc(b->mem, cap);

        if (tmp == NULL || rpc_base64_encode(d->data, d->len, tmp, cap, &n) < 0) {
            b->failed = true;
        } else {
            strbuf_putc(b, '"');
            strbuf_add(b, tmp, n);
            strbuf_putc(b, '"');
        }
        alloc_free(b->mem, tmp);
        return;
    }
    strbuf_puts(b, "\\x");
    for (size_t i = 0; i < d->len; i++) {
        strbuf_putc(b, hex[d->data[i] >> 4]);
        strbuf_putc(b, hex[d->data[i] & 15]);
    }
}

static bool write_timestamp(strbuf *b, const Google__Protobuf__Timestamp *ts, bool json)
{
    char buf[48];
    int n = db_format_timestamp(ts->seconds, ts->nanos, buf, sizeof(buf));

    if (n < 0)
        return false;
    if (json)
        strbuf_putc(b, '"');
    strbuf_add(b, buf, (size_t)n);
    if (json)
        strbuf_putc(b, '"');
    return true;
}

bool svc_value_is_null(const ProtobufCFieldDescriptor *f, const void *elem)
{
    switch (svc_field_kind(f)) {
    case SVC_K_TIMESTAMP:
    case SVC_K_WRAPPER:
        return *(void *const *)elem == NULL;
    case SVC_K_ENUM:
        return *(const int *)elem == 0;
    default:
        return false;
    }
}

bool svc_value_write(strbuf *b, const ProtobufCFieldDescriptor *f, const void *elem,
                     enum svc_text style)
{
    bool json = style == SVC_TEXT_JSON;
    const char *name;

    switch (svc_field_kind(f)) {
    case SVC_K_INT:
        strbuf_printf(b, "%" PRId64, int_at(f, elem));
        return true;
    case SVC_K_UINT:
        strbuf_printf(b, "%" PRIu64, uint_at(f, elem));
        return true;
    case SVC_K_FLOAT:
        write_float(b, f, float_at(f, elem), json);
        return true;
    case SVC_K_BOOL:
        strbuf_puts(b, *(const protobuf_c_boolean *)elem ? "true" : "false");
        return true;
    case SVC_K_ENUM:
        name = svc_enum_short_name(f->descriptor, *(const int *)elem);
        if (name == NULL)
            return false;
        if (json)
            write_json_string(b, name);
        else
            strbuf_puts(b, name);
        return true;
    case SVC_K_STRING:
        if (json)
            write_json_string(b, *(char *const *)elem ? *(char *const *)elem : "");
        else
            strbuf_puts(b, *(char *const *)elem ? *(char *const *)elem : "");
        return true;
    case SVC_K_BYTES:
        write_bytes(b, elem, json);
        return true;
    case SVC_K_TIMESTAMP:
        return *(void *const *)elem == NULL || write_timestamp(b, *(void *const *)elem, json);
    case SVC_K_WRAPPER:
        if (*(void *const *)elem == NULL)
            return true;
        return svc_value_write(b, svc_wrapper_value(f),
                               svc_field_ptr(*(ProtobufCMessage *const *)elem, svc_wrapper_value(f)),
                               style);
    default:
        return false;
    }
}

/* ---- parsing ---------------------------------------------------------- */

static int parse_int(const ProtobufCFieldDescriptor *f, const char *s, void *elem)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -EINVAL;
    if (svc_field_size(f) == 8) {
        *(int64_t *)elem = v;
        return 0;
    }
    if (v < INT32_MIN || v > INT32_MAX)
        return -EINVAL;
    *(int32_t *)elem = (int32_t)v;
    return 0;
}

static int parse_uint(const ProtobufCFieldDescriptor *f, const char *s, void *elem)
{
    char *end;
    unsigned long long v;

    if (*s == '-')
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -EINVAL;
    if (svc_field_size(f) == 8) {
        *(uint64_t *)elem = v;
        return 0;
    }
    if (v > UINT32_MAX)
        return -EINVAL;
    *(uint32_t *)elem = (uint32_t)v;
    return 0;
}

static int parse_float(const ProtobufCFieldDescriptor *f, const char *s, void *elem)
{
    char *end;
    double v = strtod(s, &end);

    if (end == s || *end != '\0')
        return -EINVAL;
    if (f->type == PROTOBUF_C_TYPE_FLOAT)
        *(float *)elem = (float)v;
    else
        *(double *)elem = v;
    return 0;
}

/* bytea's hex output form, "\x0a1b". */
static int parse_bytes(const char *s, size_t len, ProtobufCBinaryData *out, arena *a)
{
    uint8_t *p;

    if (len < 2 || s[0] != '\\' || s[1] != 'x' || len % 2 != 0)
        return -EINVAL;
    p = arena_alloc(a, (len - 2) / 2 + 1);
    if (p == NULL)
        return -ENOMEM;
    for (size_t i = 2; i < len; i += 2) {
        int hi = rpc_hex_value((unsigned char)s[i]), lo = rpc_hex_value((unsigned char)s[i + 1]);

        if (hi < 0 || lo < 0)
            return -EINVAL;
        p[(i - 2) / 2] = (uint8_t)(hi << 4 | lo);
    }
    out->data = p;
    out->len = (len - 2) / 2;
    return 0;
}

/* A new message of |d| in |a|. */
static ProtobufCMessage *new_message(const ProtobufCMessageDescriptor *d, arena *a)
{
    ProtobufCMessage *m = arena_alloc(a, d->sizeof_message);

    if (m != NULL)
        d->message_init(m);
    return m;
}

static int parse_timestamp(const ProtobufCFieldDescriptor *f, const char *s, void *elem, arena *a)
{
    Google__Protobuf__Timestamp *ts;
    int64_t sec;
    int32_t ns;

    if (db_parse_timestamp(s, &sec, &ns) < 0)
        return -EINVAL;
    ts = (Google__Protobuf__Timestamp *)new_message(f->descriptor, a);
    if (ts == NULL)
        return -ENOMEM;
    ts->seconds = sec;
    ts->nanos = ns;
    *(void **)elem = ts;
    return 0;
}

static int parse_wrapper(const ProtobufCFieldDescriptor *f, const char *s, size_t len, void *elem,
                         bool copy, arena *a)
{
    const ProtobufCFieldDescriptor *vf = svc_wrapper_value(f);
    ProtobufCMessage *w = new_message(f->descriptor, a);
    int rv;

    if (w == NULL)
        return -ENOMEM;
    rv = svc_value_parse(vf, s, len, svc_field_ptr(w, vf), copy, a);
    if (rv == 0)
        *(void **)elem = w;
    return rv;
}

int svc_value_parse(const ProtobufCFieldDescriptor *f, const char *s, size_t len, void *elem,
                    bool copy, arena *a)
{
    int value;

    switch (svc_field_kind(f)) {
    case SVC_K_INT:
        return parse_int(f, s, elem);
    case SVC_K_UINT:
        return parse_uint(f, s, elem);
    case SVC_K_FLOAT:
        return parse_float(f, s, elem);
    case SVC_K_BOOL:
        if (strcmp(s, "t") != 0 && strcmp(s, "f") != 0 && strcmp(s, "true") != 0 &&
            strcmp(s, "false") != 0)
            return -EINVAL;
        *(protobuf_c_boolean *)elem = s[0] == 't';
        return 0;
    case SVC_K_ENUM:
        if (svc_enum_value(f->descriptor, s, &value) < 0)
            return -EINVAL;
        *(int *)elem = value;
        return 0;
    case SVC_K_STRING:
        *(const char **)elem = copy ? arena_strndup(a, s, len) : s;
        return *(const char **)elem != NULL ? 0 : -ENOMEM;
    case SVC_K_BYTES:
        return parse_bytes(s, len, elem, a);
    case SVC_K_TIMESTAMP:
        return parse_timestamp(f, s, elem, a);
    case SVC_K_WRAPPER:
        return parse_wrapper(f, s, len, elem, copy, a);
    default:
        return -EINVAL;
    }
}
