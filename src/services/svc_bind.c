#include "services/svc_bind.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/svc_json.h"
#include "services/svc_value.h"

#define BIND_MAX (64u << 20) /* one parameter's text; requests are smaller */

int svc_param_compile(const ProtobufCMessageDescriptor *request, const char *text, svc_param *out,
                      char *err, size_t errlen)
{
    const ProtobufCFieldDescriptor *leaf;
    char *end;
    long k;
    int rv;

    memset(out, 0, sizeof(*out));
    out->path.text = text;
    if (strcmp(text, "@limit") == 0) {
        out->kind = SVC_P_LIMIT;
        return 0;
    }
    if (strncmp(text, "@after.", 7) == 0) {
        k = strtol(text + 7, &end, 10);
        if (*end != '\0' || k < 1 || k > SVC_PAGE_MAX_KEYS) {
            snprintf(err, errlen, "bad pseudo-parameter \"%s\"", text);
            return -EINVAL;
        }
        out->kind = SVC_P_AFTER;
        out->key = (unsigned)k - 1;
        return 0;
    }
    rv = svc_path_resolve(request, text, true, &out->path, err, errlen);
    if (rv < 0)
        return rv;
    leaf = svc_path_leaf(&out->path);
    out->json = svc_field_kind(leaf) == SVC_K_MESSAGE;
    if (out->path.repeated_at >= 0 && (svc_field_repeated(leaf) || out->json)) {
        snprintf(err, errlen, "\"%s\": an array of arrays or of messages cannot be bound", text);
        return -EINVAL;
    }
    return 0;
}

/* Walks singular steps [from, to) of |p| from |m|; NULL when a message on
 * the way is absent. */
static const ProtobufCMessage *descend(const svc_path *p, unsigned from, unsigned to,
                                       const ProtobufCMessage *m)
{
    for (unsigned i = from; i < to && m != NULL; i++)
        m = *(ProtobufCMessage *const *)svc_field_ptr(m, p->steps[i]);
    return m;
}

/* One array element: the value quoted, or NULL. */
static void array_elem(strbuf *b, const ProtobufCFieldDescriptor *f, const void *elem, bool *bad)
{
    strbuf v;
    char *text;
    size_t n;

    if (svc_value_is_null(f, elem)) {
        strbuf_puts(b, "NULL");
        return;
    }
    strbuf_init(&v, BIND_MAX, b->mem);
    if (!svc_value_write(&v, f, elem, SVC_TEXT_PG))
        *bad = true;
    text = strbuf_take(&v, NULL);
    if (text == NULL) {
        b->failed = true;
        return;
    }
    n = db_array_quote(text, NULL);
    if (n < BIND_MAX) {
        char *q = alloc_malloc(b->mem, n);

        if (q != NULL) {
            db_array_quote(text, q);
            strbuf_add(b, q, n);
        } else {
            b->failed = true;
        }
        alloc_free(b->mem, q);
    } else {
        b->failed = true;
    }
    alloc_free(b->mem, text);
}

/* A repeated scalar leaf of |m| as an array literal. */
static void write_array(strbuf *b, const ProtobufCFieldDescriptor *f, const ProtobufCMessage *m,
                        bool *bad)
{
    const char *items = *(const char *const *)svc_field_ptr(m, f);
    size_t n = *svc_field_count(m, f), size = svc_field_size(f);

    strbuf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            strbuf_putc(b, ',');
        array_elem(b, f, items + i * size, bad);
    }
    strbuf_putc(b, '}');
}

