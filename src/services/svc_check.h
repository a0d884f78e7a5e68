/* Validation as data: per-field rules of a method table, resolved against
 * the request descriptor at registration (a wrong path, or a rule that
 * does not fit the field's type, fails start-up) and checked before any
 * database work. A failure answers INVALID_ARGUMENT with the field's path
 * first: "agent.name: must be 1 to 255 characters, got 300", and inside
 * repeated messages with the index: "results[3].title: is required".
 *
 * Rules whose path crosses an absent sub-message are skipped (absent binds
 * NULL, and defaults live in SQL); SVC_REQUIRED is the rule that asks for
 * a sub-message. What the schema checks anyway (CHECK constraints named
 * after the field, see svc_table.h) need not be repeated here. */
#ifndef ARBITER_SERVICES_SVC_CHECK_H
#define ARBITER_SERVICES_SVC_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "rpc/call.h"
#include "services/svc_path.h"

enum svc_check_kind {
    SVC_CHECK_END = 0,  /* ends a list */
    SVC_CHECK_REQUIRED, /* a message (or non-empty string) must be given */
    SVC_CHECK_LEN,      /* string: min..max characters (Unicode code points) */
    SVC_CHECK_UUID,     /* string: a canonical UUID; empty passes when min == 0 */
    SVC_CHECK_RANGE,    /* number (or wrapper): finite and within min..max */
    SVC_CHECK_ITEMS,    /* repeated: at most max items; string items item_min..item_max chars */
    SVC_CHECK_NAME,     /* string: 1..max of [A-Za-z0-9_.:-] (tenant ids and the like) */
    SVC_CHECK_JSON,     /* string: empty, or a JSON object */
    SVC_CHECK_ENUM,     /* enum: a value the enum defines; UNSPECIFIED passes when min == 0 */
    SVC_CHECK_VECTOR,   /* repeated float: 1..max finite values, not all zero (an embedding);
                           empty passes when min == 0 */
};

typedef struct svc_check {
    const char *field; /* path in the request */
    enum svc_check_kind kind;
    double min, max;
    double item_min, item_max;
} svc_check;

/* Rule constructors for method tables. */
#define SVC_REQUIRED(f) {(f), SVC_CHECK_REQUIRED, 0, 0, 0, 0}
#define SVC_LEN(f, lo, hi) {(f), SVC_CHECK_LEN, (lo), (hi), 0, 0}
#define SVC_UUID(f) {(f), SVC_CHECK_UUID, 1, 0, 0, 0}
#define SVC_UUID_OPT(f) {(f), SVC_CHECK_UUID, 0, 0, 0, 0}
#define SVC_RANGE(f, lo, hi) {(f), SVC_CHECK_RANGE, (lo), (hi), 0, 0}
#define SVC_ITEMS(f, n, lo, hi) {(f), SVC_CHECK_ITEMS, 0, (n), (lo), (hi)}
#define SVC_NAME(f, hi) {(f), SVC_CHECK_NAME, 1, (hi), 0, 0}
#define SVC_JSON_OBJECT(f) {(f), SVC_CHECK_JSON, 0, 0, 0, 0}
#define SVC_ENUM(f) {(f), SVC_CHECK_ENUM, 1, 0, 0, 0}
#define SVC_ENUM_OPT(f) {(f), SVC_CHECK_ENUM, 0, 0, 0, 0}
#define SVC_VECTOR(f, dims) {(f), SVC_CHECK_VECTOR, 1, (dims), 0, 0}
#define SVC_VECTOR_OPT(f, dims) {(f), SVC_CHECK_VECTOR, 0, (dims), 0, 0}
/* A NULL-terminated list in a table entry: .checks = SVC_CHECKS(...). */
#define SVC_CHECKS(...) ((const svc_check[]){__VA_ARGS__, {0}})

/* A rule resolved against the request descriptor. */
typedef struct svc_rule {
    const svc_check *check; /* borrowed, static */
    svc_path path;
} svc_rule;

/* Resolves |c| against |request|; -EINVAL with the reason in |err| when
 * the path does not exist or the rule does not fit the field. */
int svc_rule_compile(const ProtobufCMessageDescriptor *request, const svc_check *c,
                     svc_rule *out, char *err, size_t errlen);

/* Checks |n| rules against |msg|. Returns 0 when all pass, else -EINVAL
 * with "<field>: <what is wrong>" in |err|. */
int svc_rules_check(const svc_rule *rules, size_t n, const ProtobufCMessage *msg, char *err,
                    size_t errlen);

/* svc_rules_check() for a call: true when all pass; otherwise |call| is
 * finished with INVALID_ARGUMENT and the message. */
bool svc_rules_pass(rpc_call *call, const svc_rule *rules, size_t n, const ProtobufCMessage *msg);

/* Finishes |call| with INVALID_ARGUMENT "<field>: <printf message>". */
void svc_invalid(rpc_call *call, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Whether |s| is a canonical UUID (8-4-4-4-12 hex, either case). */
bool svc_is_uuid(const char *s);

#endif
