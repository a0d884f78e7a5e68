/* Rows become messages by column name (sqlc's and PostgREST's idea, over
 * protobuf-c descriptors): a column named after a field fills it, a dotted
 * alias reaches into nested messages (AS "load.active_tasks"), an array
 * column through a repeated message fills one element per array element
 * (array_agg(e.source ORDER BY e.ord) AS "evidence.source": the children
 * of a row without JSON; NULL elements leave that field unset, and every
 * non-empty such column of one repeated field must have the same length;
 * an empty or NULL array adds nothing), and a
 * column whose name starts with '_' is not mapped (keyset positions and
 * other helpers). The mapping is resolved once per statement, at its first
 * result, and checked against the column types then:
 *
 *   string          any scalar but bytea (json and jsonb too)
 *   bytes           bytea
 *   bool            bool
 *   int32/64, uint  int2, int4, int8
 *   float, double   float4, float8, numeric, int2, int4, int8
 *   enum            text, varchar, or a PostgreSQL enum type; by name
 *   repeated scalar the matching array type
 *   Timestamp       timestamptz
 *   wrapper types   as their value; NULL leaves the wrapper unset
 *   message, repeated message, map    json or jsonb
 *
 * An unknown column or a type that does not fit fails the mapping with a
 * clear reason (the call answers INTERNAL and the log names the column);
 * so does a value that does not parse, or a NULL inside an array: never a
 * silent zero. A NULL column leaves its field at the default (absent). */
#ifndef ARBITER_SERVICES_SVC_MAP_H
#define ARBITER_SERVICES_SVC_MAP_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "db/db.h"
#include "util/arena.h"

typedef struct svc_map svc_map;

/* Resolves the columns of |r| against messages of |d|. Returns the map
 * (heap; free with svc_map_free), or NULL with the reason in |err|. */
svc_map *svc_map_new(const ProtobufCMessageDescriptor *d, const db_result *r, char *err,
                     size_t errlen);
void svc_map_free(svc_map *m);

/* Whether |m| was built for results shaped like |r| (same column count). */
bool svc_map_fits(const svc_map *m, const db_result *r);

/* The column named |name| in the mapped result, or -1. */
int svc_map_column(const svc_map *m, const char *name);

/* Fills |out| (a message of the map's descriptor, already initialised)
 * from row |row| of |r|, allocating nested messages in |a|. Strings point
 * into |r|: the message is valid as long as the result. Returns 0, -EINVAL
 * with the reason in |err|, or -ENOMEM. */
int svc_map_row(const svc_map *m, const db_result *r, int row, ProtobufCMessage *out, arena *a,
                char *err, size_t errlen);

/* A new message of the map's descriptor in |a| filled from row |row|;
 * NULL on failure (*|rv| receives the code). */
ProtobufCMessage *svc_map_new_row(const svc_map *m, const db_result *r, int row, arena *a,
                                  int *rv, char *err, size_t errlen);

#endif
