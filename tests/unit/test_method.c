/* rpc/method and rpc/status: the method table built from descriptors. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "health.pb-c.h"
#include "rpc/method.h"
#include "testing.pb-c.h"
#include "util/status.h"

#define S(lit) lit, (sizeof(lit) - 1)

static rpc_methods t;

static void h_check(rpc_call *call, const ProtobufCMessage *req, void *data)
{
}
static void h_watch(rpc_call *call, const ProtobufCMessage *req, void *data)
{
}

static void setup(void)
{
    rpc_methods_init(&t);
}

static void teardown(void)
{
    rpc_methods_deinit(&t);
}

TestSuite(rpc_method, .init = setup, .fini = teardown, .timeout = 5);

static const ProtobufCServiceDescriptor *const health = &grpc__health__v1__health__descriptor;
static const ProtobufCServiceDescriptor *const testing = &arbiter__v1__testing__descriptor;

Test(rpc_method, add_and_find)
{
    int tag = 7;

    cr_assert(eq(int, rpc_methods_add(&t, health, "Check", h_check, RPC_UNARY, &tag), 0));
    cr_assert(
        eq(int, rpc_methods_add(&t, health, "Watch", h_watch, RPC_SERVER_STREAMING, NULL), 0));
    const rpc_method *m = rpc_methods_find(&t, S("/grpc.health.v1.Health/Check"));
    cr_assert(not(eq(ptr, (void *)m, NULL)));
    cr_assert(eq(str, m->path, "/grpc.health.v1.Health/Check"));
    cr_assert(m->handler == h_check);
    cr_assert(eq(ptr, m->data, &tag));
    cr_assert(eq(str, (char *)m->method->name, "Check"));
    cr_assert(eq(ptr, (void *)m->service, (void *)health));
    cr_assert(eq(ptr, (void *)m->method->input,
                 (void *)&grpc__health__v1__health_check_request__descriptor));
    m = rpc_methods_find(&t, S("/grpc.health.v1.Health/Watch"));
    cr_assert(not(eq(ptr, (void *)m, NULL)));
    cr_assert(eq(u32, m->flags, RPC_SERVER_STREAMING));
}

Test(rpc_method, unknown_method_is_enoent)
{
    cr_assert(eq(int, rpc_methods_add(&t, health, "Nope", h_check, 0, NULL), -ENOENT));
    cr_assert(eq(int, rpc_methods_add(&t, health, "check", h_check, 0, NULL), -ENOENT));
    cr_assert(eq(sz, t.len, 0));
}

Test(rpc_method, duplicate_is_eexist)
{
    cr_assert(eq(int, rpc_methods_add(&t, health, "Check", h_check, 0, NULL), 0));
    cr_assert(eq(int, rpc_methods_add(&t, health, "Check", h_watch, 0, NULL), -EEXIST));
    cr_assert(eq(sz, t.len, 1));
    /* Also after the table was sorted by a lookup. */
    cr_assert(not(eq(ptr, (void *)rpc_methods_find(&t, S("/grpc.health.v1.Health/Check")), NULL)));
    cr_assert(eq(int, rpc_methods_add(&t, health, "Check", h_watch, 0, NULL), -EEXIST));
}

Test(rpc_method, find_misses)
{
    cr_assert(eq(ptr, (void *)rpc_methods_find(&t, S("/grpc.health.v1.Health/Check")), NULL));
    cr_assert(eq(int, rpc_methods_add(&t, health, "Check", h_check, 0, NULL), 0));
    static const char *const misses[] = {
        "",
        "/",
        "/grpc.health.v1.Health/",
        "/grpc.health.v1.Health/Chec",
        "/grpc.health.v1.Health/Checkx",
        "/grpc.health.v1.Health/check",
        "/grpc.health.v1.health/Check",
        "grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
    };
    cr_assert(eq(ptr, (void *)rpc_methods_find(&t, NULL, 0), NULL));
    for (size_t i = 0; i < sizeof(misses) / sizeof(misses[0]); i++)
        cr_assert(eq(ptr, (void *)rpc_methods_find(&t, misses[i], strlen(misses[i])), NULL), "%s",
                  misses[i]);
    /* (ptr, len): bytes after len are not part of the path. */
    cr_assert(
        not(eq(ptr, (void *)rpc_methods_find(&t, "/grpc.health.v1.Health/CheckXYZ", 28), NULL)));
}

Test(rpc_method, many_methods_sorted_lookup)
{
    const ProtobufCServiceDescriptor *svcs[] = {testing, health};
    size_t total = 0;

    for (size_t s = 0; s < 2; s++) {
        for (unsigned i = 0; i < svcs[s]->n_methods; i++) {
            cr_assert(eq(
                int,
                rpc_methods_add(&t, svcs[s], svcs[s]->methods[i].name, h_check, 0, (void *)svcs[s]),
                0));
            total++;
        }
    }
    cr_assert(eq(sz, t.len, total));
    for (size_t s = 0; s < 2; s++) {
        for (unsigned i = 0; i < svcs[s]->n_methods; i++) {
            char path[256];
            int n = snprintf(path, sizeof(path), "/%s/%s", svcs[s]->name, svcs[s]->methods[i].name);
            const rpc_method *m = rpc_methods_find(&t, path, (size_t)n);
            cr_assert(not(eq(ptr, (void *)m, NULL)), "%s", path);
            cr_assert(eq(str, m->path, path));
            cr_assert(eq(ptr, m->data, (void *)svcs[s]));
        }
    }
    cr_assert(not(eq(ptr, (void *)rpc_methods_find(&t, S("/arbiter.v1.Testing/Echo")), NULL)));
}

Test(rpc_method, deinit_twice_is_safe)
{
    cr_assert(eq(int, rpc_methods_add(&t, health, "Check", h_check, 0, NULL), 0));
    rpc_methods_deinit(&t);
    rpc_methods_deinit(&t);
    rpc_methods_init(&t);
}

Test(rpc_method, status_names)
{
    cr_assert(eq(str, (char *)rpc_status_name(RPC_OK), "OK"));
    cr_assert(eq(str, (char *)rpc_status_name(RPC_INVALID_ARGUMENT), "INVALID_ARGUMENT"));
    cr_assert(eq(str, (char *)rpc_status_name(RPC_RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED"));
    cr_assert(eq(str, (char *)rpc_status_name(RPC_UNAUTHENTICATED), "UNAUTHENTICATED"));
    cr_assert(eq(str, (char *)rpc_status_name((rpc_status)17), "UNKNOWN"));
    cr_assert(eq(str, (char *)rpc_status_name((rpc_status)-1), "UNKNOWN"));
    for (int s = 0; s < RPC_STATUS_COUNT; s++)
        cr_assert(not(eq(ptr, (void *)rpc_status_name((rpc_status)s), NULL)));
}
