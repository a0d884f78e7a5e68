/* services/svc_table: every service's method table compiles against the
 * descriptors (a typo in a path or a type that does not fit fails here,
 * before any integration test), and each kind of mistake in a table is
 * refused at registration. */
#include <errno.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "rpc/server.h"
#include "services/services.h"
#include "services/svc_table.h"
#include "testing.pb-c.h"
#include "util/log.h"

static uv_loop_t loop;
static struct cfg cfg;
static rpc_server rpc;
static svc_env env;

static void setup(void)
{
    log_level_current = LOG_ERROR;
    cr_assert(eq(int, uv_loop_init(&loop), 0));
    cfg_defaults(&cfg);
    cfg.enable_test_service = true;
    rpc_server_init(&rpc, &loop, cfg.max_message_bytes, 0, NULL);
    svc_env_init(&env, &loop, &cfg, &rpc);
}

static void teardown(void)
{
    size_t n;
    const struct svc_service *const *all = svc_services(&n);

    for (size_t i = 0; i < n; i++)
        if (all[i]->stop)
            all[i]->stop(&env);
    svc_env_deinit(&env);
    rpc_server_deinit(&rpc);
    cr_assert(eq(int, uv_loop_close(&loop), 0));
}

TestSuite(svc_table, .init = setup, .fini = teardown, .timeout = 5);

Test(svc_table, every_service_compiles)
{
    size_t n;
    const struct svc_service *const *all = svc_services(&n);

    for (size_t i = 0; i < n; i++)
        cr_expect(eq(int, all[i]->start(&env), 0), "service %s", all[i]->name);
    cr_expect(not(eq(ptr, (void *)rpc_methods_find(&rpc.methods, "/arbiter.v1.AgentRegistry/GetAgent",
                                                   34),
                     NULL)));
    cr_expect(gt(sz, rpc.methods.len, 20));
}

#define SVC (&arbiter__v1__testing__descriptor)
#define ONE(...) ((const svc_method[]){__VA_ARGS__})

/* DbProbe serves as the method of every table below. */
static int reg(const svc_method *m)
{
    return svc_table_register(&env, SVC, m, 1);
}

Test(svc_table, refuses_what_does_not_fit)
{
    cr_expect(eq(int, reg(ONE({.name = "NoSuchMethod", .stmts = {{"SELECT 1"}}})), -EINVAL));
    cr_expect(eq(int, reg(ONE({.name = "DbProbe"})), -EINVAL), "neither SQL nor handler");
    cr_expect(eq(int, reg(ONE({.name = "DbProbe", .stmts = {{"SELECT $1", SVC_PARAMS("nope")}}})),
                 -EINVAL), "unknown request field");
    cr_expect(eq(int, reg(ONE({.name = "DbProbe", .stmts = {{"SELECT 1"}},
                               .checks = SVC_CHECKS(SVC_UUID("sleep_ms"))})),
                 -EINVAL), "a UUID rule on an int32");
    cr_expect(eq(int, reg(ONE({.name = "DbProbe", .stmts = {{"SELECT 1"}}, .reply = SVC_ROWS,
                               .field = "tenant"})),
                 -EINVAL), "rows into a string field");
    cr_expect(eq(int, reg(ONE({.name = "DbProbe", .stmts = {{"SELECT 1"}}, .reply = SVC_COUNT,
                               .field = "tenant"})),
                 -EINVAL), "a count into a string field");
    cr_expect(eq(int, reg(ONE({.name = "DbProbe", .stmts = {{"SELECT 1"}}, .reply = SVC_PAGE,
                               .field = "nope", .keys = SVC_KEYS("id")})),
                 -EINVAL), "a page without its fields");
}

Test(svc_table, counts_and_duplicates)
{
    cr_expect(eq(int, reg(ONE({.name = "DbProbe", .stmts = {{"DELETE FROM x"}},
                               .reply = SVC_COUNT, .field = "count"})),
                 0));
    cr_expect(eq(int, reg(ONE({.name = "DbProbe", .stmts = {{"SELECT 1"}}})), -EEXIST),
              "registered twice");
}
