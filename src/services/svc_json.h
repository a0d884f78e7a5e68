/* Messages as JSON, both ways, by their descriptors (protobuf's JSON
 * mapping with the .proto field names): a request's sub-message or
 * repeated message is bound as one json parameter (batches reach SQL as
 * jsonb_to_recordset($1)), and a json/jsonb column fills a message, a
 * repeated message or a map field of a reply (an entity with its evidence
 * rows in one round trip, links of a page, counts by status).
 *
 * Writing emits every field, defaults included, and null for an absent
 * message, so SQL sees every key. Reading accepts exactly the field names
 * of the message: an unknown key or a value of the wrong type is an error,
 * never silently dropped. */
#ifndef ARBITER_SERVICES_SVC_JSON_H
#define ARBITER_SERVICES_SVC_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "util/arena.h"
#include "util/strbuf.h"

/* Appends |m| as a JSON object. Returns false for a value without a JSON
 * form (an undefined enum number, a Timestamp out of range) or when |b|
 * failed. */
bool svc_json_write(strbuf *b, const ProtobufCMessage *m);

/* Appends the value of field |f| of |m|: an array for a repeated field,
 * an object for a map or a message, null for an absent message. */
bool svc_json_write_field(strbuf *b, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f);

/* Parses |json| (|len| bytes) into field |f| of |m|: a message from an
 * object, a repeated field from an array, a map from an object; null
 * leaves the field as it is. Everything is allocated in |a|. Returns 0,
 * -EINVAL with a one-line reason in |err|, or -ENOMEM. */
int svc_json_read_field(const char *json, size_t len, ProtobufCMessage *m,
                        const ProtobufCFieldDescriptor *f, arena *a, char *err, size_t errlen);

/* True when |f| is a map field (repeated XxxEntry {key, value}). */
bool svc_field_is_map(const ProtobufCFieldDescriptor *f);

#endif
