/* libFuzzer target for the header parsers of rpc/: grpc-timeout, percent
 * coding, base64 and the metadata validators/list.
 *
 * Input layout: byte 0 selects the split between a "name" and a "value"
 * (value starts at 1 + b % (size - 1)); every parser sees the bytes it
 * would see from nghttp2, as (ptr, len) without a NUL.
 *
 * Oracles: parsers agree with their own encoders (percent and base64 round
 * trips), outputs stay within their documented bounds, and accepted
 * grpc-timeout values are digits plus a unit.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/base64.h"
#include "rpc/metadata.h"
#include "rpc/percent.h"
#include "rpc/timeout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static void fuzz_timeout(const char *s, size_t n)
{
    uint64_t ms = 0;
    char buf[16];

    if (rpc_timeout_parse(s, n, &ms) != 0)
        return;
    CHECK(n >= 2 && n <= 9 && ms <= RPC_TIMEOUT_MAX_MS);
    int w = rpc_timeout_format(ms, buf, sizeof(buf));
    CHECK(w > 0);
    uint64_t back = 0;
    CHECK(rpc_timeout_parse(buf, (size_t)w, &back) == 0 && back >= ms);
}

static void fuzz_percent(const char *s, size_t n, size_t cap)
{
    size_t need = rpc_percent_encoded_len(s, n);
    char *enc = malloc(need + 1), *dec = malloc(need + 1), *small = malloc(cap + 1);
    size_t len = 0;

    CHECK(enc && dec && small);
    CHECK(rpc_percent_encode(s, n, enc, need + 1, &len) == 0 && len == need);
    for (size_t i = 0; i < len; i++)
        CHECK(enc[i] >= 0x20 && enc[i] <= 0x7e);
    CHECK(rpc_percent_decode(enc, len, dec) == n && memcmp(dec, s, n) == 0);
    /* Lenient decode of raw input never grows it. */
    CHECK(rpc_percent_decode(s, n, dec) <= n);
    /* A truncated encoding is a prefix of the full one. */
    int rv = rpc_percent_encode(s, n, small, cap, &len);
    CHECK(rv == 0 || rv == -ENOBUFS);
    CHECK(len <= need && (cap == 0 || len < cap) && memcmp(small, enc, len) == 0);
    free(enc);
    free(dec);
    free(small);
}

static void fuzz_base64(const char *s, size_t n)
{
    size_t cap = rpc_base64_decoded_max(n), len = 0;
    uint8_t *out = malloc(cap);
    char *enc = malloc(rpc_base64_encoded_len(n) + 1);
    uint8_t *back = malloc(n + 3);

    CHECK(out && enc && back);
    int rv = rpc_base64_decode(s, n, out, cap, &len);
    CHECK(rv == 0 || rv == -EINVAL);
    CHECK(rv != 0 || len <= cap);
    /* Encoding anything and decoding it gives it back. */
    CHECK(rpc_base64_encode((const uint8_t *)s, n, enc, rpc_base64_encoded_len(n) + 1, &len) == 0);
    CHECK(rpc_base64_decode(enc, len, back, n + 3, &len) == 0 && len == n);
    CHECK(n == 0 || memcmp(back, s, n) == 0);
    free(out);
    free(enc);
    free(back);
}

static void fuzz_metadata(const char *name, size_t nn, const char *value, size_t vn)
{
    arena a;
    rpc_metadata m;
    size_t len = 0;

    (void)rpc_metadata_value_valid(value, vn);
    (void)rpc_metadata_name_is_bin(name, nn);
    (void)rpc_metadata_name_is_reserved(name, nn);
    (void)rpc_content_type_is_grpc(value, vn);
    (void)rpc_te_has_trailers(value, vn);
    if (rpc_tenant_valid(value, vn))
        CHECK(vn >= 1 && vn <= RPC_TENANT_MAX_LEN);
    if (rpc_path_valid(value, vn))
        CHECK(vn >= 4 && value[0] == '/');
    arena_init(&a, 1 << 16, NULL);
    rpc_metadata_init(&m, &a, 4, 4096);
    for (int i = 0; i < 3; i++) {
        int rv = rpc_metadata_add(&m, name, nn, value, vn);
        CHECK(rv == 0 || rv == -EINVAL || rv == -E2BIG || rv == -ENOMEM);
        if (rv == 0)
            CHECK(rpc_metadata_name_valid(name, nn));
    }
    const char *v = rpc_metadata_get(&m, name, nn, &len);
    CHECK(v == NULL || v[len] == '\0');
    arena_deinit(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    size_t split = n ? data[0] % (n + 1) : 0;

    fuzz_timeout(s, n);
    fuzz_percent(s, n, data[0]);
    fuzz_base64(s, n);
    fuzz_metadata(s, split, s + split, n - split);
    return 0;
}
