/* services/svc_page: keyset page tokens round-trip and are bound to their
 * method and tenant. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "services/svc_page.h"

static arena a;

static void setup(void)
{
    arena_init(&a, 0, NULL);
}

static void teardown(void)
{
    arena_deinit(&a);
}

TestSuite(svc_page, .init = setup, .fini = teardown, .timeout = 5);

static const char *const keys[] = {"2026-11-29 14:12:27.014123+00",
                                   "5f1c0b8e-6f0e-4b5a-9d1e-0c4c1f2a3b4c"};

Test(svc_page, round_trip)
{
    uint32_t m = svc_page_hash("/arbiter.v1.AgentRegistry/ListAgents");
    char *tok = svc_page_token(&a, "acme", m, keys, 2);
    svc_page_pos pos;

    cr_assert(tok != NULL);
    cr_assert(eq(int, svc_page_decode(&a, "acme", tok, m, 2, &pos), 0));
    cr_assert(eq(u32, pos.nkeys, 2));
    cr_expect(eq(str, (char *)pos.keys[0], (char *)keys[0]));
    cr_expect(eq(str, (char *)pos.keys[1], (char *)keys[1]));
}

Test(svc_page, empty_is_the_first_page)
{
    svc_page_pos pos;

    cr_expect(eq(int, svc_page_decode(&a, "acme", "", 1, 2, &pos), 0));
    cr_expect(eq(u32, pos.nkeys, 0));
    cr_expect(eq(int, svc_page_decode(&a, "acme", NULL, 1, 2, &pos), 0));
}

Test(svc_page, bound_to_method_and_tenant)
{
    char *tok = svc_page_token(&a, "acme", 7, keys, 2);
    svc_page_pos pos;

    cr_expect(eq(int, svc_page_decode(&a, "other", tok, 7, 2, &pos), -EPERM));
    cr_expect(eq(int, svc_page_decode(&a, NULL, tok, 7, 2, &pos), -EPERM));
    cr_expect(eq(int, svc_page_decode(&a, "acme", tok, 8, 2, &pos), -EPERM));
    cr_expect(eq(int, svc_page_decode(&a, "acme", tok, 7, 1, &pos), -EINVAL));
}

Test(svc_page, malformed_tokens)
{
    char *tok = svc_page_token(&a, "acme", 7, keys, 2);
    static const char *const bad[] = {"!!!", "AAAA", "not a token at all", "AgAAAA=="};
    svc_page_pos pos;
    char cut[64];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect(eq(int, svc_page_decode(&a, "acme", bad[i], 7, 2, &pos), -EINVAL), "%s",
                  bad[i]);
    snprintf(cut, sizeof(cut), "%.*s", (int)strlen(tok) - 8, tok);
    cr_expect(lt(int, svc_page_decode(&a, "acme", cut, 7, 2, &pos), 0), "truncated");
}

Test(svc_page, keys_have_a_size_limit)
{
    static char big[SVC_PAGE_KEY_MAX + 2];
    const char *k[] = {big};

    memset(big, 'k', sizeof(big) - 1);
    cr_expect(eq(ptr, svc_page_token(&a, "acme", 1, k, 1), NULL));
}
