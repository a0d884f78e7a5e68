/* arbiterctl: building a request message from "path=value" arguments,
 * generically through the protobuf-c descriptors. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ctl.h"
#include "rpc/base64.h"
#include "timestamp.pb-c.h"
#include "util/pbtype.h"

/* A scalar value parsed from text, before it is stored in a message. */
union scalar {
    int32_t i32;
    int64_t i64;
    uint32_t u32;
    uint64_t u64;
    float f;
    double d;
    protobuf_c_boolean b;
    char *s;
    ProtobufCBinaryData bytes;
    ProtobufCMessage *msg;
};

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

ProtobufCMessage *ctl_msg_new(const ProtobufCMessageDescriptor *desc, arena *a)
{
    ProtobufCMessage *m = arena_alloc(a, desc->sizeof_message);

    if (m)
        desc->message_init(m);
    return m;
}

/* Finds |name| in |desc|, trying lowerCamelCase → snake_case too. */
static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *desc,
                                                  const char *name, arena *a)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(desc, name);
    char *snake;
    size_t j = 0;

    if (f)
        return f;
    snake = arena_alloc(a, 2 * strlen(name) + 1);
    if (!snake)
        return NULL;
    for (const char *p = name; *p; p++) {
        if (*p >= 'A' && *p <= 'Z') {
            snake[j++] = '_';
            snake[j++] = (char)(*p - 'A' + 'a');
        } else {
            snake[j++] = *p;
        }
    }
    snake[j] = '\0';
    return protobuf_c_message_descriptor_get_field_by_name(desc, snake);
}

static int unknown_field(const ProtobufCMessageDescriptor *desc, const char *name, char *err,
                         size_t cap)
{
    size_t n = (size_t)snprintf(err, cap, "unknown field '%s' in %s (fields:", name, desc->name);

    for (unsigned i = 0; i < desc->n_fields && n < cap; i++)
        n += (size_t)snprintf(err + n, cap - n, "%s %s", i ? "," : "", desc->fields[i].name);
    if (n < cap)
        snprintf(err + n, cap - n, ")");
    return -ENOENT;
}

/* Marks a singular field present (oneof case or has_ flag). */
static void set_presence(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    uint8_t *base = (uint8_t *)m;

    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        *(uint32_t *)(base + f->quantifier_offset) = f->id;
    else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
             f->type != PROTOBUF_C_TYPE_STRING)
        *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
}

/* Appends one element of |size| bytes at |v| to repeated field |f|. */
static int repeated_append(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, const void *v,
                           size_t size, arena *a)
{
    uint8_t *base = (uint8_t *)m;
    size_t *count = (size_t *)(base + f->quantifier_offset);
    void **arr = (void **)(base + f->offset);
    uint8_t *grown = arena_alloc(a, (*count + 1) * size);

    if (!grown)
        return -ENOMEM;
    if (*count)
        memcpy(grown, *arr, *count * size);
    memcpy(grown + *count * size, v, size);
    *arr = grown;
    (*count)++;
    return 0;
}

/* Returns the sub-message of field |f| (element |idx| when repeated; -1 =
 * the last one, -2 = a new one), creating it when absent or when |idx|
 * equals the length.
 * Returns NULL with |err| written on failure. */
static ProtobufCMessage *sub_message(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                                     long idx, arena *a, char *err, size_t cap)
{
    uint8_t *base = (uint8_t *)m;
    ProtobufCMessage *sub;

    if (f->label != PROTOBUF_C_LABEL_REPEATED) {
        ProtobufCMessage **slot = (ProtobufCMessage **)(base + f->offset);

        if (!*slot)
            *slot = ctl_msg_new(f->descriptor, a);
        set_presence(m, f);
        return *slot;
    }
    {
        size_t count = *(size_t *)(base + f->quantifier_offset);
        ProtobufCMessage **arr = *(ProtobufCMessage ***)(base + f->offset);

        if (idx == -2)
            idx = (long)count;
        else if (idx < 0)
            idx = count ? (long)count - 1 : 0;
        if ((size_t)idx < count)
            return arr[idx];
        if ((size_t)idx > count) {
            fail(err, cap, "index %ld of '%s' out of range (it has %zu elements)", idx, f->name,
                 count);
            return NULL;
        }
    }
    sub = ctl_msg_new(f->descriptor, a);
    if (!sub || repeated_append(m, f, &sub, sizeof sub, a) < 0)
        return NULL;
    return sub;
}

