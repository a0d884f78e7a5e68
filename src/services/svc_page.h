/* Keyset page tokens, once for every LIST method: an opaque token carries
 * the ordering columns' values of the last row of a page (as PostgreSQL's
 * text), bound to the method and the tenant, so a token of another listing
 * or another tenant is a clear INVALID_ARGUMENT instead of a confusing
 * page. The token is not secret: the database enforces isolation. */
#ifndef ARBITER_SERVICES_SVC_PAGE_H
#define ARBITER_SERVICES_SVC_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/arena.h"

#define SVC_PAGE_MAX_KEYS 4
#define SVC_PAGE_KEY_MAX 256 /* bytes of one key value */

/* A decoded position: the key values (arena strings), or none for the
 * first page. */
typedef struct svc_page_pos {
    const char *keys[SVC_PAGE_MAX_KEYS];
    unsigned nkeys; /* 0: the first page */
} svc_page_pos;

/* Encodes the position |keys| (|n| values) of the method whose path hashes
 * to |method| for |tenant| (NULL: none). Returns the token in |a|, or NULL
 * when out of memory or a key is too long. */
char *svc_page_token(arena *a, const char *tenant, uint32_t method, const char *const *keys,
                     unsigned n);

/* Decodes |token| into |out| (keys in |a|). An empty token is the first
 * page. Returns 0, -EINVAL for a malformed token or one with another number
 * of keys than |nkeys|, -EPERM for a token of another method or tenant, or
 * -ENOMEM. */
int svc_page_decode(arena *a, const char *tenant, const char *token, uint32_t method,
                    unsigned nkeys, svc_page_pos *out);

/* FNV-1a over a string, 32 bits: identifies a method in its tokens. */
uint32_t svc_page_hash(const char *s);

#endif
