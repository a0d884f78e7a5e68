#include "services/svc_check.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#define NAME_LEN 160

void svc_invalid(rpc_call *call, const char *field, const char *fmt, ...)
{
    char what[192];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    rpc_call_finishf(call, RPC_INVALID_ARGUMENT, "%s: %s", field, what);
}

/* Where a failing rule writes "<field>: <what>". */
struct verdict {
    char *msg;
    size_t len;
};

static bool refuse(struct verdict *v, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool refuse(struct verdict *v, const char *field, const char *fmt, ...)
{
    int n = snprintf(v->msg, v->len, "%s: ", field);
    va_list ap;

    if (n >= 0 && (size_t)n < v->len) {
        va_start(ap, fmt);
        vsnprintf(v->msg + n, v->len - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return false;
}

bool svc_is_uuid(const char *s)
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

/* ---- compiling -------------------------------------------------------- */

static bool fits(const svc_check *c, const ProtobufCFieldDescriptor *f)
{
    enum svc_kind k = svc_field_kind(f);
    bool rep = svc_field_repeated(f);

    switch (c->kind) {
    case SVC_CHECK_REQUIRED:
        return !rep && (k == SVC_K_MESSAGE || k == SVC_K_STRING || k == SVC_K_TIMESTAMP ||
                        k == SVC_K_WRAPPER);
    case SVC_CHECK_LEN:
    case SVC_CHECK_UUID:
    case SVC_CHECK_NAME:
    case SVC_CHECK_JSON:
        return !rep && k == SVC_K_STRING;
    case SVC_CHECK_RANGE:
        k = svc_value_kind(f);
        return !rep && (k == SVC_K_INT || k == SVC_K_UINT || k == SVC_K_FLOAT);
    case SVC_CHECK_ITEMS:
        return rep && (c->item_max == 0 || k == SVC_K_STRING);
    case SVC_CHECK_ENUM:
        return !rep && k == SVC_K_ENUM;
    case SVC_CHECK_VECTOR:
        return rep && k == SVC_K_FLOAT;
    default:
        return false;
    }
}

int svc_rule_compile(const ProtobufCMessageDescriptor *request, const svc_check *c,
                     svc_rule *out, char *err, size_t errlen)
{
    int rv = svc_path_resolve(request, c->field, true, &out->path, err, errlen);

    if (rv < 0)
        return rv;
    out->check = c;
    if (!fits(c, svc_path_leaf(&out->path))) {
        snprintf(err, errlen, "check on \"%s\" does not fit the field's type", c->field);
        return -EINVAL;
    }
    return 0;
}

/* ---- checking one value ----------------------------------------------- */

/* Code points in a UTF-8 string: every byte that is not a continuation
 * byte starts one (protobuf-c already checked the encoding). */
static size_t utf8_len(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static bool check_len(struct verdict *call, const char *name, const char *v, double lo, double hi)
{
    size_t n = utf8_len(v ? v : "");

    if (n >= lo && n <= hi)
        return true;
    if (n == 0)
        refuse(call, name, "is required");
    else
        refuse(call, name, "must be %.0f to %.0f characters, got %zu", lo, hi, n);
    return false;
}

static bool check_name(struct verdict *call, const char *name, const char *v, double hi)
{
    if (!check_len(call, name, v, 1, hi))
        return false;
    for (const char *p = v; *p; p++) {
        char c = *p;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-')) {
            refuse(call, name, "only letters, digits and _ . : - are allowed");
            return false;
        }
    }
    return true;
}

static bool check_json(struct verdict *call, const char *name, const char *v)
{
    json_object *o;
    bool ok;

    if (v == NULL || v[0] == '\0')
        return true;
    o = json_tokener_parse(v);
    ok = o != NULL && json_object_is_type(o, json_type_object);
    json_object_put(o);
    if (!ok)
        refuse(call, name, "must be a JSON object");
    return ok;
}

static double number(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return (double)*(const int64_t *)p;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return (double)*(const uint64_t *)p;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return *(const uint32_t *)p;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)p;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)p;
    default:
        return *(const int32_t *)p;
    }
}

static bool check_range(struct verdict *call, const char *name, const ProtobufCMessage *m,
                        const ProtobufCFieldDescriptor *f, const svc_check *c)
{
    double v;

    if (svc_field_kind(f) == SVC_K_WRAPPER) {
        const ProtobufCMessage *w = *(ProtobufCMessage *const *)svc_field_ptr(m, f);

        if (w == NULL)
            return true;
        v = number(svc_wrapper_value(f), svc_field_ptr(w, svc_wrapper_value(f)));
    } else {
        v = number(f, svc_field_ptr(m, f));
    }
    if (isfinite(v) && v >= c->min && v <= c->max)
        return true;
    refuse(call, name, "must be between %g and %g", c->min, c->max);
    return false;
}

static bool check_items(struct verdict *call, const char *name, const ProtobufCMessage *m,
                        const ProtobufCFieldDescriptor *f, const svc_check *c)
{
    size_t n = *svc_field_count(m, f);
    char *const *items = *(char *const *const *)svc_field_ptr(m, f);
    char item[NAME_LEN + 16];

    if (n > c->max) {
        refuse(call, name, "at most %.0f items, got %zu", c->max, n);
        return false;
    }
    if (c->item_max == 0)
        return true;
    for (size_t i = 0; i < n; i++) {
        snprintf(item, sizeof(item), "%s[%zu]", name, i);
        if (!check_len(call, item, items[i], c->item_min, c->item_max))
            return false;
    }
    return true;
}

