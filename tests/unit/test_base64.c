/* rpc/base64: "-bin" metadata values, padded, unpadded and comma-joined. */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "rpc/base64.h"

TestSuite(rpc_base64, .timeout = 5);

static const struct {
    const char *in;
    const char *out;
} ok_cases[] = {
    /* RFC 4648 §10 test vectors, padded and unpadded. */
    {"", ""},
    {"Zg==", "f"},
    {"Zg", "f"},
    {"Zm8=", "fo"},
    {"Zm8", "fo"},
    {"Zm9v", "foo"},
    {"Zm9vYg==", "foob"},
    {"Zm9vYg", "foob"},
    {"Zm9vYmE=", "fooba"},
    {"Zm9vYmE", "fooba"},
    {"Zm9vYmFy", "foobar"},
    /* Duplicate headers joined with ',' (with optional whitespace). */
    {"Zm9v,YmFy", "foobar"},
    {"Zg==,Zm8", "ffo"},
    {"Zg, Zm8=", "ffo"},
    {" Zm9v ,\tYmFy ", "foobar"},
    {"Zm9v,", "foo"},
    {",Zm9v", "foo"},
    {",", ""},
    {"+/+/", "\xfb\xff\xbf"},
};

Test(rpc_base64, decode_table)
{
    uint8_t out[64];

    for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
        const char *in = ok_cases[i].in;
        size_t n = 999;
        cr_assert(eq(int, rpc_base64_decode(in, strlen(in), out, sizeof(out), &n), 0), "%s", in);
        cr_assert(eq(sz, n, strlen(ok_cases[i].out)), "%s", in);
        cr_assert(eq(int, memcmp(out, ok_cases[i].out, n), 0), "%s", in);
        cr_assert(le(sz, n, rpc_base64_decoded_max(strlen(in))));
    }
}

static const char *const bad_cases[] = {
    "Z",     /* 4k+1 characters */
    "Zm9vY", /* 4k+1 characters */
    "Zg=",   /* padded but not a multiple of 4 */
    "Zg===", /* too much padding */
    "Z===",  /* too much padding */
    "====",
    "=",
    "Zg==Zg==", /* padding in the middle */
    "Zm=v",
    "Zm9v!",
    "Zm9-", /* URL-safe alphabet is not standard base64 */
    "Zm9_",
    "Zm 9v", /* space inside a part */
    "Zm9v\n",
    "Zm9v,Z", /* one bad part spoils the value */
    "\xc3\xa9\xc3\xa9",
};

Test(rpc_base64, decode_rejects_invalid)
{
    uint8_t out[64];

    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const char *in = bad_cases[i];
        size_t n = 999;
        cr_assert(eq(int, rpc_base64_decode(in, strlen(in), out, sizeof(out), &n), -EINVAL),
                  "\"%s\"", in);
        cr_assert(eq(sz, n, 999));
    }
}

Test(rpc_base64, embedded_nul_rejected)
{
    uint8_t out[8];
    size_t n;
    cr_assert(eq(int, rpc_base64_decode("Zm\0v", 4, out, sizeof(out), &n), -EINVAL));
}

Test(rpc_base64, null_empty_value)
{
    size_t n = 9;
    cr_assert(eq(int, rpc_base64_decode(NULL, 0, NULL, 0, &n), 0));
    cr_assert(eq(sz, n, 0));
}

Test(rpc_base64, decode_buffer_too_small)
{
    uint8_t out[3];
    size_t n;
    cr_assert(eq(int, rpc_base64_decode("Zm9vYg", 6, out, 3, &n), -ENOBUFS));
    cr_assert(eq(int, rpc_base64_decode("Zm9v", 4, out, 3, &n), 0));
}

Test(rpc_base64, decode_into_arena_is_nul_terminated)
{
    arena a;
    uint8_t *v = NULL;
    size_t n = 0;

    arena_init(&a, 0, NULL);
    cr_assert(eq(int, rpc_base64_decode_arena(&a, "Zm9v,YmFy", 9, &v, &n), 0));
    cr_assert(eq(sz, n, 6));
    cr_assert(eq(str, (char *)v, "foobar"));
    cr_assert(eq(int, rpc_base64_decode_arena(&a, "Zm9", 2 + 2, &v, &n), -EINVAL));
    arena_deinit(&a);
}

Test(rpc_base64, encode_unpadded_and_round_trip)
{
    static const char *const want[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    char out[64];
    uint8_t back[256], all[256];
    size_t n, m;

    for (size_t i = 0; i < 7; i++) {
        cr_assert(eq(sz, rpc_base64_encoded_len(i), strlen(want[i])));
        cr_assert(
            eq(int, rpc_base64_encode((const uint8_t *)"foobar", i, out, sizeof(out), &n), 0));
        cr_assert(eq(str, out, (char *)want[i]));
    }
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    for (size_t len = 0; len <= 256; len += 17) {
        char enc[400];
        cr_assert(eq(int, rpc_base64_encode(all, len, enc, sizeof(enc), &n), 0));
        cr_assert(eq(int, rpc_base64_decode(enc, n, back, sizeof(back), &m), 0));
        cr_assert(eq(sz, m, len));
        cr_assert(eq(int, memcmp(back, all, len), 0));
    }
    cr_assert(eq(int, rpc_base64_encode((const uint8_t *)"foo", 3, out, 4, &n), -ENOBUFS));
    cr_assert(eq(int, rpc_base64_encode((const uint8_t *)"foo", 3, out, 5, &n), 0));
}
