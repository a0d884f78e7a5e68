/* The method-table engine (svc_table.h): compiling entries at
 * registration, and serving a call from its entry. */
#include "services/svc_table.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/svc_bind.h"
#include "services/svc_map.h"
#include "services/svc_page.h"
#include "util/log.h"

#define PAGE_DEFAULT 50
#define PAGE_MAX 1000

/* A compiled statement. */
struct svc_cstmt {
    db_stmt db;        /* name owned, sql borrowed */
    svc_param *params; /* owned, db.nparams entries */
    const ProtobufCMessageDescriptor *row;
    svc_map *map; /* owned; built at the first result, rebuilt if the shape changes */
};

struct svc_entry {
    list_node link;      /* in env->entries */
    const svc_method *m; /* borrowed, static */
    svc_env *env;        /* borrowed */
    const ProtobufCMethodDescriptor *md;
    char *path; /* owned: "/pkg.Service/Method", for logs and page tokens */
    uint32_t page_hash;
    struct svc_cstmt stmts[SVC_MAX_STMTS];
    int nstmts;
    svc_rule *rules; /* owned */
    size_t nrules;
    const ProtobufCFieldDescriptor *reply_field; /* ROWS, PAGE, COUNT */
    const ProtobufCFieldDescriptor *next_token;  /* PAGE: reply's next_page_token */
    const ProtobufCFieldDescriptor *page_size;   /* PAGE: request's page_size */
    const ProtobufCFieldDescriptor *page_token;  /* PAGE: request's page_token */
    unsigned nkeys;
};

/* What a running call carries to its done callback. */
struct pending {
    rpc_call *call;
    svc_entry *e;
    const ProtobufCMessage *req; /* in the call's arena */
    svc_page_args page;
};

svc_env *svc_entry_env(const svc_entry *e)
{
    return e->env;
}

/* ---- compiling -------------------------------------------------------- */

static void entry_free(svc_entry *e)
{
    for (int i = 0; i < e->nstmts; i++) {
        free((char *)e->stmts[i].db.name);
        free(e->stmts[i].params);
        svc_map_free(e->stmts[i].map);
    }
    free(e->rules);
    free(e->path);
    free(e);
}

void svc_env_deinit(svc_env *env)
{
    while (!list_empty(&env->entries)) {
        svc_entry *e = container_of(env->entries.next, svc_entry, link);

        list_remove(&e->link);
        entry_free(e);
    }
}

static int compile_stmt(svc_entry *e, int i, char *err, size_t errlen)
{
    const svc_stmt *s = &e->m->stmts[i];
    struct svc_cstmt *c = &e->stmts[i];
    char name[64];
    int n = 0, rv;

    while (s->params != NULL && s->params[n] != NULL)
        n++;
    snprintf(name, sizeof(name), "%.40s_%u_%d", e->md->name, svc_page_hash(e->path), i);
    c->db.name = strdup(name);
    c->db.sql = s->sql;
    c->db.nparams = n;
    c->params = n > 0 ? calloc((size_t)n, sizeof(*c->params)) : NULL;
    c->row = s->row;
    if (c->db.name == NULL || (n > 0 && c->params == NULL))
        return -ENOMEM;
    for (int k = 0; k < n; k++) {
        rv = svc_param_compile(e->md->input, s->params[k], &c->params[k], err, errlen);
        if (rv < 0)
            return rv;
    }
    return 0;
}

static int compile_rules(svc_entry *e, char *err, size_t errlen)
{
    size_t n = 0;
    int rv;

    while (e->m->checks != NULL && e->m->checks[n].kind != SVC_CHECK_END)
        n++;
    e->rules = n > 0 ? calloc(n, sizeof(*e->rules)) : NULL;
    if (n > 0 && e->rules == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++, e->nrules++) {
        rv = svc_rule_compile(e->md->input, &e->m->checks[i], &e->rules[i], err, errlen);
        if (rv < 0)
            return rv;
    }
    return 0;
}