static int parse_signed(const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    long long n;

    errno = 0;
    n = strtoll(v, &end, 10);
    if (!*v || *end || errno || n < lo || n > hi)
        return -EINVAL;
    *out = n;
    return 0;
}

static int parse_unsigned(const char *v, uint64_t hi, uint64_t *out)
{
    char *end;
    unsigned long long n;

    if (*v < '0' || *v > '9')
        return -EINVAL; /* strtoull would accept "-1" */
    errno = 0;
    n = strtoull(v, &end, 10);
    if (*end || errno || n > hi)
        return -EINVAL;
    *out = n;
    return 0;
}

static int parse_double(const char *v, double *out)
{
    char *end;

    if (!*v)
        return -EINVAL;
    errno = 0;
    *out = strtod(v, &end);
    return *end || errno == ERANGE ? -EINVAL : 0;
}

static int parse_bool(const char *v, protobuf_c_boolean *out)
{
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes")) {
        *out = 1;
        return 0;
    }
    if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no")) {
        *out = 0;
        return 0;
    }
    return -EINVAL;
}

static int parse_enum(const ProtobufCEnumDescriptor *e, const char *v, int32_t *out)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(e, v);
    int64_t n;

    if (ev) {
        *out = ev->value;
        return 0;
    }
    if (parse_signed(v, INT32_MIN, INT32_MAX, &n) < 0)
        return -EINVAL;
    *out = (int32_t)n;
    return 0;
}

static int parse_integer(ProtobufCType t, const char *v, union scalar *out)
{
    int64_t s;
    uint64_t u;

    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (parse_signed(v, INT32_MIN, INT32_MAX, &s) < 0)
            return -EINVAL;
        out->i32 = (int32_t)s;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return parse_signed(v, INT64_MIN, INT64_MAX, &out->i64);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (parse_unsigned(v, UINT32_MAX, &u) < 0)
            return -EINVAL;
        out->u32 = (uint32_t)u;
        return 0;
    default:
        return parse_unsigned(v, UINT64_MAX, &out->u64);
    }
}

/* Parses |v| as the scalar type of |f| into |out| (strings and bytes are
 * allocated in |a|). */
static int parse_scalar(const ProtobufCFieldDescriptor *f, const char *v, arena *a,
                        union scalar *out, char *err, size_t cap)
{
    double d = 0;
    int rv = 0;

    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        out->s = arena_strdup(a, v);
        return out->s ? 0 : -ENOMEM;
    case PROTOBUF_C_TYPE_BYTES:
        if (rpc_base64_decode_arena(a, v, strlen(v), &out->bytes.data, &out->bytes.len) < 0)
            return fail(err, cap, "field '%s' is bytes: '%s' is not base64", f->name, v);
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        rv = parse_bool(v, &out->b);
        break;
    case PROTOBUF_C_TYPE_ENUM:
        rv = parse_enum(f->descriptor, v, &out->i32);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        rv = parse_double(v, &out->d);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        rv = parse_double(v, &d);
        out->f = (float)d;
        if (rv == 0 && isfinite(d) && !isfinite(out->f))
            rv = -EINVAL;
        break;
    default:
        rv = parse_integer(f->type, v, out);
        break;
    }
    if (rv < 0)
        return fail(err, cap, "bad value '%s' for field '%s'", v, f->name);
    return 0;
}

/* Stores |v| (already parsed for |f|) into |m|. */
static int store_scalar(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                        const union scalar *v, arena *a)
{
    size_t size = pbtype_size(f->type);

    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return repeated_append(m, f, v, size, a);
    memcpy((uint8_t *)m + f->offset, v, size);
    set_presence(m, f);
    return 0;
}

/* True for google.protobuf.DoubleValue and the other wrapper types. */
static bool is_wrapper(const ProtobufCMessageDescriptor *d)
{
    return strncmp(d->name, "google.protobuf.", 16) == 0 && d->n_fields == 1 &&
           strcmp(d->fields[0].name, "value") == 0;
}

static bool is_timestamp(const ProtobufCMessageDescriptor *d)
{
    return strcmp(d->name, "google.protobuf.Timestamp") == 0;
}

