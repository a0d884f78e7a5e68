/* rpc/metadata: header validators and the per-call metadata list. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "rpc/metadata.h"

#define S(lit) lit, (sizeof(lit) - 1)

TestSuite(rpc_metadata, .timeout = 5);

struct vcase {
    const char *s;
    size_t len;
    bool ok;
};

#define OK(lit)                                                                                    \
    {                                                                                              \
        lit, sizeof(lit) - 1, true                                                                 \
    }
#define BAD(lit)                                                                                   \
    {                                                                                              \
        lit, sizeof(lit) - 1, false                                                                \
    }

static void check_table(bool (*fn)(const char *, size_t), const struct vcase *c, size_t n,
                        const char *what)
{
    for (size_t i = 0; i < n; i++)
        cr_assert(eq(int, fn(c[i].s, c[i].len), c[i].ok), "%s(\"%.*s\")", what, (int)c[i].len,
                  c[i].s);
}

#define CHECK(fn, table) check_table(fn, table, sizeof(table) / sizeof(table[0]), #fn)

Test(rpc_metadata, names)
{
    static const struct vcase t[] = {
        OK("x-tenant-id"),  OK("a"),      OK("0"),      OK("a.b_c-d"),
        OK("trace-bin"),    OK("grpc-x"), BAD(""),      BAD("X-Tenant"),
        BAD("a b"),         BAD("a:b"),   BAD(":path"), BAD("a/b"),
        BAD("caf\xc3\xa9"), BAD("a\0b"),  BAD("a\tb"),
    };
    CHECK(rpc_metadata_name_valid, t);
}

Test(rpc_metadata, values)
{
    static const struct vcase t[] = {
        OK(""),
        OK("acme"),
        OK(" leading and trailing "),
        OK("~!@#$%^&*()"),
        BAD("a\nb"),
        BAD("a\rb"),
        BAD("a\tb"),
        BAD("\x7f"),
        BAD("caf\xc3\xa9"),
        BAD("a\0b"),
    };
    CHECK(rpc_metadata_value_valid, t);
}

Test(rpc_metadata, bin_and_reserved_names)
{
    cr_assert(rpc_metadata_name_is_bin(S("trace-bin")));
    cr_assert(rpc_metadata_name_is_bin(S("-bin")));
    cr_assert(not(rpc_metadata_name_is_bin(S("bin"))));
    cr_assert(not(rpc_metadata_name_is_bin(S("trace-bin2"))));
    cr_assert(not(rpc_metadata_name_is_bin(S(""))));
    cr_assert(rpc_metadata_name_is_reserved(S("grpc-timeout")));
    cr_assert(rpc_metadata_name_is_reserved(S("grpc-")));
    cr_assert(not(rpc_metadata_name_is_reserved(S("grpc"))));
    cr_assert(not(rpc_metadata_name_is_reserved(S("x-grpc-a"))));
}

Test(rpc_metadata, tenants)
{
    static const struct vcase t[] = {
        OK("acme"),
        OK("A"),
        OK("tenant_1.prod:eu-west"),
        OK("0"),
        OK("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), /* 64 */
        BAD(""),
        BAD("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), /* 65 */
        BAD("acme corp"),
        BAD("acme/x"),
        BAD("a'b"),
        BAD("a;b"),
        BAD("%"),
        BAD("a\0b"),
        BAD("caf\xc3\xa9"),
        BAD("a\n"),
        BAD("a,b"),
        BAD("*"),
    };
    CHECK(rpc_tenant_valid, t);
}

Test(rpc_metadata, content_types)
{
    static const struct vcase t[] = {
        OK("application/grpc"),
        OK("application/grpc+proto"),
        OK("application/grpc+json"),
        OK("application/grpc;charset=utf-8"),
        OK("Application/GRPC"),
        OK("application/grpc+"),
        BAD(""),
        BAD("application/grp"),
        BAD("application/grpcx"),
        BAD("application/grpc-web"),
        BAD("application/grpc-web+proto"),
        BAD("application/json"),
        BAD(" application/grpc"),
        BAD("text/plain"),
        BAD("application/grpc\0"),
    };
    CHECK(rpc_content_type_is_grpc, t);
}