/* A field of |d| by name with the given kind and repetition, or NULL. */
static const ProtobufCFieldDescriptor *field_of(const ProtobufCMessageDescriptor *d,
                                                const char *name, int kind, bool repeated)
{
    const ProtobufCFieldDescriptor *f =
        name != NULL ? protobuf_c_message_descriptor_get_field_by_name(d, name) : NULL;

    if (f == NULL || svc_field_repeated(f) != repeated ||
        (kind >= 0 && svc_field_kind(f) != (enum svc_kind)kind))
        return NULL;
    return f;
}

/* The reply's shape: the field rows go to, the row type, paging fields. */
static int compile_reply(svc_entry *e, char *err, size_t errlen)
{
    const svc_method *m = e->m;
    const ProtobufCMessageDescriptor *out = e->md->output;
    struct svc_cstmt *last = e->nstmts > 0 ? &e->stmts[e->nstmts - 1] : NULL;
    enum svc_kind k;

    switch (m->reply) {
    case SVC_ROWS:
    case SVC_PAGE:
        e->reply_field = field_of(out, m->field, SVC_K_MESSAGE, true);
        if (e->reply_field == NULL) {
            snprintf(err, errlen, "%s has no repeated message field \"%s\"", out->name,
                     m->field ? m->field : "(none)");
            return -EINVAL;
        }
        if (last != NULL && last->row == NULL)
            last->row = e->reply_field->descriptor;
        break;
    case SVC_COUNT:
        e->reply_field =
            m->field ? protobuf_c_message_descriptor_get_field_by_name(out, m->field) : NULL;
        k = e->reply_field ? svc_field_kind(e->reply_field) : SVC_K_MESSAGE;
        if (k != SVC_K_INT && k != SVC_K_UINT && k != SVC_K_BOOL) {
            snprintf(err, errlen, "%s has no integer or bool field \"%s\"", out->name,
                     m->field ? m->field : "(none)");
            return -EINVAL;
        }
        break;
    default:
        if (last != NULL && last->row == NULL && m->reply == SVC_ROW)
            last->row = out;
        break;
    }
    if (m->reply != SVC_PAGE)
        return 0;
    e->page_size = field_of(e->md->input, "page_size", SVC_K_INT, false);
    e->page_token = field_of(e->md->input, "page_token", SVC_K_STRING, false);
    e->next_token = field_of(out, "next_page_token", SVC_K_STRING, false);
    while (m->keys != NULL && m->keys[e->nkeys] != NULL && e->nkeys < SVC_PAGE_MAX_KEYS)
        e->nkeys++;
    if (!e->page_size || !e->page_token || !e->next_token || e->nkeys == 0 ||
        m->keys[e->nkeys] != NULL) {
        snprintf(err, errlen, "a page needs page_size, page_token, next_page_token and 1-%d keys",
                 SVC_PAGE_MAX_KEYS);
        return -EINVAL;
    }
    return 0;
}

static unsigned rpc_flags(unsigned flags)
{
    return (flags & SVC_TENANT ? RPC_NEEDS_TENANT : 0) | (flags & SVC_ADMIN ? RPC_ADMIN_ONLY : 0) |
           (flags & SVC_STREAMING ? RPC_SERVER_STREAMING : 0) |
           (flags & SVC_READ_ONLY ? RPC_READ_ONLY : 0);
}

static void on_call(rpc_call *call, const ProtobufCMessage *req, void *data);

