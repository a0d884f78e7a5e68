/* The plumbing every service handler shares, so that a handler only
 * validates, builds its statements and maps rows:
 *
 *   - field validation that answers INVALID_ARGUMENT naming the field;
 *   - page sizes and opaque keyset page tokens bound to query and tenant;
 *   - a row cursor that reads a result row column by column into arena
 *     memory (text, numbers, timestamps, text arrays);
 *   - google.protobuf.Timestamp values;
 *   - the boilerplate "txn failed? else map row 0 and reply".
 *
 * Every validator has the same shape: it returns true when the value is
 * acceptable; otherwise it finishes |call| with INVALID_ARGUMENT and the
 * message "<field>: <what is wrong>", returns false, and the handler just
 * returns:
 *
 *     if (!svc_check_len(call, "agent.name", a->name, 1, 255))
 *         return;
 *
 * All memory comes from the call's arena.
 *
 * The shape of a service (src/services/agent_registry.c is the worked
 * example the next services copy):
 *
 *   1. SQL: every statement is a `static const db_stmt` with explicit casts
 *      on its parameters ($1::uuid, $2::text[], $3::float8); tenant-owned
 *      tables default tenant_id from app.current_tenant and are protected
 *      by forced RLS, so no statement mentions the tenant. A read shared by
 *      several methods (the entity as the API returns it) is one
 *      security_invoker view plus one column list macro.
 *   2. Handler: validate with svc_check_*() (each names the field), then
 *      db_txn_new(svc_pool(call), call), db_txn_stmt() + db_param_*() per
 *      statement, db_txn_run(). A write that answers the entity queues the
 *      shared SELECT after the write: same transaction, one round trip, and
 *      the SELECT sees the write. DB_STMT_ONE_ROW turns "no row" into
 *      NOT_FOUND (another tenant's row is no row).
 *   3. Done callback: `if (db_txn_failed(call, t)) return;` (or map a
 *      specific status to a better message first), build the response with
 *      an svc_row cursor per row in the column list's order, then
 *      rpc_call_reply().
 *   4. Lists: svc_page_size() + svc_page_token_decode(), fetch page + 1
 *      rows, and svc_page_token_encode() the last row's keyset position
 *      when there is more. Add a kind to enum svc_page_kind per listing.
 *   5. Register every method in one table with RPC_NEEDS_TENANT.
 */
#ifndef ARBITER_SERVICES_SVC_UTIL_H
#define ARBITER_SERVICES_SVC_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "rpc/call.h"
#include "timestamp.pb-c.h"

/* ---- validation ------------------------------------------------------ */

