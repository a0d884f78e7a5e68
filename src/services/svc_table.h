/* Methods as data. A service is a table of svc_method entries; each gives
 * the method's name, flags, validation rules, statements (SQL and the
 * request fields bound as $1..$n, by path) and the kind of reply. The
 * engine resolves every path against the protobuf-c descriptors at
 * registration (a wrong path or type fails start-up), then serves each
 * call the same way: check the rules, bind, run every statement in one
 * transaction and one round trip, map the last statement's rows to the
 * reply by column name (svc_map.h), answer.
 *
 *     {
 *         .name = "GetAgent",
 *         .flags = SVC_TENANT | SVC_READ_ONLY,
 *         .checks = SVC_CHECKS(SVC_UUID("id")),
 *         .stmts = {{"SELECT " AGENT_COLS " FROM agent_view WHERE id = $1::uuid",
 *                    SVC_PARAMS("id")}},
 *         .not_found = "agent not found",
 *     },
 *
 * Replies:
 *   SVC_ROW    row 0 is the reply message; no row is NOT_FOUND (.not_found)
 *   SVC_ROWS   every row is one element of the repeated .field
 *   SVC_COUNT  the rows the last statement touched go to .field (integer, or
 *              bool: "any")
 *   SVC_PAGE   a keyset page: rows to .field, the request's page_size and
 *              page_token, the reply's next_page_token; the statement takes
 *              "@limit" and "@after.N" parameters and orders by .keys
 *              (result columns; see svc_bind.h and svc_page.h)
 *   SVC_EMPTY  the reply message as it is (for writes that answer nothing)
 *
 * Errors: the database's status (DESIGN.md's table) with a client-safe
 * message; .violations overrides the message per violated constraint, then
 * .errors per status; a violated CHECK or NOT NULL constraint named after a
 * request field ("query.priority") answers INVALID_ARGUMENT naming that
 * field, a violated foreign key so named FAILED_PRECONDITION naming it
 * ("content_id: a referenced row does not exist"); a missing tenant (the
 * tenant_id foreign key) says how to create it.
 *
 * Hand-written handlers (.handler) are registered the same way: the
 * engine checks the flags and rules, then calls the handler with the
 * compiled entry as |data|; its statements are compiled too and the
 * helpers below run and map them. */
#ifndef ARBITER_SERVICES_SVC_TABLE_H
#define ARBITER_SERVICES_SVC_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "db/db.h"
#include "rpc/call.h"
#include "rpc/method.h"
#include "services/svc.h"
#include "services/svc_check.h"

#define SVC_MAX_STMTS 6

enum svc_flags {
    SVC_TENANT = 1 << 0,    /* x-tenant-id required */
    SVC_ADMIN = 1 << 1,     /* the server's uid or root only */
    SVC_READ_ONLY = 1 << 2, /* changes nothing */
    SVC_STREAMING = 1 << 3, /* server streaming (hand-written) */
};

enum svc_reply { SVC_ROW = 0, SVC_ROWS, SVC_COUNT, SVC_PAGE, SVC_EMPTY };

/* One statement: SQL and the request paths bound as $1..$n. |row| names
 * the message its rows map to when a hand-written handler maps them (NULL:
 * the reply's). */
typedef struct svc_stmt {
    const char *sql;
    const char *const *params;
    const ProtobufCMessageDescriptor *row;
} svc_stmt;

#define SVC_PARAMS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define SVC_KEYS(...) SVC_PARAMS(__VA_ARGS__)

/* A message for a status, instead of the database's generic one. */
typedef struct svc_error {
    rpc_status status;
    const char *message;
} svc_error;

#define SVC_ERRORS(...) ((const svc_error[]){__VA_ARGS__, {RPC_OK, NULL}})

/* A message for one violated constraint, whatever its status: a CHECK or
 * key by its name, or the name a SQL function raised with (RAISE ... USING
 * CONSTRAINT = ...), when one status has several causes. */
typedef struct svc_violation {
    const char *constraint;
    const char *message;
} svc_violation;

#define SVC_VIOLATIONS(...) ((const svc_violation[]){__VA_ARGS__, {NULL, NULL}})

typedef struct svc_entry svc_entry;

typedef struct svc_method {
    const char *name;
    unsigned flags;
    const svc_check *checks;
    svc_stmt stmts[SVC_MAX_STMTS];
    enum svc_reply reply;
    const char *field;
    const char *const *keys;
    int32_t page_default, page_max; /* 0: 50 and 1000 */
    const char *not_found;
    const svc_error *errors;
    const svc_violation *violations; /* before .errors */
    rpc_handler_fn handler;
    /* Runs once the transaction of a table entry committed, before the
     * reply is built, with the request and the results readable: for what
     * the server keeps or does beside the database (a cache that must not
     * answer from before the change once the caller has its answer,
     * wake-ups, hints to other servers). NULL: nothing. */
    void (*committed)(rpc_call *call, const svc_entry *e, const ProtobufCMessage *req,
                      const db_txn *t);
} svc_method;

/* Compiles |n| methods of |service| and registers them. Returns 0, or
 * -EINVAL after logging which entry and path is wrong, or -ENOMEM. */
int svc_table_register(svc_env *env, const ProtobufCServiceDescriptor *service,
                       const svc_method *methods, size_t n) __attribute__((warn_unused_result));

/* ---- for hand-written handlers (|e| is the handler's |data|) -------------- */

svc_env *svc_entry_env(const svc_entry *e);

/* Appends statement |i| of |e| to |t| with its parameters bound from
 * |req| (and |page|, may be NULL). False when a value cannot be bound:
 * |call| is then finished (INVALID_ARGUMENT naming the field, or
 * RESOURCE_EXHAUSTED) and |t| must be dropped unrun. */
struct svc_page_args;
bool svc_entry_add(rpc_call *call, const svc_entry *e, int i, db_txn *t,
                   const ProtobufCMessage *req, const struct svc_page_args *page);

/* If |t| failed, finishes |call| with its status and the entry's message
 * for it, and returns true. */
bool svc_entry_failed(rpc_call *call, const svc_entry *e, db_txn *t);

/* Row |row| of statement |i|'s result in |t| as a new message of the
 * statement's row type, in the call's arena. NULL when it does not map:
 * |call| is then finished (INTERNAL, logged) or out of memory. */
ProtobufCMessage *svc_entry_row(rpc_call *call, svc_entry *e, int i, const db_txn *t, int row);

#endif
