#include "services/svc.h"

#include <string.h>

#include "services/services.h"

const struct svc_service *const *svc_services(size_t *n)
{
    static const struct svc_service *const all[] = {
        &svc_health, &svc_agent_registry, &svc_admin, &svc_testing, &svc_verification,
        &svc_web_navigator, &svc_knowledge, &svc_knowledge_graph, &svc_orchestrator,
    };

    *n = sizeof(all) / sizeof(all[0]);
    return all;
}

void svc_env_init(svc_env *env, uv_loop_t *loop, const struct cfg *cfg, rpc_server *rpc)
{
    memset(env, 0, sizeof(*env));
    env->loop = loop;
    env->cfg = cfg;
    env->rpc = rpc;
    env->started_at_ms = uv_now(loop);
    list_init(&env->entries);
}

/* The db layer's cancel hook is the call's: same signature, no wrapper. */
static void set_cancel(void *owner, db_cancel_fn fn, void *data)
{
    rpc_call_on_cancel(owner, fn, data);
}

static void set_in_doubt(void *owner, bool in_doubt)
{
    rpc_call_set_in_doubt(owner, in_doubt);
}

db_txn *svc_txn_new(rpc_call *call, const svc_env *env)
{
    db_ctx ctx = {
        .arena = rpc_call_arena(call),
        .tenant = rpc_call_tenant(call),
        .user = rpc_call_user(call),
        .session = rpc_call_session(call),
        .deadline_ms = rpc_call_deadline_ms(call),
        .read_only = rpc_call_read_only(call),
        .set_cancel = set_cancel,
        .set_in_doubt = set_in_doubt,
        .owner = call,
    };
    db_txn *t = db_txn_new(env->pool, &ctx);

    if (t == NULL)
        svc_oom(call);
    return t;
}

void svc_oom(rpc_call *call)
{
    rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
}

void *svc_alloc_array(rpc_call *call, size_t n, size_t size)
{
    if (n == 0 || n > SIZE_MAX / size)
        return NULL;
    return rpc_call_alloc(call, n * size);
}
