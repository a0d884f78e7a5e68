#include "rpc/method.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rpc_methods_init(rpc_methods *t)
{
    memset(t, 0, sizeof(*t));
}

void rpc_methods_deinit(rpc_methods *t)
{
    for (size_t i = 0; i < t->len; i++)
        free(t->items[i].path);
    free(t->items);
    memset(t, 0, sizeof(*t));
}

/* Compares the path bytes (|p|, |n|) with a NUL-terminated path, ordering
 * like strcmp. */
static int path_cmp(const char *p, size_t n, const char *path)
{
    size_t m = strlen(path);
    int c = n && m ? memcmp(p, path, n < m ? n : m) : 0;

    if (c != 0)
        return c;
    return n < m ? -1 : n > m;
}

static int item_cmp(const void *a, const void *b)
{
    const rpc_method *x = a, *y = b;
    return strcmp(x->path, y->path);
}

static const rpc_method *find_linear(const rpc_methods *t, const char *path, size_t len)
{
    for (size_t i = 0; i < t->len; i++)
        if (path_cmp(path, len, t->items[i].path) == 0)
            return &t->items[i];
    return NULL;
}

static char *make_path(const ProtobufCServiceDescriptor *service, const char *method_name)
{
    size_t n = strlen(service->name) + strlen(method_name) + 3;
    char *path = malloc(n);

    if (!path)
        return NULL;
    int w = snprintf(path, n, "/%s/%s", service->name, method_name);
    if (w < 0 || (size_t)w >= n) {
        free(path);
        return NULL;
    }
    return path;
}

static int reserve(rpc_methods *t)
{
    if (t->len < t->cap)
        return 0;
    size_t cap = t->cap ? t->cap * 2 : 16;
    rpc_method *items = realloc(t->items, cap * sizeof(*items));
    if (!items)
        return -ENOMEM;
    t->items = items;
    t->cap = cap;
    return 0;
}

int rpc_methods_add(rpc_methods *t, const ProtobufCServiceDescriptor *service,
                    const char *method_name, rpc_handler_fn handler, unsigned flags, void *data)
{
    const ProtobufCMethodDescriptor *md =
        protobuf_c_service_descriptor_get_method_by_name(service, method_name);
    char *path = NULL;
    int rv;

    if (!md)
        return -ENOENT;
    path = make_path(service, md->name);
    if (!path)
        return -ENOMEM;
    if (find_linear(t, path, strlen(path))) {
        rv = -EEXIST;
        goto fail_path;
    }
    rv = reserve(t);
    if (rv < 0)
        goto fail_path;
    t->items[t->len++] = (rpc_method){
        .path = path,
        .service = service,
        .method = md,
        .handler = handler,
        .flags = flags,
        .data = data,
    };
    t->sorted = 0;
    return 0;

fail_path:
    free(path);
    return rv;
}

const rpc_method *rpc_methods_find(rpc_methods *t, const char *path, size_t len)
{
    size_t lo = 0, hi = t->len;

    if (!t->sorted) {
        if (t->len > 1)
            qsort(t->items, t->len, sizeof(*t->items), item_cmp);
        t->sorted = 1;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = path_cmp(path, len, t->items[mid].path);
        if (c == 0)
            return &t->items[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}
