/* One value of a field as text, both ways: in PostgreSQL's text form (what
 * parameters are bound as and what columns read as) and in JSON (protobuf's
 * JSON mapping: names as in the .proto, enums by name, Timestamps as RFC
 * 3339, bytes in base64, NaN/Infinity as strings).
 *
 * |elem| points at one element in memory: the field itself for a singular
 * field, one slot of the array for a repeated one. For Timestamps and
 * wrappers the element is the message pointer. */
#ifndef ARBITER_SERVICES_SVC_VALUE_H
#define ARBITER_SERVICES_SVC_VALUE_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "util/arena.h"
#include "util/strbuf.h"

enum svc_text { SVC_TEXT_PG, SVC_TEXT_JSON };

/* Appends the element at |elem| of field |f| to |b| (strings unquoted in
 * SVC_TEXT_PG). Returns false for a value that has no text form (an enum
 * number the enum does not define, a Timestamp out of range); the caller
 * reports it. A NULL Timestamp or wrapper appends nothing and returns
 * true; test for it with svc_value_is_null(). Messages other than
 * Timestamps and wrappers are not values: use svc_json_write(). */
bool svc_value_write(strbuf *b, const ProtobufCFieldDescriptor *f, const void *elem,
                     enum svc_text style);

/* True when the element is a NULL Timestamp or wrapper, or an
 * UNSPECIFIED (zero) enum: such values bind as SQL NULL. */
bool svc_value_is_null(const ProtobufCFieldDescriptor *f, const void *elem);

/* Parses PostgreSQL's text form |text| into the element at |elem| of field
 * |f|; strings point into |text| unless |copy| (then they live in |a|),
 * Timestamps and wrappers are allocated in |a|. Returns 0, -EINVAL for
 * text that does not fit the type (never a silent zero), -ENOMEM. */
int svc_value_parse(const ProtobufCFieldDescriptor *f, const char *text, size_t len, void *elem,
                    bool copy, arena *a);

#endif