static int compile(svc_env *env, const ProtobufCServiceDescriptor *service, const svc_method *m,
                   char *err, size_t errlen)
{
    svc_entry *e = calloc(1, sizeof(*e));
    size_t n;
    int rv = -ENOMEM;

    if (e == NULL)
        return -ENOMEM;
    list_push(&env->entries, &e->link); /* freed with the env, also after a failure */
    e->m = m;
    e->env = env;
    e->md = protobuf_c_service_descriptor_get_method_by_name(service, m->name);
    if (e->md == NULL) {
        snprintf(err, errlen, "%s has no method %s", service->name, m->name);
        return -EINVAL;
    }
    n = strlen(service->name) + strlen(m->name) + 3;
    e->path = malloc(n);
    if (e->path == NULL)
        return -ENOMEM;
    snprintf(e->path, n, "/%s/%s", service->name, m->name);
    e->page_hash = svc_page_hash(e->path);
    while (e->nstmts < SVC_MAX_STMTS && m->stmts[e->nstmts].sql != NULL) {
        rv = compile_stmt(e, e->nstmts, err, errlen);
        e->nstmts++;
        if (rv < 0)
            return rv;
    }
    if (e->nstmts == 0 && m->handler == NULL) {
        snprintf(err, errlen, "neither statements nor a handler");
        return -EINVAL;
    }
    rv = compile_rules(e, err, errlen);
    if (rv == 0 && m->handler == NULL)
        rv = compile_reply(e, err, errlen);
    if (rv == 0)
        rv = rpc_methods_add(&env->rpc->methods, service, m->name, on_call, rpc_flags(m->flags), e);
    if (rv == -EEXIST)
        snprintf(err, errlen, "registered twice");
    return rv;
}

int svc_table_register(svc_env *env, const ProtobufCServiceDescriptor *service,
                       const svc_method *methods, size_t n)
{
    char err[256] = "";

    for (size_t i = 0; i < n; i++) {
        int rv = compile(env, service, &methods[i], err, sizeof(err));

        if (rv < 0) {
            log_error("method %s.%s: %s", service->name, methods[i].name,
                      rv == -ENOMEM ? "out of memory" : err);
            return rv;
        }
    }
    return 0;
}

/* ---- serving ------------------------------------------------------------ */

bool svc_entry_add(rpc_call *call, const svc_entry *e, int i, db_txn *t,
                   const ProtobufCMessage *req, const svc_page_args *page)
{
    const struct svc_cstmt *c = &e->stmts[i];

    db_txn_stmt(t, &c->db);
    for (int k = 0; k < c->db.nparams; k++) {
        int rv = svc_param_bind(t, &c->params[k], req, page, rpc_call_arena(call));

        if (rv == -EINVAL) {
            svc_invalid(call, c->params[k].path.text, "has no valid value");
            return false;
        }
        if (rv < 0) {
            svc_oom(call);
            return false;
        }
    }
    return true;
}

/* The tenant_id foreign key of any tenant-owned table. */
static bool is_tenant_fk(const char *constraint)
{
    size_t n = strlen(constraint);

    return n > 15 && strcmp(constraint + n - 15, "_tenant_id_fkey") == 0;
}

/* A constraint named after a request field ("query.priority"). */
static bool names_a_field(const svc_entry *e, const char *constraint)
{
    svc_path p;
    char err[8];

    return constraint[0] != '\0' &&
           svc_path_resolve(e->md->input, constraint, true, &p, err, sizeof(err)) == 0;
}

bool svc_entry_failed(rpc_call *call, const svc_entry *e, db_txn *t)
{
    rpc_status s = db_txn_status(t);
    const char *constraint = db_txn_constraint(t);

    if (s == RPC_OK)
        return false;
    for (const svc_violation *v = e->m->violations; v != NULL && v->constraint != NULL; v++) {
        if (strcmp(v->constraint, constraint) == 0) {
            rpc_call_finish(call, s, v->message);
            return true;
        }
    }
    for (const svc_error *x = e->m->errors; x != NULL && x->status != RPC_OK; x++) {
        if (x->status == s) {
            rpc_call_finish(call, s, x->message);
            return true;
        }
    }
    if (s == RPC_FAILED_PRECONDITION && is_tenant_fk(constraint))
        rpc_call_finishf(call, s, "tenant %s does not exist (create it with Admin.CreateTenant)",
                         rpc_call_tenant(call) ? rpc_call_tenant(call) : "");
    else if ((s == RPC_INVALID_ARGUMENT || s == RPC_FAILED_PRECONDITION) &&
             names_a_field(e, constraint))
        rpc_call_finishf(call, s, "%s: %s", constraint, db_txn_message(t));
    else
        rpc_call_finish(call, s, db_txn_message(t));
    return true;
}

