/* rpc/percent: grpc-message encoding (strict) and decoding (lenient). */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "rpc/percent.h"

TestSuite(rpc_percent, .timeout = 5);

static const struct {
    const char *in;
    const char *out;
} enc_cases[] = {
    {"", ""},
    {"ok", "ok"},
    {"not found: agent 42", "not found: agent 42"},
    {"100%", "100%25"},
    {"%", "%25"},
    {"%25", "%2525"},
    {" !\"#$&'()*+,-./~", " !\"#$&'()*+,-./~"}, /* %x20-%x24, %x26-%x7E pass */
    {"a\nb", "a%0Ab"},
    {"tab\there", "tab%09here"},
    {"\x1f\x7f", "%1F%7F"},
    {"caf\xc3\xa9", "caf%C3%A9"},         /* é */
    {"\xe2\x82\xac 5", "%E2%82%AC 5"},    /* € */
    {"\xf0\x9f\x98\x80", "%F0%9F%98%80"}, /* 😀 */
    {"\xff", "%FF"},
};

Test(rpc_percent, encode_table)
{
    char out[128];

    for (size_t i = 0; i < sizeof(enc_cases) / sizeof(enc_cases[0]); i++) {
        const char *in = enc_cases[i].in;
        size_t n = 999;
        cr_assert(eq(sz, rpc_percent_encoded_len(in, strlen(in)), strlen(enc_cases[i].out)));
        cr_assert(eq(int, rpc_percent_encode(in, strlen(in), out, sizeof(out), &n), 0), "%s", in);
        cr_assert(eq(str, out, (char *)enc_cases[i].out));
        cr_assert(eq(sz, n, strlen(enc_cases[i].out)));
    }
}

Test(rpc_percent, encode_every_byte)
{
    char out[4];
    size_t n;

    for (int c = 0; c < 256; c++) {
        char in = (char)c;
        cr_assert(eq(int, rpc_percent_encode(&in, 1, out, sizeof(out), &n), 0));
        bool plain = c >= 0x20 && c <= 0x7e && c != '%';
        cr_assert(eq(sz, n, plain ? 1 : 3), "byte %d", c);
        if (!plain)
            cr_assert(eq(chr, out[0], '%'));
    }
}

Test(rpc_percent, embedded_nul_is_encoded)
{
    char out[16];
    size_t n;
    cr_assert(eq(int, rpc_percent_encode("a\0b", 3, out, sizeof(out), &n), 0));
    cr_assert(eq(str, out, "a%00b"));
}

Test(rpc_percent, truncation_keeps_triples_and_utf8_whole)
{
    char out[16];
    size_t n;

    /* "ab%25cd" needs 8 bytes with NUL; 5 fits "ab" only (no split %25). */
    cr_assert(eq(int, rpc_percent_encode("ab%cd", 5, out, 5, &n), -ENOBUFS));
    cr_assert(eq(str, out, "ab"));
    cr_assert(eq(sz, n, 2));
    /* "x€" = x %E2%82%AC: room for x and two triples must not emit half a €. */
    cr_assert(eq(int, rpc_percent_encode("x\xe2\x82\xac", 4, out, 8, &n), -ENOBUFS));
    cr_assert(eq(str, out, "x"));
    /* cap 1: just the NUL. cap 0: nothing written at all. */
    cr_assert(eq(int, rpc_percent_encode("abc", 3, out, 1, &n), -ENOBUFS));
    cr_assert(eq(str, out, ""));
    out[0] = 'Z';
    cr_assert(eq(int, rpc_percent_encode("abc", 3, out, 0, &n), -ENOBUFS));
    cr_assert(eq(chr, out[0], 'Z'));
    cr_assert(eq(sz, n, 0));
    /* Exact fit. */
    cr_assert(eq(int, rpc_percent_encode("a%", 2, out, 5, &n), 0));
    cr_assert(eq(str, out, "a%25"));
}

static const struct {
    const char *in;
    const char *out;
} dec_cases[] = {
    {"", ""},
    {"plain", "plain"},
    {"100%25", "100%"},
    {"caf%C3%A9", "caf\xc3\xa9"},
    {"caf%c3%a9", "caf\xc3\xa9"}, /* lower-case hex is accepted */
    {"%", "%"},
    {"%2", "%2"},
    {"%zz", "%zz"},
    {"%2G", "%2G"},
    {"%%41", "%A"},
    {"50% off", "50% off"},
    {"end%", "end%"},
    {"%41%42%43", "ABC"},
    {"%00x", "\0x"},
};

Test(rpc_percent, decode_is_lenient)
{
    char out[64];

    for (size_t i = 0; i < sizeof(dec_cases) / sizeof(dec_cases[0]); i++) {
        const char *in = dec_cases[i].in;
        size_t n = rpc_percent_decode(in, strlen(in), out);
        size_t want = strcmp(in, "%00x") == 0 ? 2 : strlen(dec_cases[i].out);
        cr_assert(eq(sz, n, want), "%s", in);
        cr_assert(eq(int, memcmp(out, dec_cases[i].out, want), 0), "%s", in);
    }
}

Test(rpc_percent, decode_in_place_and_round_trip)
{
    char buf[64], enc[200];
    size_t n;

    for (int c = 0; c < 64; c++)
        buf[c] = (char)(c * 4 + 1);
    cr_assert(eq(int, rpc_percent_encode(buf, 64, enc, sizeof(enc), &n), 0));
    n = rpc_percent_decode(enc, n, enc);
    cr_assert(eq(sz, n, 64));
    cr_assert(eq(int, memcmp(enc, buf, 64), 0));
}
