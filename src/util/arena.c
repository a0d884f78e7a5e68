#include "util/arena.h"

#include <stdalign.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK_MIN 4096

struct arena_block {
    struct arena_block *next;
    size_t size; /* usable bytes in data[] */
    size_t used;
    alignas(max_align_t) unsigned char data[];
};

void arena_init(arena *a, size_t limit, alloc *mem)
{
    memset(a, 0, sizeof(*a));
    a->limit = limit;
    a->mem = mem;
}

void arena_set_budget(arena *a, budget *b)
{
    a->budget = b;
}

void arena_deinit(arena *a)
{
    struct arena_block *b = a->head;

    budget_release(a->budget, a->block_bytes);
    a->block_bytes = 0;
    while (b) {
        struct arena_block *next = b->next;
        alloc_free(a->mem, b);
        b = next;
    }
    a->head = NULL;
    a->used = 0;
}

static size_t align_up(size_t n)
{
    const size_t al = alignof(max_align_t);
    return (n + al - 1) & ~(al - 1);
}

void *arena_alloc(arena *a, size_t n)
{
    if (n == 0)
        n = 1;
    if (n > SIZE_MAX / 2)
        return NULL;
    n = align_up(n);
    if (a->limit && a->used + n > a->limit) {
        a->refused = true;
        return NULL;
    }
    if (alloc_arena_fails(a->mem))
        return NULL;

    struct arena_block *b = a->head;
    if (!b || b->size - b->used < n) {
        size_t size = n > ARENA_BLOCK_MIN ? n : ARENA_BLOCK_MIN;
        /* Grow geometrically so a big response costs few mallocs. */
        if (b && b->size * 2 > size && b->size < (1u << 20))
            size = b->size * 2;
        if (!budget_charge(a->budget, sizeof(struct arena_block) + size)) {
            a->refused = true;
            return NULL;
        }
        struct arena_block *nb = alloc_malloc(a->mem, sizeof(*nb) + size);
        if (!nb) {
            budget_release(a->budget, sizeof(struct arena_block) + size);
            return NULL;
        }
        a->block_bytes += sizeof(*nb) + size;
        nb->size = size;
        nb->used = 0;
        /* A block too big to be the bump target goes behind the head. */
        if (b && n >= ARENA_BLOCK_MIN && b->size - b->used > 256) {
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            a->head = nb;
        }
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += n;
    a->used += n;
    memset(p, 0, n);
    return p;
}

char *arena_strndup(arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_strdup(arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

char *arena_printf(arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *p = arena_alloc(a, (size_t)n + 1);
    if (!p)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

static void *pb_alloc(void *data, size_t size)
{
    return arena_alloc(data, size);
}

static void pb_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr; /* freed with the arena */
}

ProtobufCAllocator *arena_protobuf_allocator(arena *a)
{
    a->pb.alloc = pb_alloc;
    a->pb.free = pb_free;
    a->pb.allocator_data = a;
    return &a->pb;
}
