#include "services/svc_json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "rpc/base64.h"
#include "services/svc_path.h"
#include "services/svc_value.h"

/* ---- writing ---------------------------------------------------------- */

bool svc_field_is_map(const ProtobufCFieldDescriptor *f)
{
    const ProtobufCMessageDescriptor *d = f->descriptor;
    size_t n;

    if (f->type != PROTOBUF_C_TYPE_MESSAGE || !svc_field_repeated(f))
        return false;
    n = strlen(d->short_name);
    return n > 5 && strcmp(d->short_name + n - 5, "Entry") == 0 && d->n_fields == 2 &&
           strcmp(d->fields[0].name, "key") == 0 && strcmp(d->fields[1].name, "value") == 0;
}

/* One element: a value, a nested object, or null. */
static bool write_elem(strbuf *b, const ProtobufCFieldDescriptor *f, const void *elem)
{
    if (svc_field_kind(f) == SVC_K_MESSAGE) {
        const ProtobufCMessage *m = *(const ProtobufCMessage *const *)elem;

        if (m == NULL) {
            strbuf_puts(b, "null");
            return true;
        }
        return svc_json_write(b, m);
    }
    if (svc_value_is_null(f, elem) && svc_field_kind(f) != SVC_K_ENUM) {
        strbuf_puts(b, "null");
        return true;
    }
    return svc_value_write(b, f, elem, SVC_TEXT_JSON);
}

/* A map as an object: {"key": value, ...}; keys are strings in JSON. */
static bool write_map(strbuf *b, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const ProtobufCMessageDescriptor *d = f->descriptor;
    ProtobufCMessage *const *items = *(ProtobufCMessage *const *const *)svc_field_ptr(m, f);
    size_t n = *svc_field_count(m, f);
    bool ok = true;

    strbuf_putc(b, '{');
    for (size_t i = 0; i < n && ok; i++) {
        if (i > 0)
            strbuf_putc(b, ',');
        if (svc_field_kind(&d->fields[0]) == SVC_K_STRING) {
            ok = svc_value_write(b, &d->fields[0], svc_field_ptr(items[i], &d->fields[0]),
                                 SVC_TEXT_JSON);
        } else {
            strbuf_putc(b, '"');
            ok = svc_value_write(b, &d->fields[0], svc_field_ptr(items[i], &d->fields[0]),
                                 SVC_TEXT_PG);
            strbuf_putc(b, '"');
        }
        strbuf_putc(b, ':');
        ok = ok && write_elem(b, &d->fields[1], svc_field_ptr(items[i], &d->fields[1]));
    }
    strbuf_putc(b, '}');
    return ok;
}

bool svc_json_write_field(strbuf *b, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const char *base = svc_field_ptr(m, f);
    size_t size = svc_field_size(f), n;
    bool ok = true;

    if (svc_field_is_map(f))
        return write_map(b, m, f);
    if (!svc_field_repeated(f)) {
        if (!svc_field_present(m, f) && svc_field_kind(f) != SVC_K_STRING) {
            strbuf_puts(b, "null");
            return true;
        }
        return write_elem(b, f, base);
    }
    n = *svc_field_count(m, f);
    base = *(const char *const *)(const void *)base;
    strbuf_putc(b, '[');
    for (size_t i = 0; i < n && ok; i++) {
        if (i > 0)
            strbuf_putc(b, ',');
        ok = write_elem(b, f, base + i * size);
    }
    strbuf_putc(b, ']');
    return ok;
}

bool svc_json_write(strbuf *b, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    bool ok = true;

    strbuf_putc(b, '{');
    for (unsigned i = 0; i < d->n_fields && ok; i++) {
        if (i > 0)
            strbuf_putc(b, ',');
        strbuf_printf(b, "\"%s\":", d->fields[i].name);
        ok = svc_json_write_field(b, m, &d->fields[i]);
    }
    strbuf_putc(b, '}');
    return ok && !b->failed;
}

/* ---- reading ---------------------------------------------------------- */

struct reader {
    arena *a;
    char *err;
    size_t errlen;
};

static int fail(struct reader *r, const ProtobufCFieldDescriptor *f, const char *what)
{
    snprintf(r->err, r->errlen, "field %s: %s", f->name, what);
    return -EINVAL;
}

static int read_message(struct reader *r, json_object *o, const ProtobufCMessageDescriptor *d,
                        ProtobufCMessage **out);

/* A string or number as text, for the PostgreSQL-form parsers. */
static const char *scalar_text(json_object *v, char *buf, size_t len)
{
    switch (json_object_get_type(v)) {
    case json_type_string:
        return json_object_get_string(v);
    case json_type_int:
    case json_type_double:
    case json_type_boolean:
        snprintf(buf, len, "%s", json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
        return buf;
    default:
        return NULL;
    }
}

static int read_bytes(struct reader *r, const ProtobufCFieldDescriptor *f, json_object *v,
                      ProtobufCBinaryData *out)
{
    const char *s = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v), n;
    uint8_t *p;

    if (len >= 2 && s[0] == '\\' && s[1] == 'x') /* PostgreSQL's to_json(bytea) */
        return svc_value_parse(f, s, len, out, true, r->a) < 0 ? fail(r, f, "bad bytea") : 0;
    p = arena_alloc(r->a, rpc_base64_decoded_max(len) + 1);
    if (p == NULL)
        return -ENOMEM;
    if (rpc_base64_decode(s, len, p, rpc_base64_decoded_max(len) + 1, &n) < 0)
        return fail(r, f, "bad base64");
    out->data = p;
    out->len = n;
    return 0;
}

