#include "util/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void strbuf_init(strbuf *b, size_t max, alloc *mem)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
    b->mem = mem;
}

void strbuf_deinit(strbuf *b)
{
    alloc_free(b->mem, b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Room for |n| more bytes and a NUL. */
static bool reserve(strbuf *b, size_t n)
{
    size_t cap;
    char *p;

    if (b->failed)
        return false;
    if (b->cap > b->len && b->cap - b->len > n)
        return true; /* room for n bytes and the NUL */
    if (b->len >= b->max || n >= b->max - b->len) {
        b->failed = true;
        return false;
    }
    for (cap = b->cap ? b->cap : 256; cap < b->len + n + 1; cap *= 2) {
    }
    if (cap > b->max)
        cap = b->max;
    p = alloc_realloc(b->mem, b->p, cap);
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void strbuf_add(strbuf *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void strbuf_puts(strbuf *b, const char *s)
{
    strbuf_add(b, s, strlen(s));
}

void strbuf_putc(strbuf *b, char c)
{
    strbuf_add(b, &c, 1);
}

void strbuf_printf(strbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if (!reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *strbuf_take(strbuf *b, size_t *len)
{
    char *p = b->failed ? NULL : b->p;

    if (p == NULL && !b->failed && reserve(b, 0)) {
        b->p[0] = '\0';
        p = b->p;
    }
    if (b->failed)
        strbuf_deinit(b);
    if (len != NULL)
        *len = p != NULL ? b->len : 0;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}
