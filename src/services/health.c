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
#include "rpc/method.h"
#include "server.h"
#include "services/services.h"
#include "util/list.h"
#include "util/log.h"

#define ST(x) GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__##x

struct health {
    struct server *srv; /* borrowed */
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

static bool service_known(struct server *srv, const char *name)
{
    const rpc_methods *t = &srv->methods;

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
    struct server *srv = data;
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

    if (!service_known(srv, req->service)) {
        rpc_call_finish(call, RPC_NOT_FOUND, "unknown service");
        return;
    }
    resp.status = overall(srv->health);
    rpc_call_reply(call, &resp.base);
}

static int watch_send(struct watcher *w, int status)
{
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

    resp.status = status;
    w->last = status;
    return rpc_call_send(w->call, &resp.base);
}

static void on_watch_cancel(rpc_call *call, void *data)
{
    struct watcher *w = data;

    (void)call;
    list_remove(&w->link);
}

static void health_watch(rpc_call *call, const ProtobufCMessage *request, void *data)
{
    const Grpc__Health__V1__HealthCheckRequest *req = (const void *)request;
    struct server *srv = data;
    struct watcher *w = rpc_call_alloc(call, sizeof(*w));

    if (!w) {
        rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    if (srv->health->shutting_down) {
        rpc_call_finish(call, RPC_UNAVAILABLE, "server is shutting down");
        return;
    }
    w->call = call;
    w->known = service_known(srv, req->service);
    if (watch_send(w, w->known ? overall(srv->health) : ST(SERVICE_UNKNOWN)) < 0) {
        rpc_call_finish(call, RPC_INTERNAL, "cannot send status");
        return;
    }
    list_push(&srv->health->watchers, &w->link);
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

int svc_health_register(struct server *srv)
{
    const ProtobufCServiceDescriptor *d = &grpc__health__v1__health__descriptor;
    struct health *h = calloc(1, sizeof(*h));
    int rv;

    if (!h)
        return -ENOMEM;
    h->srv = srv;
    h->serving = true; /* until a pool says otherwise */
    list_init(&h->watchers);
    srv->health = h;
    rv = rpc_methods_add(&srv->methods, d, "Check", health_check, RPC_UNARY, srv);
    if (rv == 0)
        rv = rpc_methods_add(&srv->methods, d, "Watch", health_watch, RPC_SERVER_STREAMING, srv);
    return rv;
}

void svc_health_set_serving(struct server *srv, int serving)
{
    struct health *h = srv->health;

    if (!h || h->serving == (serving != 0))
        return;
    h->serving = serving != 0;
    notify(h);
}

void svc_health_shutdown(struct server *srv)
{
    struct health *h = srv->health;

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

void svc_health_free(struct server *srv)
{
    free(srv->health);
    srv->health = NULL;
}
