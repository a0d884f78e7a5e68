/* Request fields become statement parameters by path, resolved once at
 * registration. What a path binds, in PostgreSQL's text form:
 *
 *   a scalar                its value; an enum by its short name
 *                           ("PENDING"), UNSPECIFIED as NULL
 *   a Timestamp, a wrapper  its value, NULL when absent
 *   a repeated scalar       an array literal ("{a,b}"): cast it, $2::text[]
 *   a message, a repeated   JSON (svc_json.h): $3::jsonb, for batches
 *   message or a map        jsonb_to_recordset($3::jsonb)
 *   x.y through repeated x  the array of every element's y ("results.title"
 *                           → text[]), for unnest($1::text[], $2::float8[])
 *
 * A path through an absent sub-message binds NULL, so defaults live in SQL.
 * Two pseudo-parameters serve keyset pages: "@limit" (page size + 1) and
 * "@after.N" (the N-th ordering value of the previous page's last row,
 * from 1; NULL on the first page). */
#ifndef ARBITER_SERVICES_SVC_BIND_H
#define ARBITER_SERVICES_SVC_BIND_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "db/db.h"
#include "services/svc_page.h"
#include "services/svc_path.h"

enum svc_param_kind { SVC_P_FIELD, SVC_P_LIMIT, SVC_P_AFTER };

typedef struct svc_param {
    enum svc_param_kind kind;
    unsigned key; /* SVC_P_AFTER: which ordering value, from 0 */
    bool json;    /* the field binds as JSON */
    svc_path path;
} svc_param;

/* What a keyset page adds to binding: the page size and the position. */
typedef struct svc_page_args {
    int32_t size;
    svc_page_pos pos;
} svc_page_args;

/* Resolves |text| (a path or a pseudo-parameter) against |request|.
 * Returns 0 or -EINVAL with the reason in |err|. */
int svc_param_compile(const ProtobufCMessageDescriptor *request, const char *text, svc_param *out,
                      char *err, size_t errlen);

/* Binds |p| of |req| as the next parameter of |t|'s last statement, with
 * the text built in |a|. |page| may be NULL when the statement has no
 * pseudo-parameters. Returns 0, -EINVAL for a value without a text form
 * (an enum number the enum does not define, a Timestamp out of range: the
 * caller answers INVALID_ARGUMENT naming p->path.text, and drops |t|) or
 * -ENOMEM. */
int svc_param_bind(db_txn *t, const svc_param *p, const ProtobufCMessage *req,
                   const svc_page_args *page, arena *a);

#endif