/* The map of statement |i| for result |r|, built at the first result. */
static svc_map *stmt_map(svc_entry *e, int i, const db_result *r)
{
    struct svc_cstmt *c = &e->stmts[i];
    char err[256];

    if (c->map != NULL && svc_map_fits(c->map, r))
        return c->map;
    svc_map_free(c->map);
    c->map = c->row != NULL ? svc_map_new(c->row, r, err, sizeof(err)) : NULL;
    if (c->map == NULL)
        log_error("%s: statement %d: %s", e->path, i, c->row ? err : "rows are not mapped");
    for (unsigned k = 0; c->map != NULL && i == e->nstmts - 1 && k < e->nkeys; k++) {
        if (svc_map_column(c->map, e->m->keys[k]) < 0) {
            log_error("%s: the page key \"%s\" is not a result column", e->path, e->m->keys[k]);
            svc_map_free(c->map);
            c->map = NULL;
        }
    }
    return c->map;
}

static void map_failed(rpc_call *call, const svc_entry *e, int rv, const char *err)
{
    if (rv == -ENOMEM) {
        svc_oom(call);
        return;
    }
    log_error("%s: %s", e->path, err);
    rpc_call_finish(call, RPC_INTERNAL,
                    "the database's answer does not fit the reply (see the log)");
}

ProtobufCMessage *svc_entry_row(rpc_call *call, svc_entry *e, int i, const db_txn *t, int row)
{
    const db_result *r = db_txn_result(t, i);
    svc_map *map = stmt_map(e, i, r);
    ProtobufCMessage *msg;
    char err[256];
    int rv;

    if (map == NULL) {
        rpc_call_finish(call, RPC_INTERNAL, "the database's answer does not fit the reply");
        return NULL;
    }
    msg = svc_map_new_row(map, r, row, rpc_call_arena(call), &rv, err, sizeof(err));
    if (msg == NULL)
        map_failed(call, e, rv, err);
    return msg;
}

/* |n| rows of the last statement into the reply's repeated field. */
static bool rows_into(rpc_call *call, svc_entry *e, const db_txn *t, int n, ProtobufCMessage *out)
{
    ProtobufCMessage **items = svc_alloc_array(call, (size_t)n, sizeof(*items));

    if (n > 0 && items == NULL) {
        svc_oom(call);
        return false;
    }
    for (int i = 0; i < n; i++) {
        items[i] = svc_entry_row(call, e, e->nstmts - 1, t, i);
        if (items[i] == NULL)
            return false;
    }
    *(ProtobufCMessage ***)svc_field_ptr(out, e->reply_field) = items;
    *svc_field_count(out, e->reply_field) = (size_t)n;
    return true;
}

/* The next_page_token from row |row|'s ordering columns. */
static bool next_token(rpc_call *call, svc_entry *e, const db_txn *t, int row,
                       ProtobufCMessage *out)
{
    const db_result *r = db_txn_result(t, e->nstmts - 1);
    const svc_map *map = e->stmts[e->nstmts - 1].map;
    const char *keys[SVC_PAGE_MAX_KEYS];
    char *token;

    for (unsigned k = 0; k < e->nkeys; k++)
        keys[k] = db_result_text(r, row, svc_map_column(map, e->m->keys[k]), NULL);
    token =
        svc_page_token(rpc_call_arena(call), rpc_call_tenant(call), e->page_hash, keys, e->nkeys);
    if (token == NULL) {
        svc_oom(call);
        return false;
    }
    *(char **)svc_field_ptr(out, e->next_token) = token;
    return true;
}

static void set_count(ProtobufCMessage *out, const ProtobufCFieldDescriptor *f, int64_t n)
{
    void *p = svc_field_ptr(out, f);

    if (svc_field_kind(f) == SVC_K_BOOL)
        *(protobuf_c_boolean *)p = n > 0;
    else if (svc_field_size(f) == 8)
        *(int64_t *)p = n;
    else
        *(int32_t *)p = (int32_t)n;
}

