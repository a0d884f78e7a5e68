/* Byte budgets: how much memory one peer, and all peers together, may pin.
 * A budget has a limit and an optional parent; charging succeeds only if
 * every budget up the chain stays within its limit (then all are charged),
 * so one connection's calls cannot take more than the connection's share,
 * nor all connections more than the server's. Single-threaded (the loop). */
#ifndef ARBITER_UTIL_BUDGET_H
#define ARBITER_UTIL_BUDGET_H

#include <stdbool.h>
#include <stddef.h>

typedef struct budget {
    size_t used;
    size_t limit;          /* 0: no limit of its own */
    struct budget *parent; /* borrowed; NULL at the top */
} budget;

/* An empty budget on caller storage. */
void budget_init(budget *b, size_t limit, budget *parent);

/* Charges |n| bytes to |b| and its parents. Returns false (and charges
 * nothing) when any of them would go over its limit. |b| may be NULL. */
bool budget_charge(budget *b, size_t n) __attribute__((warn_unused_result));

/* Gives back |n| bytes charged before. |b| may be NULL. */
void budget_release(budget *b, size_t n);

/* Whether |b| or a parent is already at or over its limit. */
bool budget_exhausted(const budget *b);

#endif