/* The leaf of every element of the repeated step, as an array literal. */
static void write_gathered(strbuf *b, const svc_path *p, const ProtobufCMessage *req, bool *bad)
{
    unsigned r = (unsigned)p->repeated_at;
    const ProtobufCMessage *m = descend(p, 0, r, req);
    const ProtobufCFieldDescriptor *rf = p->steps[r], *leaf = svc_path_leaf(p);
    size_t n = m != NULL ? *svc_field_count(m, rf) : 0;

    strbuf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        const ProtobufCMessage *e =
            descend(p, r + 1, p->n - 1, (*(ProtobufCMessage *const *const *)svc_field_ptr(m, rf))[i]);

        if (i > 0)
            strbuf_putc(b, ',');
        if (e == NULL || !svc_field_present(e, leaf))
            strbuf_puts(b, "NULL");
        else
            array_elem(b, leaf, svc_field_ptr(e, leaf), bad);
    }
    strbuf_putc(b, '}');
}

/* The text of a field parameter into |b|; false when it is SQL NULL. */
static bool write_field(strbuf *b, const svc_param *p, const ProtobufCMessage *req, bool *bad)
{
    const ProtobufCFieldDescriptor *leaf = svc_path_leaf(&p->path);
    const ProtobufCMessage *m;

    if (p->path.repeated_at >= 0) {
        write_gathered(b, &p->path, req, bad);
        return true;
    }
    m = descend(&p->path, 0, p->path.n - 1, req);
    if (m == NULL)
        return false;
    if (p->json) {
        if (!svc_field_repeated(leaf) && !svc_field_present(m, leaf))
            return false;
        *bad = !svc_json_write_field(b, m, leaf) && !b->failed;
        return true;
    }
    if (svc_field_repeated(leaf)) {
        write_array(b, leaf, m, bad);
        return true;
    }
    if (!svc_field_present(m, leaf) || svc_value_is_null(leaf, svc_field_ptr(m, leaf)))
        return false;
    *bad = !svc_value_write(b, leaf, svc_field_ptr(m, leaf), SVC_TEXT_PG);
    return true;
}

/* The common cases without a buffer: strings (already NUL-terminated in
 * the call's arena) and integers. Returns 1 when done, 0 otherwise. */
static int bind_fast(db_txn *t, const svc_param *p, const ProtobufCMessage *req)
{
    const ProtobufCFieldDescriptor *leaf = svc_path_leaf(&p->path);
    const ProtobufCMessage *m;

    if (p->json || p->path.repeated_at >= 0 || svc_field_repeated(leaf) ||
        (leaf->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || leaf->label == PROTOBUF_C_LABEL_OPTIONAL)
        return 0;
    m = descend(&p->path, 0, p->path.n - 1, req);
    if (m == NULL) {
        db_param_null(t);
        return 1;
    }
    switch (leaf->type) {
    case PROTOBUF_C_TYPE_STRING:
        db_param_take(t, *(char *const *)svc_field_ptr(m, leaf));
        return 1;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        db_param_int64(t, *(const int32_t *)svc_field_ptr(m, leaf));
        return 1;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        db_param_int64(t, *(const int64_t *)svc_field_ptr(m, leaf));
        return 1;
    default:
        return 0;
    }
}

int svc_param_bind(db_txn *t, const svc_param *p, const ProtobufCMessage *req,
                   const svc_page_args *page, arena *a)
{
    strbuf b;
    bool bad = false, null;
    char *text;
    size_t len;

    switch (p->kind) {
    case SVC_P_LIMIT:
        db_param_int64(t, page != NULL ? (int64_t)page->size + 1 : 1);
        return 0;
    case SVC_P_AFTER:
        db_param_take(t, page != NULL && p->key < page->pos.nkeys ? page->pos.keys[p->key] : NULL);
        return 0;
    case SVC_P_FIELD:
        break;
    }
    if (bind_fast(t, p, req))
        return 0;
    strbuf_init(&b, BIND_MAX, a->mem);
    null = !write_field(&b, p, req, &bad);
    text = strbuf_take(&b, &len);
    if (bad || (!null && text == NULL)) {
        alloc_free(a->mem, text);
        return bad ? -EINVAL : -ENOMEM;
    }
    if (null)
        db_param_null(t);
    else
        db_param_textn(t, text, len);
    alloc_free(a->mem, text);
    return 0;
}
