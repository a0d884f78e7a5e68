/* A bump allocator for one call: the request, the response and everything a
 * handler builds for them live here and are freed together when the stream
 * closes. protobuf-c unpacks into it through arena_protobuf_allocator(), so
 * nothing decoded needs its own free. */
#ifndef ARBITER_UTIL_ARENA_H
#define ARBITER_UTIL_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include "util/alloc.h"
#include "util/budget.h"

struct arena_block;

typedef struct arena {
    struct arena_block *head; /* owned: singly linked list of blocks */
    size_t used;              /* bytes handed out, for statistics */
    size_t limit;             /* hard cap on total bytes; 0 = none */
    alloc *mem;               /* borrowed: where blocks come from (NULL: malloc) */
    budget *budget;           /* borrowed: charged for every block (NULL: none) */
    size_t block_bytes;       /* bytes of all blocks, charged to |budget| */
    bool refused;             /* an allocation failed for the limit or the budget */
    ProtobufCAllocator pb;    /* allocator that points back at this arena */
} arena;

/* Initialises an empty arena on caller storage. |limit| caps the total
 * bytes it may hand out (0 for no cap); blocks come from |mem| (NULL:
 * malloc). Allocates nothing. */
void arena_init(arena *a, size_t limit, alloc *mem);

/* Charges every block from now on to |b| (and its parents); an allocation
 * that |b| refuses fails like one over the limit. Set it before the first
 * allocation. */
void arena_set_budget(arena *a, budget *b);

/* Frees every block (giving the budget back). The arena may be reused
 * after arena_init(). */
void arena_deinit(arena *a);

/* Returns |n| bytes aligned for any type, or NULL when out of memory, over
 * the limit or refused by the budget (then |refused| is set, so callers can
 * tell "too big" from "no memory"). Memory is zeroed. */
void *arena_alloc(arena *a, size_t n);

/* Copies |n| bytes of |s| and a NUL. Returns NULL on failure. */
char *arena_strndup(arena *a, const char *s, size_t n);
char *arena_strdup(arena *a, const char *s);

/* printf into the arena. Returns NULL on failure. */
char *arena_printf(arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The protobuf-c allocator backed by this arena (free is a no-op). */
ProtobufCAllocator *arena_protobuf_allocator(arena *a);

#endif
