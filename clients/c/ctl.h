/* arbiterctl internals: the compiled-in services, building a request from
 * "path=value" arguments through the protobuf-c descriptors, and printing a
 * message as JSON (json-c).
 *
 * JSON mapping (proto3 JSON, with original field names as grpcurl's
 * --proto-names / protobuf's preserving_proto_field_name do, so the output
 * uses the same names the arguments do):
 *   - every scalar field is printed, defaults included (like grpcurl's
 *     --emit-defaults): a script can read "removed": false;
 *   - repeated fields are arrays (possibly empty); an unset message field is
 *     left out;
 *   - int64, uint64 (and their fixed/sint forms) are strings, other
 *     integers numbers; NaN and infinities are "NaN", "Infinity",
 *     "-Infinity"; bytes are padded standard base64;
 *   - enums by value name (the number when the value has no name);
 *   - google.protobuf.Timestamp is an RFC 3339 string in UTC
 *     ("2026-11-26T14:35:09.123Z"), the wrapper types (DoubleValue, ...)
 *     are their plain value.
 */
#ifndef ARBITER_CLIENT_CTL_H
#define ARBITER_CLIENT_CTL_H

#include <stddef.h>
#include <stdio.h>

#include <json-c/json.h>
#include <protobuf-c/protobuf-c.h>

#include "util/arena.h"

/* The compiled-in services, NULL-terminated. The test-only service is
 * included after the others (hidden flag set by ctl_service_hidden()). */
extern const ProtobufCServiceDescriptor *const ctl_services[];

/* True for services that only exist with the server's --enable-test-service
 * (arbiterctl list shows them only with --all). */
int ctl_service_hidden(const ProtobufCServiceDescriptor *s);

/* Resolves "Service.Method" where Service is the short name
 * ("AgentRegistry") or the full name ("arbiter.v1.AgentRegistry"); also
 * "/pkg.Svc/Method" and "pkg.Svc/Method". On success stores the service and
 * method (static descriptors) and returns 0; returns -ENOENT when the
 * service is unknown, -ESRCH when the service has no such method, -EINVAL
 * when |name| has no method part. */
int ctl_resolve_method(const char *name, const ProtobufCServiceDescriptor **service,
                       const ProtobufCMethodDescriptor **method);

/* Allocates an initialised (all defaults) message of type |desc| in |a|.
 * Returns NULL when out of memory. */
ProtobufCMessage *ctl_msg_new(const ProtobufCMessageDescriptor *desc, arena *a);

/* Applies one argument "path=value" to |msg|. path is dotted field names
 * into nested messages ("agent.capabilities.languages"; lowerCamelCase is
 * accepted too); a repeated message field takes an index, "items[0].name",
 * where the index equal to the current length appends. A repeated scalar
 * appends one element per argument. Values: strings as is; bool
 * true/false/1/0; integers in decimal (range-checked); float/double
 * (also nan, inf); enums by value name or number; bytes as base64;
 * google.protobuf.Timestamp as RFC 3339 or its fields; the wrapper types as
 * their plain value ("min_success_rate=0.5") or "min_success_rate.value=";
 * "field={}" sets an empty sub-message. Everything is allocated in |a|.
 * Returns 0, -ENOENT for an unknown field, or -EINVAL for a malformed
 * argument or value; on error writes an explanation into |err| (|errcap|
 * bytes, NUL-terminated) and |msg| may be partly changed. */
int ctl_msg_assign(ProtobufCMessage *msg, const char *arg, arena *a, char *err, size_t errcap);

/* Builds the JSON form of |msg| (see the mapping above). Returns a new
 * json_object the caller releases with json_object_put(), or NULL when out
 * of memory. */
struct json_object *ctl_msg_to_json(const ProtobufCMessage *msg);

/* Prints the assignable field paths of |desc| (one per line, with type and
 * label, nested messages expanded to |max_depth| levels) to |out|. */
void ctl_print_fields(FILE *out, const ProtobufCMessageDescriptor *desc, int max_depth);

#endif
