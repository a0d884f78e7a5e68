/* Field paths over protobuf-c descriptors: "agent.capabilities.languages"
 * resolved once, at registration, into the chain of field descriptors, and
 * the typed access to a field of a message in memory that binding,
 * mapping, validation and JSON share.
 *
 * Kinds: the well-known types are leaves of their own (a Timestamp is one
 * value; a wrapper such as google.protobuf.DoubleValue is its value, or
 * NULL when absent), so "max_utilization_percent" names the double inside
 * the wrapper. */
#ifndef ARBITER_SERVICES_SVC_PATH_H
#define ARBITER_SERVICES_SVC_PATH_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#define SVC_PATH_MAX 6

enum svc_kind {
    SVC_K_INT,       /* int32/sint32/sfixed32/int64/sint64/sfixed64 */
    SVC_K_UINT,      /* uint32/fixed32/uint64/fixed64 */
    SVC_K_FLOAT,     /* float and double */
    SVC_K_BOOL,
    SVC_K_ENUM,
    SVC_K_STRING,
    SVC_K_BYTES,
    SVC_K_TIMESTAMP, /* google.protobuf.Timestamp */
    SVC_K_WRAPPER,   /* google.protobuf.*Value: the value, or absent */
    SVC_K_MESSAGE,   /* any other message */
};

typedef struct svc_path {
    const ProtobufCFieldDescriptor *steps[SVC_PATH_MAX];
    unsigned n;       /* steps used */
    int repeated_at;  /* index of the one repeated step before the leaf, or -1 */
    const char *text; /* the path as written (borrowed, static) */
} svc_path;

/* Resolves |text| against |root|. Every step but the last must be a
 * message field that is not a well-known type; at most one step before
 * the leaf may be repeated when |allow_repeated_step| (binding gathers an
 * array over its elements). Returns 0, or -EINVAL with a one-line reason
 * in |err|. */
int svc_path_resolve(const ProtobufCMessageDescriptor *root, const char *text,
                     bool allow_repeated_step, svc_path *out, char *err, size_t errlen);

/* The leaf field of |p|. */
const ProtobufCFieldDescriptor *svc_path_leaf(const svc_path *p);

/* What kind of value field |f| holds (its element kind when repeated). */
enum svc_kind svc_field_kind(const ProtobufCFieldDescriptor *f);

/* For wrapper fields: the "value" field inside the wrapper message. */
const ProtobufCFieldDescriptor *svc_wrapper_value(const ProtobufCFieldDescriptor *f);

/* The kind of a wrapper's value (SVC_K_FLOAT for DoubleValue, ...). */
enum svc_kind svc_value_kind(const ProtobufCFieldDescriptor *f);

static inline bool svc_field_repeated(const ProtobufCFieldDescriptor *f)
{
    return f->label == PROTOBUF_C_LABEL_REPEATED;
}

/* Where field |f| of |m| lives. */
static inline void *svc_field_ptr(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    return (char *)m + f->offset;
}

/* The element count of repeated field |f| of |m|. */
static inline size_t *svc_field_count(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    return (size_t *)(void *)((char *)m + f->quantifier_offset);
}

/* Whether a singular field has a value: a message is present, a oneof
 * member is the chosen one, a proto2-style optional has its has_ flag;
 * proto3 scalars always have one. */
bool svc_field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f);

/* Marks field |f| of |m| as set (oneof case, has_ flag). */
void svc_field_mark(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f);

/* The size of one element of field |f| in memory. */
size_t svc_field_size(const ProtobufCFieldDescriptor *f);

/* An enum value's name without the enum's prefix ("PENDING" for
 * QUERY_STATUS_PENDING), or NULL for a value the enum does not define. */
const char *svc_enum_short_name(const ProtobufCEnumDescriptor *e, int value);

/* The value of |name|, which may be the full name, the short name or
 * either in lower case. Returns 0, or -ENOENT. */
int svc_enum_value(const ProtobufCEnumDescriptor *e, const char *name, int *value);

#endif
