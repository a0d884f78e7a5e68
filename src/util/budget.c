#include "util/budget.h"

void budget_init(budget *b, size_t limit, budget *parent)
{
    b->used = 0;
    b->limit = limit;
    b->parent = parent;
}

static bool fits(const budget *b, size_t n)
{
    for (; b != NULL; b = b->parent)
        if (b->limit != 0 && (n > b->limit || b->used > b->limit - n))
            return false;
    return true;
}

bool budget_charge(budget *b, size_t n)
{
    if (!fits(b, n))
        return false;
    for (; b != NULL; b = b->parent)
        b->used += n;
    return true;
}

void budget_release(budget *b, size_t n)
{
    for (; b != NULL; b = b->parent)
        b->used -= n < b->used ? n : b->used;
}

bool budget_exhausted(const budget *b)
{
    for (; b != NULL; b = b->parent)
        if (b->limit != 0 && b->used >= b->limit)
            return true;
    return false;
}