/* One element of field |f| from |v| into |elem|. */
static int read_elem(struct reader *r, const ProtobufCFieldDescriptor *f, json_object *v,
                     void *elem)
{
    enum svc_kind k = svc_field_kind(f);
    char buf[64];
    const char *s;
    int rv;

    if (k == SVC_K_MESSAGE) {
        if (!json_object_is_type(v, json_type_object))
            return fail(r, f, "expected an object");
        return read_message(r, v, f->descriptor, elem);
    }
    if (k == SVC_K_BYTES) {
        if (!json_object_is_type(v, json_type_string))
            return fail(r, f, "expected a string");
        return read_bytes(r, f, v, elem);
    }
    if (k == SVC_K_STRING && !json_object_is_type(v, json_type_string))
        return fail(r, f, "expected a string");
    if (k == SVC_K_BOOL && !json_object_is_type(v, json_type_boolean))
        return fail(r, f, "expected true or false");
    s = scalar_text(v, buf, sizeof(buf));
    if (s == NULL)
        return fail(r, f, "expected a value");
    rv = svc_value_parse(f, s, strlen(s), elem, true, r->a);
    if (rv == -EINVAL)
        return fail(r, f, "value does not fit the field");
    return rv;
}

/* An array into repeated field |f| of |m|. */
static int read_array(struct reader *r, json_object *v, ProtobufCMessage *m,
                      const ProtobufCFieldDescriptor *f)
{
    size_t n, size = svc_field_size(f);
    char *items;
    int rv;

    if (!json_object_is_type(v, json_type_array))
        return fail(r, f, "expected an array");
    n = json_object_array_length(v);
    items = n > 0 ? arena_alloc(r->a, n * size) : NULL;
    if (n > 0 && items == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(v, i);

        if (e == NULL || json_object_is_type(e, json_type_null))
            return fail(r, f, "null element");
        rv = read_elem(r, f, e, items + i * size);
        if (rv < 0)
            return rv;
    }
    *(char **)svc_field_ptr(m, f) = items;
    *svc_field_count(m, f) = n;
    return 0;
}

/* An object {"k": v} into map field |f| of |m|. */
static int read_map(struct reader *r, json_object *v, ProtobufCMessage *m,
                    const ProtobufCFieldDescriptor *f)
{
    const ProtobufCMessageDescriptor *d = f->descriptor;
    size_t n, i = 0;
    ProtobufCMessage **items;
    int rv;

    if (!json_object_is_type(v, json_type_object))
        return fail(r, f, "expected an object");
    n = (size_t)json_object_object_length(v);
    items = n > 0 ? arena_alloc(r->a, n * sizeof(*items)) : NULL;
    if (n > 0 && items == NULL)
        return -ENOMEM;
    json_object_object_foreach(v, key, val)
    {
        items[i] = arena_alloc(r->a, d->sizeof_message);
        if (items[i] == NULL)
            return -ENOMEM;
        d->message_init(items[i]);
        rv = svc_value_parse(&d->fields[0], key, strlen(key), svc_field_ptr(items[i], &d->fields[0]),
                             true, r->a);
        if (rv == 0)
            rv = read_elem(r, &d->fields[1], val, svc_field_ptr(items[i], &d->fields[1]));
        if (rv < 0)
            return rv == -EINVAL ? fail(r, f, "bad map entry") : rv;
        i++;
    }
    *(ProtobufCMessage ***)svc_field_ptr(m, f) = items;
    *svc_field_count(m, f) = n;
    return 0;
}

static int read_field(struct reader *r, json_object *v, ProtobufCMessage *m,
                      const ProtobufCFieldDescriptor *f)
{
    int rv;

    if (v == NULL || json_object_is_type(v, json_type_null))
        return 0;
    if (svc_field_is_map(f))
        return read_map(r, v, m, f);
    if (svc_field_repeated(f))
        return read_array(r, v, m, f);
    rv = read_elem(r, f, v, svc_field_ptr(m, f));
    if (rv == 0)
        svc_field_mark(m, f);
    return rv;
}

static int read_message(struct reader *r, json_object *o, const ProtobufCMessageDescriptor *d,
                        ProtobufCMessage **out)
{
    ProtobufCMessage *m = arena_alloc(r->a, d->sizeof_message);
    int rv;

    if (m == NULL)
        return -ENOMEM;
    d->message_init(m);
    json_object_object_foreach(o, key, val)
    {
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);

        if (f == NULL) {
            snprintf(r->err, r->errlen, "%s has no field \"%.64s\"", d->name, key);
            return -EINVAL;
        }
        rv = read_field(r, val, m, f);
        if (rv < 0)
            return rv;
    }
    *out = m;
    return 0;
}

int svc_json_read_field(const char *json, size_t len, ProtobufCMessage *m,
                        const ProtobufCFieldDescriptor *f, arena *a, char *err, size_t errlen)
{
    struct reader r = {.a = a, .err = err, .errlen = errlen};
    json_tokener *tok = json_tokener_new();
    json_object *v;
    int rv;

    if (tok == NULL)
        return -ENOMEM;
    v = json_tokener_parse_ex(tok, json, (int)len);
    if (v == NULL || json_tokener_get_parse_end(tok) != len) {
        snprintf(err, errlen, "field %s: not JSON", f->name);
        json_object_put(v);
        json_tokener_free(tok);
        return -EINVAL;
    }
    json_tokener_free(tok);
    rv = read_field(&r, v, m, f);
    json_object_put(v);
    return rv;
}
