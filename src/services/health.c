/* grpc.health.v1.Health (grpc/grpc doc/health-checking.md): Check answers
 * the current status; Watch streams the current status, then every change.
 * Known service names are "" (the whole server) and every registered
 * service's full name; all follow the overall status, which follows the
 * database pool (SERVING when the server runs without one). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "health.pb-c.h"
#include "rpc/call.h"
#include "services/services.h"
#include "services/svc_table.h"
#include "util/list.h"
#include "util/log.h"

#define ST(x) GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__##x

struct health {
    const rpc_methods *methods; /* borrowed: the services that exist */
    bool serving;
    bool shutting_down;
    list_node watchers; /* struct watcher */
};

/* One open Watch stream; lives in its call's arena and leaves the list
 * before the call ends (cancel hook or shutdown). */
struct watcher {
    list_node link;
    rpc_call *call;
    bool known; /* the service name is known (else SERVICE_UNKNOWN forever) */
    int last;   /* last status sent */
};

static bool service_known(const struct health *h, const char *name)
{
    const rpc_methods *t = h->methods;

    if (!name || !*name)
        return true;
    for (size_t i = 0; i < t->len; i++) {
        if (strcmp(t->items[i].service->name, name) == 0)
            return true;
    }
    return false;
}

static int overall(const struct health *h)
{
    return h->serving && !h->shutting_down ? ST(SERVING) : ST(NOT_SERVING);
}

static void health_check(rpc_call *call, const ProtobufCMessage *request, void *data)
{
    const Grpc__Health__V1__HealthCheckRequest *req = (const void *)request;
    const struct health *h = svc_entry_env(data)->health;
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

    if (!service_known(h, req->service)) {
        rpc_call_finish(call, RPC_NOT_FOUND, "unknown service");
        return;
    }
    resp.status = overall(h);
    rpc_call_reply(call, &resp.base);
}

static int watch_send(struct watcher *w, int status)
{
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

    resp.status = status;
    w->last = status;
    return rpc_call_send(w->call, &resp.base);
}

static void on_watch_cancel(void *data)
{
    struct watcher *w = data;

    list_remove(&w->link);
}

static void health_watch(rpc_call *call, const ProtobufCMessage *request, void *data)
{
    const Grpc__Health__V1__HealthCheckRequest *req = (const void *)request;
    struct health *h = svc_entry_env(data)->health;
    struct watcher *w = rpc_call_alloc(call, sizeof(*w));

    if (!w) {
        svc_oom(call);
        return;
    }
    if (h->shutting_down) {
        rpc_call_finish(call, RPC_UNAVAILABLE, "server is shutting down");
        return;
    }
    w->call = call;
    w->known = service_known(h, req->service);
    if (watch_send(w, w->known ? overall(h) : ST(SERVICE_UNKNOWN)) < 0) {
        rpc_call_finish(call, RPC_INTERNAL, "cannot send status");
        return;
    }
    list_push(&h->watchers, &w->link);
    rpc_call_on_cancel(call, on_watch_cancel, w);
}

/* Sends the overall status to every watcher of a known service whose last
 * status differs. */
static void notify(struct health *h)
{
    list_node *n, *next;
    int st = overall(h);

    for (n = h->watchers.next; n != &h->watchers; n = next) {
        struct watcher *w = container_of(n, struct watcher, link);
        next = n->next;
        if (!w->known || w->last == st)
            continue;
        if (watch_send(w, st) < 0) {
            list_remove(&w->link);
            rpc_call_finish(w->call, RPC_INTERNAL, "cannot send status");
        }
    }
}

static const svc_method methods[] = {
    {.name = "Check", .flags = SVC_READ_ONLY, .handler = health_check},
    {.name = "Watch", .flags = SVC_READ_ONLY | SVC_STREAMING, .handler = health_watch},
};

static int start(svc_env *env)
{
    struct health *h = calloc(1, sizeof(*h));

    if (!h)
        return -ENOMEM;
    h->methods = &env->rpc->methods;
    h->serving = true; /* until a pool says otherwise */
    list_init(&h->watchers);
    env->health = h;
    return svc_table_register(env, &grpc__health__v1__health__descriptor, methods,
                              sizeof(methods) / sizeof(methods[0]));
}

static void serving_changed(svc_env *env, bool serving)
{
    struct health *h = env->health;

    if (!h || h->serving == serving)
        return;
    h->serving = serving;
    notify(h);
}

/* Shutdown began: NOT_SERVING to every Watch stream, then they end with
 * UNAVAILABLE so clients see the stream end. */
static void on_shutdown(svc_env *env)
{
    struct health *h = env->health;

    if (!h || h->shutting_down)
        return;
    h->shutting_down = true;
    notify(h); /* NOT_SERVING to everyone who watches */
    while (!list_empty(&h->watchers)) {
        struct watcher *w = container_of(h->watchers.next, struct watcher, link);
        list_remove(&w->link);
        rpc_call_finish(w->call, RPC_UNAVAILABLE, "server is shutting down");
    }
}

static void stop(svc_env *env)
{
    free(env->health);
    env->health = NULL;
}

const struct svc_service svc_health = {
    .name = "Health",
    .start = start,
    .serving_changed = serving_changed,
    .shutdown = on_shutdown,
    .stop = stop,
};