/* Finishes |call| with INVALID_ARGUMENT "<field>: <printf message>". */
void svc_invalid(rpc_call *call, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* |value| (NULL counts as "") has between |min| and |max| characters
 * (Unicode code points; the value must be valid UTF-8, which protobuf-c
 * already guarantees for string fields). */
bool svc_check_len(rpc_call *call, const char *field, const char *value, size_t min, size_t max);

/* |value| is a UUID in the canonical 8-4-4-4-12 hex form (either case). */
bool svc_check_uuid(rpc_call *call, const char *field, const char *value);

/* |value| is empty or a canonical UUID. */
bool svc_check_uuid_opt(rpc_call *call, const char *field, const char *value);

/* |value| is a finite number in [|lo|, |hi|]. */
bool svc_check_range(rpc_call *call, const char *field, double value, double lo, double hi);

/* |n| <= |max_items| strings, each of 1..|max_len| characters. */
bool svc_check_strings(rpc_call *call, const char *field, char *const *items, size_t n,
                       size_t max_items, size_t max_len);

/* A tenant id as x-tenant-id accepts it: 1-64 chars of [A-Za-z0-9_.:-]. */
bool svc_check_tenant_id(rpc_call *call, const char *field, const char *value);

/* Page size: 0 means |def|, 1..|max| is taken as is, anything else is
 * INVALID_ARGUMENT. Stores the result in *|out| on success. */
bool svc_page_size(rpc_call *call, const char *field, int32_t requested, int32_t def, int32_t max,
                   int32_t *out);

/* ---- page tokens ----------------------------------------------------- */

/* What a token continues; a token of one kind is rejected by another. */
enum svc_page_kind {
    SVC_PAGE_AGENTS = 1,  /* AgentRegistry.ListAgents */
    SVC_PAGE_TENANTS = 2, /* Admin.ListTenants */
};

/* Largest key a token carries. */
#define SVC_PAGE_KEY_MAX 128

/* Encodes an opaque page token: a version byte, |kind|, a hash of the
 * call's tenant (none: the empty string) and the keyset position |key|
 * (|len| <= SVC_PAGE_KEY_MAX bytes), in base64. The token is not secret:
 * it only lets a client continue a listing. Returns the token in arena
 * memory, or NULL when out of memory. */
char *svc_page_token_encode(rpc_call *call, enum svc_page_kind kind, const void *key, size_t len);

/* Decodes |token| (from request field |field|). An empty token means "the
 * first page": returns true with *|len| = 0. A token that is malformed, of
 * another kind or of another tenant finishes the call with INVALID_ARGUMENT
 * and returns false. On success the key is copied into |key| (|cap| >=
 * SVC_PAGE_KEY_MAX) and its length stored in *|len|. */
bool svc_page_token_decode(rpc_call *call, const char *field, const char *token,
                           enum svc_page_kind kind, void *key, size_t cap, size_t *len);

/* ---- rows ------------------------------------------------------------ */

/* A cursor over one result row: each read takes the next column. A read
 * that fails (out of memory, or a column that does not parse) sets |oom|
 * or |bad|; check both once at the end with svc_row_ok(). */
typedef struct svc_row {
    const db_txn *t; /* borrowed */
    arena *a;        /* borrowed: the call's arena */
    int stmt, row, col;
    bool oom; /* a read ran out of memory */
    bool bad; /* a column did not parse */
} svc_row;

/* A cursor at column 0 of row |row| of statement |stmt|. */
svc_row svc_row_at(rpc_call *call, const db_txn *t, int stmt, int row);

char *svc_row_text(svc_row *r); /* arena copy; "" for NULL */
int64_t svc_row_int64(svc_row *r);
int32_t svc_row_int32(svc_row *r); /* clamped to the int32 range */
double svc_row_double(svc_row *r);
bool svc_row_bool(svc_row *r);
/* A timestamptz column as a new Timestamp message (NULL for SQL NULL). */
Google__Protobuf__Timestamp *svc_row_timestamp(svc_row *r);
/* The same column as microseconds since the epoch (keyset positions). */
int64_t svc_row_micros(svc_row *r);
/* A text[] column; stores the count in *|n|. */
char **svc_row_text_array(svc_row *r, size_t *n);
/* Skips a column. */
void svc_row_skip(svc_row *r);

/* True if every read succeeded; otherwise finishes |call| with
 * RESOURCE_EXHAUSTED (out of memory) or INTERNAL (unparsable column) and
 * returns false. */
bool svc_row_ok(rpc_call *call, const svc_row *r);

/* ---- messages -------------------------------------------------------- */

/* A new Timestamp message in the arena; NULL when out of memory. */
Google__Protobuf__Timestamp *svc_timestamp_new(rpc_call *call, int64_t seconds, int32_t nanos);

/* Allocates |n| zeroed pointers (for repeated message fields) in the
 * arena; NULL when out of memory (and |n| > 0). */
void *svc_alloc_array(rpc_call *call, size_t n, size_t size);

/* Finishes |call| with RESOURCE_EXHAUSTED "out of memory". */
void svc_oom(rpc_call *call);

/* The server's pool for the call, for db_txn_new(). */
struct db_pool *svc_pool(rpc_call *call);

#endif
