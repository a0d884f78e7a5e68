/* arbiterctl: a protobuf-c message as JSON (json-c). The mapping is
 * described in ctl.h. */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "rpc/base64.h"
#include "util/pbtype.h"

static struct json_object *field_to_json(const ProtobufCFieldDescriptor *f, const void *v);

/* Shortest decimal that reads back as |d| (json-c's default %.17g prints
 * 0.8 as 0.80000000000000004). */
static struct json_object *double_to_json(double d)
{
    char buf[40];

    if (isnan(d))
        return json_object_new_string("NaN");
    if (isinf(d))
        return json_object_new_string(d > 0 ? "Infinity" : "-Infinity");
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    return json_object_new_double_s(d, buf);
}

static struct json_object *int64_to_json(int64_t v)
{
    char buf[24];

    snprintf(buf, sizeof buf, "%" PRId64, v);
    return json_object_new_string(buf);
}

static struct json_object *uint64_to_json(uint64_t v)
{
    char buf[24];

    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return json_object_new_string(buf);
}

/* Padded standard base64 (the proto3 JSON form of bytes). */
static struct json_object *bytes_to_json(const ProtobufCBinaryData *b)
{
    size_t cap = rpc_base64_encoded_len(b->len) + 3;
    char *s = malloc(cap);
    struct json_object *o = NULL;
    size_t n;

    if (!s)
        return NULL;
    if (rpc_base64_encode(b->data, b->len, s, cap, &n) == 0) {
        while (n % 4)
            s[n++] = '=';
        s[n] = '\0';
        o = json_object_new_string(s);
    }
    free(s);
    return o;
}

static struct json_object *enum_to_json(const ProtobufCEnumDescriptor *e, int32_t v)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(e, v);

    return ev ? json_object_new_string(ev->name) : json_object_new_int(v);
}

/* RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits, as proto3 JSON. */
static struct json_object *timestamp_to_json(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const ProtobufCFieldDescriptor *fs =
        protobuf_c_message_descriptor_get_field_by_name(d, "seconds");
    const ProtobufCFieldDescriptor *fn =
        protobuf_c_message_descriptor_get_field_by_name(d, "nanos");
    int64_t secs = *(const int64_t *)((const uint8_t *)m + fs->offset);
    int32_t nanos = *(const int32_t *)((const uint8_t *)m + fn->offset);
    time_t t = (time_t)secs;
    struct tm tm;
    char buf[64], frac[16] = "";

    if (nanos < 0 || nanos > 999999999 || !gmtime_r(&t, &tm) || tm.tm_year + 1900 < 1 ||
        tm.tm_year + 1900 > 9999)
        return json_object_new_string("invalid timestamp");
    if (nanos % 1000000 == 0 && nanos)
        snprintf(frac, sizeof frac, ".%03d", nanos / 1000000);
    else if (nanos % 1000 == 0 && nanos)
        snprintf(frac, sizeof frac, ".%06d", nanos / 1000);
    else if (nanos)
        snprintf(frac, sizeof frac, ".%09d", nanos);
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    return json_object_new_string(buf);
}

static bool is_wrapper(const ProtobufCMessageDescriptor *d)
{
    return strncmp(d->name, "google.protobuf.", 16) == 0 && d->n_fields == 1 &&
           strcmp(d->fields[0].name, "value") == 0;
}

static struct json_object *message_value_to_json(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;

    if (strcmp(d->name, "google.protobuf.Timestamp") == 0)
        return timestamp_to_json(m);
    if (is_wrapper(d))
        return field_to_json(&d->fields[0], (const uint8_t *)m + d->fields[0].offset);
    return ctl_msg_to_json(m);
}

/* One value of field |f| stored at |v|. */
static struct json_object *field_to_json(const ProtobufCFieldDescriptor *f, const void *v)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_object_new_int(*(const int32_t *)v);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_object_new_int64(*(const uint32_t *)v);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return int64_to_json(*(const int64_t *)v);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return uint64_to_json(*(const uint64_t *)v);
    case PROTOBUF_C_TYPE_FLOAT:
        return double_to_json(*(const float *)v);
    case PROTOBUF_C_TYPE_DOUBLE:
        return double_to_json(*(const double *)v);
    case PROTOBUF_C_TYPE_BOOL:
        return json_object_new_boolean(*(const protobuf_c_boolean *)v);
    case PROTOBUF_C_TYPE_ENUM:
        return enum_to_json(f->descriptor, *(const int32_t *)v);
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)v;

        return json_object_new_string(s ? s : "");
    }
    case PROTOBUF_C_TYPE_BYTES:
        return bytes_to_json(v);
    case PROTOBUF_C_TYPE_MESSAGE:
        return message_value_to_json(*(const ProtobufCMessage *const *)v);
    }
    return NULL;
}

static struct json_object *repeated_to_json(const ProtobufCMessage *m,
                                            const ProtobufCFieldDescriptor *f)
{
    const uint8_t *base = (const uint8_t *)m;
    size_t n = *(const size_t *)(base + f->quantifier_offset);
    const uint8_t *arr = *(const uint8_t *const *)(base + f->offset);
    size_t size = pbtype_size(f->type);
    struct json_object *a = json_object_new_array_ext((int)n);

    for (size_t i = 0; a && i < n; i++) {
        struct json_object *e = field_to_json(f, arr + i * size);

        if (!e || json_object_array_add(a, e) < 0) {
            json_object_put(e);
            json_object_put(a);
            return NULL;
        }
    }
    return a;
}

/* False when a singular field is absent: an unset message, an unset
 * proto2 optional, another member of a oneof. */
static bool field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const uint8_t *base = (const uint8_t *)m;

    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    if (f->type == PROTOBUF_C_TYPE_MESSAGE ||
        (f->type == PROTOBUF_C_TYPE_STRING && f->label == PROTOBUF_C_LABEL_OPTIONAL))
        return *(const void *const *)(base + f->offset) != NULL;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL)
        return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
    return true;
}

struct json_object *ctl_msg_to_json(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    struct json_object *o = json_object_new_object();

    for (unsigned i = 0; o && i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        struct json_object *v;

        if (f->label == PROTOBUF_C_LABEL_REPEATED)
            v = repeated_to_json(m, f);
        else if (field_present(m, f))
            v = field_to_json(f, (const uint8_t *)m + f->offset);
        else
            continue;
        if (!v || json_object_object_add(o, f->name, v) < 0) {
            json_object_put(v);
            json_object_put(o);
            return NULL;
        }
    }
    return o;
}
