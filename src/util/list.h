/* A minimal intrusive doubly linked list (the Linux/libuv QUEUE idea
 * without macros that inject fields): embed a list_node in the element and
 * recover the element with container_of. A head is a node that points at
 * itself when the list is empty. */
#ifndef ARBITER_UTIL_LIST_H
#define ARBITER_UTIL_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct list_node {
    struct list_node *prev, *next;
} list_node;

#ifndef container_of
#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))
#endif

/* Makes |h| an empty list (or marks a node as unlinked). */
static inline void list_init(list_node *h)
{
    h->prev = h;
    h->next = h;
}

static inline bool list_empty(const list_node *h)
{
    return h->next == h;
}

/* Appends |n| at the tail of |h|. */
static inline void list_push(list_node *h, list_node *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}

/* Inserts |n| at the head of |h|. */
static inline void list_push_front(list_node *h, list_node *n)
{
    n->next = h->next;
    n->prev = h;
    h->next->prev = n;
    h->next = n;
}

/* Unlinks |n| and leaves it self-linked, so a second remove is harmless. */
static inline void list_remove(list_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    list_init(n);
}

#endif
