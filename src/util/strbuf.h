/* A growable text buffer with a hard cap (curl's dynbuf idea): appends past
 * the cap or past available memory set |failed| and are dropped, so a
 * writer appends freely and checks once at the end. */
#ifndef ARBITER_UTIL_STRBUF_H
#define ARBITER_UTIL_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

#include "util/alloc.h"

typedef struct strbuf {
    char *p; /* owned; NUL-terminated once anything was appended */
    size_t len, cap, max;
    alloc *mem; /* borrowed (NULL: malloc) */
    bool failed;
} strbuf;

/* An empty buffer on caller storage that grows up to |max| bytes. */
void strbuf_init(strbuf *b, size_t max, alloc *mem);
void strbuf_deinit(strbuf *b);

void strbuf_add(strbuf *b, const char *s, size_t n);
void strbuf_puts(strbuf *b, const char *s);
void strbuf_putc(strbuf *b, char c);
void strbuf_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Hands the text over (caller frees with alloc_free(mem, ...)); NULL when
 * an append failed. The buffer is empty afterwards. */
char *strbuf_take(strbuf *b, size_t *len);

#endif
