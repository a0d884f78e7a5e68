#include "services/svc_path.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/pbtype.h"

#define WKT_PREFIX "google.protobuf."

static bool is_timestamp(const ProtobufCMessageDescriptor *d)
{
    return strcmp(d->name, WKT_PREFIX "Timestamp") == 0;
}

static bool is_wrapper(const ProtobufCMessageDescriptor *d)
{
    size_t n = strlen(d->name);

    return strncmp(d->name, WKT_PREFIX, sizeof(WKT_PREFIX) - 1) == 0 && n > 5 &&
           strcmp(d->name + n - 5, "Value") == 0 && d->n_fields == 1 &&
           strcmp(d->fields[0].name, "value") == 0;
}

static enum svc_kind scalar_kind(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return SVC_K_INT;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return SVC_K_UINT;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        return SVC_K_FLOAT;
    case PROTOBUF_C_TYPE_BOOL:
        return SVC_K_BOOL;
    case PROTOBUF_C_TYPE_ENUM:
        return SVC_K_ENUM;
    case PROTOBUF_C_TYPE_STRING:
        return SVC_K_STRING;
    case PROTOBUF_C_TYPE_BYTES:
        return SVC_K_BYTES;
    default:
        return SVC_K_MESSAGE;
    }
}

enum svc_kind svc_field_kind(const ProtobufCFieldDescriptor *f)
{
    if (f->type != PROTOBUF_C_TYPE_MESSAGE)
        return scalar_kind(f->type);
    if (is_timestamp(f->descriptor))
        return SVC_K_TIMESTAMP;
    if (is_wrapper(f->descriptor))
        return SVC_K_WRAPPER;
    return SVC_K_MESSAGE;
}

const ProtobufCFieldDescriptor *svc_wrapper_value(const ProtobufCFieldDescriptor *f)
{
    return &((const ProtobufCMessageDescriptor *)f->descriptor)->fields[0];
}

enum svc_kind svc_value_kind(const ProtobufCFieldDescriptor *f)
{
    return svc_field_kind(f) == SVC_K_WRAPPER ? svc_field_kind(svc_wrapper_value(f))
                                              : svc_field_kind(f);
}

const ProtobufCFieldDescriptor *svc_path_leaf(const svc_path *p)
{
    return p->steps[p->n - 1];
}

int svc_path_resolve(const ProtobufCMessageDescriptor *root, const char *text,
                     bool allow_repeated_step, svc_path *out, char *err, size_t errlen)
{
    const ProtobufCMessageDescriptor *d = root;
    const char *p = text;
    char name[128];

    memset(out, 0, sizeof(*out));
    out->text = text;
    out->repeated_at = -1;
    for (;;) {
        size_t len = strcspn(p, ".");
        const ProtobufCFieldDescriptor *f;

        if (len == 0 || len >= sizeof(name) || out->n == SVC_PATH_MAX) {
            snprintf(err, errlen, "bad field path \"%s\"", text);
            return -EINVAL;
        }
        memcpy(name, p, len);
        name[len] = '\0';
        f = d != NULL ? protobuf_c_message_descriptor_get_field_by_name(d, name) : NULL;
        if (f == NULL) {
            snprintf(err, errlen, "\"%s\": %s has no field \"%s\"", text,
                     d != NULL ? d->name : "a scalar", name);
            return -EINVAL;
        }
        out->steps[out->n++] = f;
        if (p[len] == '\0')
            return 0;
        if (svc_field_kind(f) != SVC_K_MESSAGE) {
            snprintf(err, errlen, "\"%s\": %s is not a message", text, f->name);
            return -EINVAL;
        }
        if (svc_field_repeated(f)) {
            if (!allow_repeated_step || out->repeated_at >= 0) {
                snprintf(err, errlen, "\"%s\": cannot step through repeated %s here", text,
                         f->name);
                return -EINVAL;
            }
            out->repeated_at = (int)out->n - 1;
        }
        d = f->descriptor;
        p += len + 1;
    }
}

bool svc_field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(const void *)((const char *)m + f->quantifier_offset) == f->id;
    if (f->type == PROTOBUF_C_TYPE_MESSAGE)
        return *(void *const *)svc_field_ptr(m, f) != NULL;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING)
        return *(const protobuf_c_boolean *)(const void *)((const char *)m +
                                                            f->quantifier_offset);
    return true;
}

void svc_field_mark(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        *(uint32_t *)(void *)((char *)m + f->quantifier_offset) = f->id;
    else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
             f->type != PROTOBUF_C_TYPE_MESSAGE)
        *(protobuf_c_boolean *)(void *)((char *)m + f->quantifier_offset) = 1;
}

size_t svc_field_size(const ProtobufCFieldDescriptor *f)
{
    return pbtype_size(f->type);
}

/* "QueryStatus" → "QUERY_STATUS_" into |buf|; returns its length. */
static size_t enum_prefix(const ProtobufCEnumDescriptor *e, char *buf, size_t cap)
{
    size_t n = 0;

    for (const char *s = e->short_name; *s && n + 3 < cap; s++) {
        if (s != e->short_name && isupper((unsigned char)*s))
            buf[n++] = '_';
        buf[n++] = (char)toupper((unsigned char)*s);
    }
    buf[n++] = '_';
    buf[n] = '\0';
    return n;
}

const char *svc_enum_short_name(const ProtobufCEnumDescriptor *e, int value)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(e, value);
    char prefix[96];
    size_t n;

    if (v == NULL)
        return NULL;
    n = enum_prefix(e, prefix, sizeof(prefix));
    return strncmp(v->name, prefix, n) == 0 && v->name[n] != '\0' ? v->name + n : v->name;
}

int svc_enum_value(const ProtobufCEnumDescriptor *e, const char *name, int *value)
{
    const ProtobufCEnumValue *v;
    char full[160];
    size_t n = enum_prefix(e, full, sizeof(full)), len = strlen(name);

    if (len == 0 || n + len >= sizeof(full))
        return -ENOENT;
    for (size_t i = 0; i <= len; i++)
        full[n + i] = (char)toupper((unsigned char)name[i]);
    v = protobuf_c_enum_descriptor_get_value_by_name(e, full + n); /* as given, upper case */
    if (v == NULL)
        v = protobuf_c_enum_descriptor_get_value_by_name(e, full); /* with the prefix */
    if (v == NULL)
        return -ENOENT;
    *value = v->value;
    return 0;
}
