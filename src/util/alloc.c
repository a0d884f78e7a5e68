#include "util/alloc.h"

#include <stdlib.h>

/* Counts one allocation; true when it must fail. */
static bool injected_failure(alloc *a)
{
    if (a == NULL)
        return false;
    if (++a->count != a->fail_at)
        return false;
    a->failed++;
    return true;
}

void *alloc_malloc(alloc *a, size_t n)
{
    return injected_failure(a) ? NULL : malloc(n);
}

void *alloc_calloc(alloc *a, size_t n, size_t size)
{
    return injected_failure(a) ? NULL : calloc(n, size);
}

void *alloc_realloc(alloc *a, void *p, size_t n)
{
    return injected_failure(a) ? NULL : realloc(p, n);
}

bool alloc_arena_fails(alloc *a)
{
    return a != NULL && a->arena_too && injected_failure(a);
}

void alloc_free(alloc *a, void *p)
{
    (void)a;
    free(p);
}
