#include "services/svc_map.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/svc_json.h"
#include "services/svc_path.h"
#include "services/svc_value.h"

/* PostgreSQL type OIDs (pg_type.dat); user-defined types start at 16384. */
enum {
    OID_BOOL = 16, OID_BYTEA = 17, OID_CHAR = 18, OID_NAME = 19, OID_INT8 = 20, OID_INT2 = 21,
    OID_INT4 = 23, OID_TEXT = 25, OID_OID = 26, OID_JSON = 114, OID_FLOAT4 = 700,
    OID_FLOAT8 = 701, OID_UNKNOWN = 705, OID_BPCHAR = 1042, OID_VARCHAR = 1043,
    OID_TIMESTAMPTZ = 1184, OID_NUMERIC = 1700, OID_UUID = 2950, OID_JSONB = 3802,
    OID_BOOL_ARRAY = 1000, OID_BYTEA_ARRAY = 1001, OID_INT2_ARRAY = 1005, OID_INT4_ARRAY = 1007,
    OID_TEXT_ARRAY = 1009, OID_BPCHAR_ARRAY = 1014, OID_VARCHAR_ARRAY = 1015,
    OID_INT8_ARRAY = 1016, OID_FLOAT4_ARRAY = 1021, OID_FLOAT8_ARRAY = 1022,
    OID_TIMESTAMPTZ_ARRAY = 1185, OID_NUMERIC_ARRAY = 1231, OID_UUID_ARRAY = 2951,
    OID_FIRST_USER = 16384,
};

struct map_col {
    char *name;     /* owned */
    bool skip;      /* '_' prefix: not mapped */
    bool json;      /* the leaf is filled from a json/jsonb column */
    bool gather;    /* x.y through repeated x: an array, one element per x */
    svc_path path;  /* in the map's descriptor */
};

struct svc_map {
    const ProtobufCMessageDescriptor *d;
    int ncols;
    struct map_col cols[];
};

static bool is_int_oid(unsigned t)
{
    return t == OID_INT2 || t == OID_INT4 || t == OID_INT8 || t == OID_OID;
}

static bool is_text_oid(unsigned t)
{
    return t == OID_TEXT || t == OID_VARCHAR || t == OID_BPCHAR || t == OID_NAME ||
           t == OID_CHAR || t == OID_UNKNOWN;
}

/* Whether a scalar column of type |t| fits a value of kind |k|. */
static bool scalar_fits(enum svc_kind k, unsigned t)
{
    switch (k) {
    case SVC_K_INT:
    case SVC_K_UINT:
        return is_int_oid(t);
    case SVC_K_FLOAT:
        return is_int_oid(t) || t == OID_FLOAT4 || t == OID_FLOAT8 || t == OID_NUMERIC;
    case SVC_K_BOOL:
        return t == OID_BOOL;
    case SVC_K_ENUM:
        return is_text_oid(t) || t >= OID_FIRST_USER;
    case SVC_K_STRING:
        return t != OID_BYTEA && !(t >= 1000 && t <= 1028) && t != OID_TIMESTAMPTZ_ARRAY &&
               t != OID_NUMERIC_ARRAY && t != OID_UUID_ARRAY;
    case SVC_K_BYTES:
        return t == OID_BYTEA;
    case SVC_K_TIMESTAMP:
        return t == OID_TIMESTAMPTZ;
    default:
        return false;
    }
}

/* Whether an array column of type |t| fits repeated values of kind |k|. */
static bool array_fits(enum svc_kind k, unsigned t)
{
    switch (k) {
    case SVC_K_INT:
    case SVC_K_UINT:
        return t == OID_INT2_ARRAY || t == OID_INT4_ARRAY || t == OID_INT8_ARRAY;
    case SVC_K_FLOAT:
        return t == OID_FLOAT4_ARRAY || t == OID_FLOAT8_ARRAY || t == OID_NUMERIC_ARRAY ||
               t == OID_INT2_ARRAY || t == OID_INT4_ARRAY || t == OID_INT8_ARRAY;
    case SVC_K_BOOL:
        return t == OID_BOOL_ARRAY;
    case SVC_K_ENUM:
    case SVC_K_STRING:
        return t == OID_TEXT_ARRAY || t == OID_VARCHAR_ARRAY || t == OID_BPCHAR_ARRAY ||
               (k == SVC_K_STRING && t == OID_UUID_ARRAY) || t >= OID_FIRST_USER;
    case SVC_K_BYTES:
        return t == OID_BYTEA_ARRAY;
    case SVC_K_TIMESTAMP:
        return t == OID_TIMESTAMPTZ_ARRAY;
    default:
        return false;
    }
}