/* Builds and sends the reply of a table entry. */
static void reply(struct pending *p, db_txn *t)
{
    svc_entry *e = p->e;
    rpc_call *call = p->call;
    const db_result *r = db_txn_result(t, e->nstmts - 1);
    ProtobufCMessage *out = NULL;
    int n = db_result_rows(r);

    if (e->m->reply == SVC_ROW) {
        if (n == 0) {
            rpc_call_finish(call, RPC_NOT_FOUND, e->m->not_found ? e->m->not_found : "not found");
            return;
        }
        out = svc_entry_row(call, e, e->nstmts - 1, t, 0);
        if (out != NULL)
            rpc_call_reply(call, out);
        return;
    }
    out = rpc_call_alloc(call, e->md->output->sizeof_message);
    if (out == NULL) {
        svc_oom(call);
        return;
    }
    e->md->output->message_init(out);
    if (e->m->reply == SVC_COUNT)
        set_count(out, e->reply_field, db_result_affected(r));
    if (e->m->reply == SVC_PAGE && n > p->page.size) {
        n = p->page.size;
        if (stmt_map(e, e->nstmts - 1, r) == NULL || !next_token(call, e, t, n - 1, out)) {
            if (!rpc_call_is_done(call))
                rpc_call_finish(call, RPC_INTERNAL, "cannot continue the listing");
            return;
        }
    }
    if ((e->m->reply == SVC_ROWS || e->m->reply == SVC_PAGE) && !rows_into(call, e, t, n, out))
        return;
    rpc_call_reply(call, out);
}

static void on_done(db_txn *t, void *data)
{
    struct pending *p = data;

    if (svc_entry_failed(p->call, p->e, t))
        return;
    if (p->e->m->committed != NULL)
        p->e->m->committed(p->call, p->e, p->req, t);
    reply(p, t);
}

/* page_size and page_token of a PAGE request. */
static bool page_args(rpc_call *call, const svc_entry *e, const ProtobufCMessage *req,
                      svc_page_args *out)
{
    int32_t def = e->m->page_default ? e->m->page_default : PAGE_DEFAULT;
    int32_t max = e->m->page_max ? e->m->page_max : PAGE_MAX;
    int32_t size = *(const int32_t *)svc_field_ptr(req, e->page_size);
    int rv;

    if (size < 0 || size > max) {
        svc_invalid(call, "page_size", "must be between 0 (default %d) and %d", (int)def, (int)max);
        return false;
    }
    out->size = size ? size : def;
    rv = svc_page_decode(rpc_call_arena(call), rpc_call_tenant(call),
                         *(char *const *)svc_field_ptr(req, e->page_token), e->page_hash, e->nkeys,
                         &out->pos);
    if (rv == -ENOMEM)
        svc_oom(call);
    else if (rv == -EPERM)
        svc_invalid(call, "page_token", "belongs to another query or tenant");
    else if (rv < 0)
        svc_invalid(call, "page_token", "is not a page token of this server");
    return rv == 0;
}

static void on_call(rpc_call *call, const ProtobufCMessage *req, void *data)
{
    svc_entry *e = data;
    struct pending *p;
    db_txn *t;

    if (!svc_rules_pass(call, e->rules, e->nrules, req))
        return;
    if (e->m->handler != NULL) {
        e->m->handler(call, req, e);
        return;
    }
    p = rpc_call_alloc(call, sizeof(*p));
    if (p == NULL) {
        svc_oom(call);
        return;
    }
    p->call = call;
    p->e = e;
    p->req = req;
    if (e->m->reply == SVC_PAGE && !page_args(call, e, req, &p->page))
        return;
    t = svc_txn_new(call, e->env);
    if (t == NULL)
        return;
    for (int i = 0; i < e->nstmts; i++)
        if (!svc_entry_add(call, e, i, t, req, &p->page))
            return;
    db_txn_run(t, on_done, p);
}
