/* The allocator of the request path: plain malloc, counted, with failure
 * injection for tests (libuv test-loop-oom.c, nghttp2 failmalloc_test.c).
 *
 * Objects that allocate on behalf of requests (calls, their arenas, the
 * request decoder, queued answers, the pool's per-connection bookkeeping)
 * keep a borrowed `alloc *` from the object that created them, so a test
 * can give one server an allocator that fails the n-th allocation and
 * check that every n ends in a clean gRPC status and no leak. A NULL
 * allocator is plain malloc. There is no global state. */
#ifndef ARBITER_UTIL_ALLOC_H
#define ARBITER_UTIL_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct alloc {
    uint64_t count;   /* allocations attempted so far */
    uint64_t fail_at; /* the allocation number that fails; 0 = none */
    uint64_t failed;  /* allocations refused so far */
    bool arena_too;   /* count each arena allocation as one (finer injection) */
} alloc;

/* Counts one allocation of an arena using |a| (only with arena_too) and
 * says whether it must fail. |a| may be NULL. */
bool alloc_arena_fails(alloc *a);

/* Like malloc/calloc/realloc, but the |a|->fail_at-th call (counting all
 * three) returns NULL. |a| may be NULL. */
void *alloc_malloc(alloc *a, size_t n);
void *alloc_calloc(alloc *a, size_t n, size_t size);
void *alloc_realloc(alloc *a, void *p, size_t n);

/* free(); here for symmetry, so call sites read alike. */
void alloc_free(alloc *a, void *p);

#endif
