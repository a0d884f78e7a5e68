/* Request header checks and the call's custom metadata list.
 *
 * Every validator takes the wire bytes as (ptr, len): header names and
 * values from nghttp2 are not NUL-terminated and may contain NULs, so
 * nothing here calls str* on them (STYLE.md rule 21). All validators are
 * pure, allocate nothing and accept NULL only with len 0.
 */
#ifndef ARBITER_RPC_METADATA_H
#define ARBITER_RPC_METADATA_H

#include <stdbool.h>
#include <stddef.h>

#include "util/arena.h"

/* Limits from DESIGN.md / PROTOCOL-HTTP2.md. */
#define RPC_TENANT_MAX_LEN 64
#define RPC_METADATA_ENTRY_OVERHEAD 32 /* per field, as SETTINGS_MAX_HEADER_LIST_SIZE */

/* Custom metadata name: one or more of [0-9a-z_.-]. (Upper case never
 * reaches us: HTTP/2 requires lower-case names.) */
bool rpc_metadata_name_valid(const char *name, size_t len);

/* ASCII metadata value: zero or more bytes of %x20-%x7E. */
bool rpc_metadata_value_valid(const char *value, size_t len);

/* True when |name| ends in "-bin" (the value is base64 on the wire). */
bool rpc_metadata_name_is_bin(const char *name, size_t len);

/* True when |name| starts with "grpc-" (reserved for the protocol). */
bool rpc_metadata_name_is_reserved(const char *name, size_t len);

/* x-tenant-id: 1-64 bytes of [A-Za-z0-9_.:-]. */
bool rpc_tenant_valid(const char *s, size_t len);

/* content-type is gRPC: "application/grpc" (ASCII case-insensitive, as media
 * types are) either alone or directly followed by '+' (a subtype such as
 * "+proto") or ';' (parameters). Anything else, e.g. "application/grpc-web"
 * or "application/grpcx", is not gRPC: answer HTTP 415. */
bool rpc_content_type_is_grpc(const char *value, size_t len);

/* The te header lists the token "trailers" (case-insensitive; elements
 * separated by ',' with optional whitespace; ";params" ignored). */
bool rpc_te_has_trailers(const char *value, size_t len);

/* :path has the shape "/Service/Method": a leading '/', a non-empty
 * service, one '/', a non-empty method, no further '/', and only visible
 * ASCII (%x21-%x7E). Does not look the method up (see rpc/method.h). */
bool rpc_path_valid(const char *path, size_t len);

/* One metadata entry. Both strings live in the list's arena and are
 * NUL-terminated (not counted in the lengths). For "-bin" names the value
 * holds the decoded bytes. */
typedef struct rpc_metadata_entry {
    const char *name; /* borrowed from the arena */
    size_t name_len;
    const char *value; /* borrowed from the arena */
    size_t value_len;
} rpc_metadata_entry;

/* The custom metadata of one call, stored in the call's arena (nothing to
 * free). Bounded by an entry count and a byte budget counted like
 * SETTINGS_MAX_HEADER_LIST_SIZE (name + wire value + 32 per field). */
typedef struct rpc_metadata {
    arena *arena;              /* borrowed: owns all memory below */
    rpc_metadata_entry *items; /* arena; grows by doubling up to max_entries */
    size_t len, cap;
    size_t max_entries;
    size_t bytes, max_bytes;
} rpc_metadata;

/* Initialises an empty list on caller storage whose memory comes from |a|,
 * holding at most |max_entries| distinct names and |max_bytes| bytes (0 for
 * no byte cap). Allocates nothing. */
void rpc_metadata_init(rpc_metadata *m, arena *a, size_t max_entries, size_t max_bytes);

/* Adds the header (|name|, |name_len|) = (|value|, |value_len|) as it came off
 * the wire. The name must pass rpc_metadata_name_valid(); the value must pass
 * rpc_metadata_value_valid(), or for "-bin" names be valid base64 (it is
 * decoded here). A name that is already present is merged, as HTTP allows:
 * ASCII values are joined with ",", binary values concatenated. The caller
 * filters reserved and transport headers (":path", "te", "grpc-*", ...)
 * before calling this. Returns 0, -EINVAL for a bad name or value, -E2BIG
 * when the entry or byte limit would be exceeded, or -ENOMEM when the arena
 * is exhausted. The list is unchanged on failure. */
int rpc_metadata_add(rpc_metadata *m, const char *name, size_t name_len, const char *value,
                     size_t value_len) __attribute__((warn_unused_result));

/* The value of (|name|, |name_len|) or NULL when absent; *|value_len| (if
 * |value_len| is not NULL) receives its length. Borrowed from the arena. */
const char *rpc_metadata_get(const rpc_metadata *m, const char *name, size_t name_len,
                             size_t *value_len);

#endif
