/* The grpc-timeout request header (PROTOCOL-HTTP2.md "Requests"):
 *
 *     Timeout → TimeoutValue TimeoutUnit
 *     TimeoutValue → {positive integer as ASCII string of at most 8 digits}
 *     TimeoutUnit → H / M / S / m / u / n
 */
#ifndef ARBITER_RPC_TIMEOUT_H
#define ARBITER_RPC_TIMEOUT_H

#include <stddef.h>
#include <stdint.h>

/* The largest value rpc_timeout_parse() returns: 99999999 hours in ms
 * (about 11,400 years); it fits a uint64_t, so nothing saturates. */
#define RPC_TIMEOUT_MAX_MS (99999999ULL * 3600000ULL)

/* Parses the header value (|s|, |len|) (not NUL-terminated; no str*) into
 * milliseconds in *|ms|. Sub-millisecond amounts round up, so "1n" is 1 ms
 * and only a zero value gives 0 ms (an already-expired deadline). Returns 0,
 * or -EINVAL for anything but 1-8 ASCII digits followed by exactly one unit
 * (empty, 9+ digits, signs, spaces, unknown or missing unit); *|ms| is
 * written only on success. */
int rpc_timeout_parse(const char *s, size_t len, uint64_t *ms) __attribute__((warn_unused_result));

/* Formats |ms| as a grpc-timeout value ("<=8 digits" + unit, e.g. "1500m",
 * "100000S") into |out| of |cap| bytes, NUL-terminated, rounding up to the
 * next representable value when ms needs more than 8 digits. Returns the
 * length written (without NUL), or -ENOBUFS when |cap| < 10. For clients. */
int rpc_timeout_format(uint64_t ms, char *out, size_t cap) __attribute__((warn_unused_result));

#endif