/* Checks column |c| (type |t|) against its leaf; sets c->json. */
static int check_type(struct map_col *c, unsigned t, char *err, size_t errlen)
{
    const ProtobufCFieldDescriptor *f = svc_path_leaf(&c->path);
    enum svc_kind k = svc_field_kind(f);
    bool ok;

    if (c->path.repeated_at >= 0) {
        c->gather = true;
        ok = k != SVC_K_MESSAGE && !svc_field_repeated(f) &&
             array_fits(k == SVC_K_WRAPPER ? svc_value_kind(f) : k, t);
    } else if (k == SVC_K_MESSAGE || svc_field_is_map(f)) {
        c->json = true;
        ok = t == OID_JSON || t == OID_JSONB;
    } else if (svc_field_repeated(f)) {
        ok = k != SVC_K_WRAPPER && array_fits(k, t);
    } else {
        ok = scalar_fits(k == SVC_K_WRAPPER ? svc_value_kind(f) : k, t);
    }
    if (!ok)
        snprintf(err, errlen, "column \"%s\" (type oid %u) does not fit field %s%s", c->name, t,
                 c->path.text,
                 c->gather ? " (through a repeated message: an array of scalars)" : "");
    return ok ? 0 : -EINVAL;
}

svc_map *svc_map_new(const ProtobufCMessageDescriptor *d, const db_result *r, char *err,
                     size_t errlen)
{
    int n = db_result_cols(r);
    svc_map *m = calloc(1, sizeof(*m) + (size_t)n * sizeof(m->cols[0]));

    if (m == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->d = d;
    for (int i = 0; i < n; i++, m->ncols++) {
        struct map_col *c = &m->cols[i];

        c->name = strdup(db_result_name(r, i));
        if (c->name == NULL) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        c->skip = c->name[0] == '_';
        if (c->skip)
            continue;
        if (svc_path_resolve(d, c->name, true, &c->path, err, errlen) < 0 ||
            check_type(c, db_result_type(r, i), err, errlen) < 0)
            goto fail;
        c->path.text = c->name;
    }
    return m;
fail:
    m->ncols++; /* free the name of the column that failed too */
    svc_map_free(m);
    return NULL;
}

void svc_map_free(svc_map *m)
{
    if (m == NULL)
        return;
    for (int i = 0; i < m->ncols; i++)
        free(m->cols[i].name);
    free(m);
}

bool svc_map_fits(const svc_map *m, const db_result *r)
{
    return m->ncols == db_result_cols(r);
}

int svc_map_column(const svc_map *m, const char *name)
{
    for (int i = 0; i < m->ncols; i++)
        if (strcmp(m->cols[i].name, name) == 0)
            return i;
    return -1;
}

/* The message reached from |m| through the singular steps [from, to) of
 * |p|, creating the nested messages on the way. */
static ProtobufCMessage *walk(const svc_path *p, unsigned from, unsigned to, ProtobufCMessage *m,
                              arena *a)
{
    for (unsigned i = from; i < to; i++) {
        const ProtobufCFieldDescriptor *f = p->steps[i];
        ProtobufCMessage **slot = svc_field_ptr(m, f);

        if (*slot == NULL) {
            const ProtobufCMessageDescriptor *d = f->descriptor;

            *slot = arena_alloc(a, d->sizeof_message);
            if (*slot == NULL)
                return NULL;
            d->message_init(*slot);
            svc_field_mark(m, f);
        }
        m = *slot;
    }
    return m;
}

/* The message that holds the leaf of |p| inside |out|. */
static ProtobufCMessage *leaf_parent(const svc_path *p, ProtobufCMessage *out, arena *a)
{
    return walk(p, 0, p->n - 1, out, a);
}

/* |n| elements of repeated message field |f| of |m|: made by the first
 * column that reaches them; every later one must bring as many. */
static int gathered_elems(const ProtobufCFieldDescriptor *f, ProtobufCMessage *m, size_t n,
                          arena *a)
{
    const ProtobufCMessageDescriptor *d = f->descriptor;
    size_t *count = svc_field_count(m, f);
    ProtobufCMessage **items;

    if (*count != 0 || n == 0)
        return *count == n ? 0 : -EINVAL;
    items = arena_alloc(a, n * sizeof(*items));
    if (items == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        items[i] = arena_alloc(a, d->sizeof_message);
        if (items[i] == NULL)
            return -ENOMEM;
        d->message_init(items[i]);
    }
    *(ProtobufCMessage ***)svc_field_ptr(m, f) = items;
    *count = n;
    return 0;
}

/* "x.y" through repeated message field x from an array column: element i
 * fills y of the i-th x (a NULL element leaves it unset). Children of one
 * row come back as one array per field (array_agg ... ORDER BY), which
 * reads far faster than the same rows as JSON. */
static int fill_gathered(const struct map_col *c, const char *text, ProtobufCMessage *out, arena *a)
{
    const svc_path *p = &c->path;
    unsigned r = (unsigned)p->repeated_at;
    const ProtobufCFieldDescriptor *rf = p->steps[r], *leaf = svc_path_leaf(p);
    ProtobufCMessage *m = walk(p, 0, r, out, a), **elems;
    char **items;
    size_t n;
    int rv;

    if (m == NULL)
        return -ENOMEM;
    rv = db_parse_text_array(text, a, &items, &n);
    if (rv == 0)
        rv = gathered_elems(rf, m, n, a);
    elems = *(ProtobufCMessage ***)svc_field_ptr(m, rf);
    for (size_t i = 0; rv == 0 && i < n; i++) {
        ProtobufCMessage *e = walk(p, r + 1, p->n - 1, elems[i], a);

        if (e == NULL)
            return -ENOMEM;
        if (items[i] == NULL)
            continue;
        rv = svc_value_parse(leaf, items[i], strlen(items[i]), svc_field_ptr(e, leaf), false, a);
        if (rv == 0)
            svc_field_mark(e, leaf);
    }
    return rv;
}

/* A repeated scalar from an array literal. */
static int fill_array(const ProtobufCFieldDescriptor *f, const char *text, ProtobufCMessage *m,
                      arena *a)
{
    size_t n, size = svc_field_size(f);
    char **items;
    char *elems;
    int rv = db_parse_text_array(text, a, &items, &n);

    if (rv < 0)
        return rv;
    elems = n > 0 ? arena_alloc(a, n * size) : NULL;
    if (n > 0 && elems == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (items[i] == NULL)
            return -EINVAL; /* a NULL element has no protobuf value */
        rv = svc_value_parse(f, items[i], strlen(items[i]), elems + i * size, false, a);
        if (rv < 0)
            return rv;
    }
    *(char **)svc_field_ptr(m, f) = elems;
    *svc_field_count(m, f) = n;
    return 0;
}

static int fill(const struct map_col *c, const char *text, size_t len, ProtobufCMessage *out,
                arena *a, char *err, size_t errlen)
{
    const ProtobufCFieldDescriptor *f = svc_path_leaf(&c->path);
    ProtobufCMessage *m;
    int rv;

    if (c->gather)
        return fill_gathered(c, text, out, a);
    m = leaf_parent(&c->path, out, a);
    if (m == NULL)
        return -ENOMEM;
    if (c->json)
        return svc_json_read_field(text, len, m, f, a, err, errlen);
    if (svc_field_repeated(f))
        rv = fill_array(f, text, m, a);
    else
        rv = svc_value_parse(f, text, len, svc_field_ptr(m, f), false, a);
    if (rv == 0)
        svc_field_mark(m, f);
    return rv;
}

int svc_map_row(const svc_map *m, const db_result *r, int row, ProtobufCMessage *out, arena *a,
                char *err, size_t errlen)
{
    err[0] = '\0';
    for (int i = 0; i < m->ncols; i++) {
        const struct map_col *c = &m->cols[i];
        const char *text;
        size_t len;
        int rv;

        if (c->skip || db_result_isnull(r, row, i))
            continue;
        text = db_result_text(r, row, i, &len);
        rv = fill(c, text, len, out, a, err, errlen);
        if (rv == -EINVAL && (err[0] == '\0' || !c->json))
            snprintf(err, errlen, "column \"%s\": value does not fit field %s", c->name,
                     c->path.text);
        if (rv < 0)
            return rv;
    }
    return 0;
}

ProtobufCMessage *svc_map_new_row(const svc_map *m, const db_result *r, int row, arena *a,
                                  int *rv, char *err, size_t errlen)
{
    ProtobufCMessage *msg = arena_alloc(a, m->d->sizeof_message);

    if (msg == NULL) {
        *rv = -ENOMEM;
        return NULL;
    }
    m->d->message_init(msg);
    *rv = svc_map_row(m, r, row, msg, a, err, errlen);
    return *rv == 0 ? msg : NULL;
}