Test(rpc_metadata, te)
{
    static const struct vcase t[] = {
        OK("trailers"),          OK("Trailers"),    OK("gzip, trailers"),
        OK("trailers, deflate"), OK(" trailers "),  OK("deflate;q=0.5,trailers"),
        OK("trailers;q=1"),      BAD(""),           BAD("trailer"),
        BAD("notrailers"),       BAD("trailersx"),  BAD("gzip"),
        BAD("trail ers"),        BAD("x;trailers"),
    };
    CHECK(rpc_te_has_trailers, t);
}

Test(rpc_metadata, paths)
{
    static const struct vcase t[] = {
        OK("/grpc.health.v1.Health/Check"),
        OK("/a/b"),
        OK("/arbiter.v1.AgentRegistry/GetAgent"),
        BAD(""),
        BAD("/"),
        BAD("//"),
        BAD("/a"),
        BAD("/a/"),
        BAD("//b"),
        BAD("a/b"),
        BAD("//bc"),
        BAD("/ab/"),
        BAD("///a"),
        BAD("/abc"),
        BAD("abcd"),
        BAD("/a/b/"),
        BAD("/a/b/c"),
        BAD("/a b/c"),
        BAD("/a/b\0"),
        BAD("/a/b?x=1/"),
        BAD("/a/\xc3\xa9"),
    };
    CHECK(rpc_path_valid, t);
}

struct fixture {
    arena a;
    rpc_metadata m;
};

static struct fixture fx;

static void setup(void)
{
    arena_init(&fx.a, 0, NULL);
    rpc_metadata_init(&fx.m, &fx.a, 4, 0);
}

static void teardown(void)
{
    arena_deinit(&fx.a);
}

Test(rpc_metadata, list_add_and_get, .init = setup, .fini = teardown)
{
    size_t n = 0;

    cr_assert(eq(ptr, (void *)rpc_metadata_get(&fx.m, S("x-tenant-id"), &n), NULL));
    cr_assert(eq(int, rpc_metadata_add(&fx.m, S("x-tenant-id"), S("acme")), 0));
    cr_assert(eq(int, rpc_metadata_add(&fx.m, S("x-user-id"), S("")), 0));
    cr_assert(eq(str, (char *)rpc_metadata_get(&fx.m, S("x-tenant-id"), &n), "acme"));
    cr_assert(eq(sz, n, 4));
    cr_assert(eq(str, (char *)rpc_metadata_get(&fx.m, S("x-user-id"), &n), ""));
    cr_assert(eq(sz, n, 0));
    cr_assert(eq(ptr, (void *)rpc_metadata_get(&fx.m, S("x-tenant"), NULL), NULL));
    cr_assert(eq(ptr, (void *)rpc_metadata_get(&fx.m, S("x-tenant-idx"), NULL), NULL));
    cr_assert(eq(sz, fx.m.len, 2));
}

Test(rpc_metadata, list_bin_values_are_decoded, .init = setup, .fini = teardown)
{
    size_t n = 0;

    cr_assert(eq(int, rpc_metadata_add(&fx.m, S("trace-bin"), S("AAEC/w")), 0));
    const char *v = rpc_metadata_get(&fx.m, S("trace-bin"), &n);
    cr_assert(eq(sz, n, 4));
    cr_assert(eq(int, memcmp(v, "\x00\x01\x02\xff", 4), 0));
    cr_assert(eq(chr, v[4], '\0'));
    cr_assert(eq(int, rpc_metadata_add(&fx.m, S("trace-bin"), S("Zm9v")), 0));
    v = rpc_metadata_get(&fx.m, S("trace-bin"), &n);
    cr_assert(eq(sz, n, 7));
    cr_assert(eq(int,
                 memcmp(v,
                        "\x00\x01\x02\xff"
                        "foo",
                        7),
                 0));
    cr_assert(eq(int, rpc_metadata_add(&fx.m, S("other-bin"), S("Zm9v,YmFy")), 0));
    cr_assert(eq(str, (char *)rpc_metadata_get(&fx.m, S("other-bin"), NULL), "foobar"));
}

Test(rpc_metadata, list_merges_duplicates_with_comma, .init = setup, .fini = teardown)
{
    cr_assert(eq(int, rpc_metadata_add(&fx.m, S("x-a"), S("1")), 0));
    cr_assert(eq(int, rpc_metadata_add(&fx.m, S("x-a"), S("2")), 0));
    cr_assert(eq(int, rpc_metadata_add(&fx.m, S("x-a"), S("")), 0));
    cr_assert(eq(str, (char *)rpc_metadata_get(&fx.m, S("x-a"), NULL), "1,2,"));
    cr_assert(eq(sz, fx.m.len, 1));
}

