/* rpc/timeout: the grpc-timeout grammar, table-driven. */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>

#include "rpc/timeout.h"

TestSuite(rpc_timeout, .timeout = 5);

struct ok_case {
    const char *in;
    uint64_t ms;
};

static const struct ok_case ok_cases[] = {
    {"1H", 3600000},
    {"2M", 120000},
    {"3S", 3000},
    {"4m", 4},
    {"1u", 1},
    {"999u", 1},
    {"1000u", 1},
    {"1001u", 2},
    {"1n", 1},
    {"1000000n", 1},
    {"1000001n", 2},
    {"0S", 0},
    {"0n", 0},
    {"00000001m", 1},
    {"99999999m", 99999999},
    {"99999999S", 99999999000ULL},
    {"99999999H", RPC_TIMEOUT_MAX_MS},
    {"99999999n", 100},
    {"00000000S", 0},
    {"12345678u", 12346},
};

Test(rpc_timeout, valid_values)
{
    for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
        const struct ok_case *c = &ok_cases[i];
        uint64_t ms = 777;
        cr_assert(eq(int, rpc_timeout_parse(c->in, strlen(c->in), &ms), 0), "%s", c->in);
        cr_assert(eq(u64, ms, c->ms), "%s", c->in);
    }
}

/* Parameterized: every string here must be rejected. Criterion re-executes
 * the test binary per test (BoxFort), so parameters must not hold pointers
 * into our image: the string is stored inline. */
struct bad_case {
    char in[16];
};

ParameterizedTestParameters(rpc_timeout, rejects_garbage)
{
    static struct bad_case bad[] = {
        {""},         {"S"},          {"1"},
        {"12"},       {"123456789S"}, {"999999999H"},
        {"-1S"},      {"+1S"},        {" 1S"},
        {"1S "},      {"1 S"},        {"1s"},
        {"1h"},       {"1x"},         {"1SS"},
        {"1.5S"},     {"0x10S"},      {"S1"},
        {"1\tS"},     {"1\nS"},       {"10000000000m"},
        {"1us"},      {"1mS"},        {"\xff\xffS"},
        {"12345678"}, {"1e3m"},       {"Infinity"},
    };
    return cr_make_param_array(struct bad_case, bad, sizeof(bad) / sizeof(bad[0]));
}

ParameterizedTest(struct bad_case *c, rpc_timeout, rejects_garbage)
{
    uint64_t ms = 777;
    cr_assert(eq(int, rpc_timeout_parse(c->in, strlen(c->in), &ms), -EINVAL), "\"%s\"", c->in);
    cr_assert(eq(u64, ms, 777), "output written on failure");
}

Test(rpc_timeout, embedded_nul_rejected)
{
    uint64_t ms = 0;
    cr_assert(eq(int, rpc_timeout_parse("1\0S", 3, &ms), -EINVAL));
    cr_assert(eq(int, rpc_timeout_parse("10S", 2, &ms), -EINVAL)); /* "10": no unit */
}

Test(rpc_timeout, null_pointer_is_invalid)
{
    uint64_t ms = 0;
    cr_assert(eq(int, rpc_timeout_parse(NULL, 0, &ms), -EINVAL));
}

Test(rpc_timeout, format_round_trips_with_round_up)
{
    static const struct {
        uint64_t ms;
        const char *out;
    } cases[] = {
        {0, "0m"},
        {1, "1m"},
        {99999999, "99999999m"},
        {100000000, "100000S"},
        {100000001, "100001S"},
        {99999999000ULL, "99999999S"},
        {99999999001ULL, "1666667M"},
        {RPC_TIMEOUT_MAX_MS, "99999999H"},
        {UINT64_MAX, "99999999H"},
    };
    char buf[16];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int n = rpc_timeout_format(cases[i].ms, buf, sizeof(buf));
        cr_assert(eq(int, n, (int)strlen(cases[i].out)));
        cr_assert(eq(str, buf, (char *)cases[i].out));
        uint64_t back = 0;
        cr_assert(eq(int, rpc_timeout_parse(buf, (size_t)n, &back), 0));
        if (cases[i].ms <= RPC_TIMEOUT_MAX_MS)
            cr_assert(ge(u64, back, cases[i].ms), "%s must not shorten the deadline", buf);
    }
    cr_assert(eq(int, rpc_timeout_format(1, buf, 9), -ENOBUFS));
}