/* Reads exactly |n| digits at *|p| into |out| and advances. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        char ch = (*p)[i];

        if (ch < '0' || ch > '9')
            return false;
        v = v * 10 + (ch - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool expect(const char **p, char ch)
{
    if (**p != ch && !(ch == 'T' && (**p == 't' || **p == ' ')))
        return false;
    (*p)++;
    return true;
}

/* Parses ".123" (1 to 9 digits) into nanoseconds. */
static bool fraction(const char **p, int32_t *nanos)
{
    int32_t v = 0;
    int n = 0;

    *nanos = 0;
    if (**p != '.')
        return true;
    (*p)++;
    while (**p >= '0' && **p <= '9' && n < 9) {
        v = v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    if (n == 0 || (**p >= '0' && **p <= '9'))
        return false;
    while (n++ < 9)
        v *= 10;
    *nanos = v;
    return true;
}

/* Parses an RFC 3339 time ("2026-11-26T14:35:09.5Z", "...+01:00"). */
static int parse_rfc3339(const char *p, int64_t *seconds, int32_t *nanos)
{
    struct tm tm = {0};
    int y, mo, d, h, mi, s, oh = 0, om = 0, sign = 0;
    time_t t;

    if (!digits(&p, 4, &y) || !expect(&p, '-') || !digits(&p, 2, &mo) || !expect(&p, '-') ||
        !digits(&p, 2, &d) || !expect(&p, 'T') || !digits(&p, 2, &h) || !expect(&p, ':') ||
        !digits(&p, 2, &mi) || !expect(&p, ':') || !digits(&p, 2, &s) || !fraction(&p, nanos))
        return -EINVAL;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '+' ? 1 : -1;
        if (!digits(&p, 2, &oh) || !expect(&p, ':') || !digits(&p, 2, &om) || oh > 23 || om > 59)
            return -EINVAL;
    } else {
        return -EINVAL;
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
        return -EINVAL;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    t = timegm(&tm);
    *seconds = (int64_t)t - sign * (oh * 3600 + om * 60);
    return 0;
}

/* "field=value" where field is a message: {} creates it empty; wrappers
 * and Timestamp take their plain value. */
static int set_message_value(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, long idx,
                             const char *v, arena *a, char *err, size_t cap)
{
    const ProtobufCMessageDescriptor *d = f->descriptor;
    ProtobufCMessage *sub;
    union scalar sv;
    int rv;

    if (strcmp(v, "{}") && !is_wrapper(d) && !is_timestamp(d))
        return fail(err, cap,
                    "'%s' is a message (%s): set its fields (%s.<field>=...) or "
                    "use %s={}",
                    f->name, d->name, f->name, f->name);
    /* Parse before creating the sub-message, so a bad value changes nothing. */
    if (is_wrapper(d) && strcmp(v, "{}")) {
        rv = parse_scalar(&d->fields[0], v, a, &sv, err, cap);
        if (rv < 0)
            return rv;
    }
    if (is_timestamp(d) && strcmp(v, "{}")) {
        int64_t secs;
        int32_t nanos;

        if (parse_rfc3339(v, &secs, &nanos) < 0)
            return fail(err, cap,
                        "bad value '%s' for '%s': expected an RFC 3339 time such "
                        "as 2026-01-02T03:04:05Z",
                        v, f->name);
        sub = sub_message(m, f, idx == -1 ? -2 : idx, a, err, cap);
        if (!sub)
            return -EINVAL;
        ((Google__Protobuf__Timestamp *)sub)->seconds = secs;
        ((Google__Protobuf__Timestamp *)sub)->nanos = nanos;
        return 0;
    }
    sub = sub_message(m, f, idx == -1 ? -2 : idx, a, err, cap);
    if (!sub)
        return -EINVAL;
    if (is_wrapper(d) && strcmp(v, "{}"))
        return store_scalar(sub, &d->fields[0], &sv, a);
    return 0;
}

/* Splits the segment "name" or "name[N]" in place: NUL-terminates the name
 * and stores N (or -1) in |idx|. */
static int split_index(char *seg, long *idx)
{
    char *br = strchr(seg, '[');
    char *end;

    *idx = -1;
    if (!br)
        return 0;
    *br = '\0';
    if (br[1] < '0' || br[1] > '9')
        return -EINVAL;
    errno = 0;
    *idx = strtol(br + 1, &end, 10);
    if (errno || end[0] != ']' || end[1] != '\0' || *idx > INT_MAX)
        return -EINVAL;
    return 0;
}

/* Applies |value| to the field named by the last path segment |seg|. */
static int assign_leaf(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, long idx,
                       const char *value, arena *a, char *err, size_t cap)
{
    union scalar sv;
    int rv;

    if (f->type == PROTOBUF_C_TYPE_MESSAGE)
        return set_message_value(m, f, idx, value, a, err, cap);
    if (idx >= 0)
        return fail(err, cap,
                    "'%s' is a repeated scalar: repeat '%s=value' instead of "
                    "indexing it",
                    f->name, f->name);
    rv = parse_scalar(f, value, a, &sv, err, cap);
    if (rv < 0)
        return rv;
    return store_scalar(m, f, &sv, a);
}

int ctl_msg_assign(ProtobufCMessage *msg, const char *arg, arena *a, char *err, size_t errcap)
{
    const char *eq = strchr(arg, '=');
    char *path, *seg, *dot;
    ProtobufCMessage *cur = msg;

    if (!eq || eq == arg)
        return fail(err, errcap, "'%s' is not a field=value argument", arg);
    path = arena_strndup(a, arg, (size_t)(eq - arg));
    if (!path)
        return -ENOMEM;
    for (seg = path;; seg = dot + 1) {
        const ProtobufCFieldDescriptor *f;
        long idx;

        dot = strchr(seg, '.');
        if (dot)
            *dot = '\0';
        if (split_index(seg, &idx) < 0)
            return fail(err, errcap, "bad index in '%s'", seg);
        f = find_field(cur->descriptor, seg, a);
        if (!f)
            return unknown_field(cur->descriptor, seg, err, errcap);
        if (idx >= 0 &&
            (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE))
            return fail(err, errcap, "'%s' is not a repeated message: it takes no index", seg);
        if (!dot)
            return assign_leaf(cur, f, idx, eq + 1, a, err, errcap);
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            return fail(err, errcap, "'%s' is not a message: it has no field '%s'", seg, dot + 1);
        cur = sub_message(cur, f, idx, a, err, errcap);
        if (!cur)
            return -EINVAL;
    }
}

static const char *type_name(const ProtobufCFieldDescriptor *f)
{
    static const char *const names[] = {
        [PROTOBUF_C_TYPE_INT32] = "int32",
        [PROTOBUF_C_TYPE_SINT32] = "sint32",
        [PROTOBUF_C_TYPE_SFIXED32] = "sfixed32",
        [PROTOBUF_C_TYPE_INT64] = "int64",
        [PROTOBUF_C_TYPE_SINT64] = "sint64",
        [PROTOBUF_C_TYPE_SFIXED64] = "sfixed64",
        [PROTOBUF_C_TYPE_UINT32] = "uint32",
        [PROTOBUF_C_TYPE_FIXED32] = "fixed32",
        [PROTOBUF_C_TYPE_UINT64] = "uint64",
        [PROTOBUF_C_TYPE_FIXED64] = "fixed64",
        [PROTOBUF_C_TYPE_FLOAT] = "float",
        [PROTOBUF_C_TYPE_DOUBLE] = "double",
        [PROTOBUF_C_TYPE_BOOL] = "bool",
        [PROTOBUF_C_TYPE_STRING] = "string",
        [PROTOBUF_C_TYPE_BYTES] = "bytes (base64)",
    };

    if (f->type == PROTOBUF_C_TYPE_ENUM)
        return ((const ProtobufCEnumDescriptor *)f->descriptor)->name;
    if (f->type == PROTOBUF_C_TYPE_MESSAGE)
        return ((const ProtobufCMessageDescriptor *)f->descriptor)->name;
    return (unsigned)f->type < sizeof names / sizeof names[0] ? names[f->type] : "?";
}

static void print_fields(FILE *out, const ProtobufCMessageDescriptor *d, const char *prefix,
                         int depth)
{
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const ProtobufCMessageDescriptor *sub = f->descriptor;
        bool msg = f->type == PROTOBUF_C_TYPE_MESSAGE;
        bool leaf = !msg || is_wrapper(sub) || is_timestamp(sub) || depth <= 0;
        char path[256];

        snprintf(path, sizeof path, "%s%s%s", prefix, f->name,
                 msg && f->label == PROTOBUF_C_LABEL_REPEATED ? "[N]" : "");
        if (leaf) {
            fprintf(out, "  %-40s %s%s\n", path,
                    f->label == PROTOBUF_C_LABEL_REPEATED ? "repeated " : "", type_name(f));
            continue;
        }
        snprintf(path + strlen(path), sizeof path - strlen(path), ".");
        print_fields(out, sub, path, depth - 1);
    }
}

void ctl_print_fields(FILE *out, const ProtobufCMessageDescriptor *desc, int max_depth)
{
    if (desc->n_fields == 0)
        fprintf(out, "  (no fields)\n");
    print_fields(out, desc, "", max_depth);
}