Test(rpc_metadata, list_rejects_bad_input_unchanged, .init = setup, .fini = teardown)
{
    cr_assert(eq(int, rpc_metadata_add(&fx.m, S("X-A"), S("1")), -EINVAL));
    cr_assert(eq(int, rpc_metadata_add(&fx.m, S(""), S("1")), -EINVAL));
    cr_assert(eq(int, rpc_metadata_add(&fx.m, S("x-a"), S("a\nb")), -EINVAL));
    cr_assert(eq(int, rpc_metadata_add(&fx.m, S("x-bin"), S("!!")), -EINVAL));
    cr_assert(eq(int, rpc_metadata_add(&fx.m, S("x-a"), S("ok")), 0));
    cr_assert(eq(int, rpc_metadata_add(&fx.m, S("x-a"), S("\x01")), -EINVAL));
    cr_assert(eq(str, (char *)rpc_metadata_get(&fx.m, S("x-a"), NULL), "ok"));
    cr_assert(eq(sz, fx.m.len, 1));
}

Test(rpc_metadata, list_entry_limit, .init = setup, .fini = teardown)
{
    cr_assert(eq(int, rpc_metadata_add(&fx.m, S("a"), S("1")), 0));
    cr_assert(eq(int, rpc_metadata_add(&fx.m, S("b"), S("1")), 0));
    cr_assert(eq(int, rpc_metadata_add(&fx.m, S("c"), S("1")), 0));
    cr_assert(eq(int, rpc_metadata_add(&fx.m, S("d"), S("1")), 0));
    cr_assert(eq(int, rpc_metadata_add(&fx.m, S("e"), S("1")), -E2BIG));
    /* A duplicate of a present name still merges. */
    cr_assert(eq(int, rpc_metadata_add(&fx.m, S("a"), S("2")), 0));
    cr_assert(eq(ptr, (void *)rpc_metadata_get(&fx.m, S("e"), NULL), NULL));
    cr_assert(eq(str, (char *)rpc_metadata_get(&fx.m, S("d"), NULL), "1"));
}

Test(rpc_metadata, list_grows_past_initial_capacity)
{
    arena a;
    rpc_metadata m;
    char name[8];

    arena_init(&a, 0, NULL);
    rpc_metadata_init(&m, &a, 100, 0);
    for (int i = 0; i < 100; i++) {
        int n = snprintf(name, sizeof(name), "k%d", i);
        cr_assert(eq(int, rpc_metadata_add(&m, name, (size_t)n, name, (size_t)n), 0));
    }
    cr_assert(eq(int, rpc_metadata_add(&m, S("k100"), S("x")), -E2BIG));
    for (int i = 0; i < 100; i++) {
        int n = snprintf(name, sizeof(name), "k%d", i);
        cr_assert(eq(str, (char *)rpc_metadata_get(&m, name, (size_t)n, NULL), name));
    }
    arena_deinit(&a);
}

Test(rpc_metadata, list_byte_budget)
{
    arena a;
    rpc_metadata m;

    arena_init(&a, 0, NULL);
    /* Each field costs name + value + 32: "ab"="cd" costs 36. */
    rpc_metadata_init(&m, &a, 100, 72);
    cr_assert(eq(int, rpc_metadata_add(&m, S("ab"), S("cd")), 0));
    cr_assert(eq(int, rpc_metadata_add(&m, S("ab"), S("cd")), 0));
    cr_assert(eq(int, rpc_metadata_add(&m, S("a"), S("")), -E2BIG));
    cr_assert(eq(sz, m.bytes, 72));
    arena_deinit(&a);
}

Test(rpc_metadata, list_arena_exhaustion_is_enomem)
{
    arena a;
    rpc_metadata m;
    char big[200];

    memset(big, 'v', sizeof(big));
    arena_init(&a, 256, NULL);
    rpc_metadata_init(&m, &a, 100, 0);
    int rv = 0;
    for (int i = 0; i < 10 && rv == 0; i++)
        rv = rpc_metadata_add(&m, S("x-big"), big, sizeof(big));
    cr_assert(eq(int, rv, -ENOMEM));
    arena_deinit(&a);
}