static bool check_enum(struct verdict *call, const char *name, const ProtobufCMessage *m,
                       const ProtobufCFieldDescriptor *f, const svc_check *c)
{
    int v = *(const int *)svc_field_ptr(m, f);

    if (v == 0 && c->min == 0)
        return true;
    if (v == 0) {
        refuse(call, name, "is required");
        return false;
    }
    if (protobuf_c_enum_descriptor_get_value(f->descriptor, v) != NULL)
        return true;
    refuse(call, name, "%d is not a %s", v,
                ((const ProtobufCEnumDescriptor *)f->descriptor)->short_name);
    return false;
}

/* An embedding is a direction: finite values, not all zero. */
static bool check_vector(struct verdict *call, const char *name, const ProtobufCMessage *m,
                         const ProtobufCFieldDescriptor *f, const svc_check *c)
{
    size_t n = *svc_field_count(m, f), size = svc_field_size(f);
    const char *items = *(const char *const *)svc_field_ptr(m, f);
    double sum = 0;

    if (n == 0 && c->min == 0)
        return true;
    if (n == 0)
        return refuse(call, name, "is required");
    if (n > c->max)
        return refuse(call, name, "must have 1 to %.0f values, got %zu", c->max, n);
    for (size_t i = 0; i < n; i++) {
        double v = number(f, items + i * size);

        if (!isfinite(v))
            return refuse(call, name, "value %zu is not a finite number", i);
        sum += v * v;
    }
    if (sum == 0)
        return refuse(call, name, "must not be a zero vector");
    return true;
}

/* The leaf |f| of message |m|, called |name| in messages. */
static bool check_leaf(struct verdict *call, const char *name, const ProtobufCMessage *m,
                       const ProtobufCFieldDescriptor *f, const svc_check *c)
{
    const char *s = f->type == PROTOBUF_C_TYPE_STRING ? *(char *const *)svc_field_ptr(m, f) : NULL;

    switch (c->kind) {
    case SVC_CHECK_REQUIRED:
        if (f->type == PROTOBUF_C_TYPE_STRING ? s != NULL && s[0] != '\0'
                                              : svc_field_present(m, f))
            return true;
        refuse(call, name, "is required");
        return false;
    case SVC_CHECK_LEN:
        return check_len(call, name, s, c->min, c->max);
    case SVC_CHECK_UUID:
        if ((s == NULL || s[0] == '\0') && c->min == 0)
            return true;
        if (s == NULL || s[0] == '\0')
            refuse(call, name, "is required");
        else if (!svc_is_uuid(s))
            refuse(call, name, "must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
        else
            return true;
        return false;
    case SVC_CHECK_RANGE:
        return check_range(call, name, m, f, c);
    case SVC_CHECK_ITEMS:
        return check_items(call, name, m, f, c);
    case SVC_CHECK_NAME:
        return check_name(call, name, s, c->max);
    case SVC_CHECK_JSON:
        return check_json(call, name, s);
    case SVC_CHECK_ENUM:
        return check_enum(call, name, m, f, c);
    case SVC_CHECK_VECTOR:
        return check_vector(call, name, m, f, c);
    default:
        return true;
    }
}

/* ---- walking the path ------------------------------------------------- */

static bool walk(struct verdict *call, const svc_rule *r, unsigned step, const ProtobufCMessage *m,
                 char *name, size_t len)
{
    const ProtobufCFieldDescriptor *f = r->path.steps[step];
    int w = snprintf(name + len, NAME_LEN - len, "%s%s", len ? "." : "", f->name);
    size_t at = w > 0 && (size_t)w < NAME_LEN - len ? len + (size_t)w : len;

    if (step + 1 == r->path.n)
        return check_leaf(call, name, m, f, r->check);
    if (!svc_field_repeated(f)) {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)svc_field_ptr(m, f);

        if (sub == NULL) { /* absent: nothing to check below, unless required */
            if (r->check->kind != SVC_CHECK_REQUIRED)
                return true;
            refuse(call, name, "is required");
            return false;
        }
        return walk(call, r, step + 1, sub, name, at);
    }
    for (size_t i = 0; i < *svc_field_count(m, f); i++) {
        const ProtobufCMessage *sub = (*(ProtobufCMessage *const *const *)svc_field_ptr(m, f))[i];
        int k = snprintf(name + at, NAME_LEN - at, "[%zu]", i);
        size_t at2 = k > 0 && (size_t)k < NAME_LEN - at ? at + (size_t)k : at;

        if (!walk(call, r, step + 1, sub, name, at2))
            return false;
    }
    return true;
}

int svc_rules_check(const svc_rule *rules, size_t n, const ProtobufCMessage *msg, char *err,
                    size_t errlen)
{
    struct verdict v = {err, errlen};
    char name[NAME_LEN];

    for (size_t i = 0; i < n; i++) {
        name[0] = '\0';
        if (!walk(&v, &rules[i], 0, msg, name, 0))
            return -EINVAL;
    }
    return 0;
}

bool svc_rules_pass(rpc_call *call, const svc_rule *rules, size_t n, const ProtobufCMessage *msg)
{
    char err[256];

    if (svc_rules_check(rules, n, msg, err, sizeof(err)) == 0)
        return true;
    rpc_call_finish(call, RPC_INVALID_ARGUMENT, err);
    return false;
}
