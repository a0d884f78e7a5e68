/* arbiter.v1.Testing: methods only the test suite needs, registered only
 * with --enable-test-service. Echo reflects the request and the metadata
 * the server decoded; NeverAnswer never finishes (deadline, cancellation
 * and shutdown tests); StreamN streams |count| messages |interval_ms| apart.
 * DbProbe lives in testing_db.c. */
#include <errno.h>
#include <stdlib.h>

#include "rpc/call.h"
#include "services/services.h"
#include "services/svc_table.h"
#include "testing.pb-c.h"
#include "util/log.h"

static void echo(rpc_call *call, const ProtobufCMessage *request, void *data)
{
    const Arbiter__V1__EchoRequest *req = (const void *)request;
    Arbiter__V1__EchoResponse resp = ARBITER__V1__ECHO_RESPONSE__INIT;
    size_t bin_len = 0;
    const char *bin = rpc_call_metadata(call, "x-test-bin", &bin_len);

    (void)data;
    /* Borrowing from the request is fine: both live in the call's arena. */
    resp.text = req->text;
    resp.payload = req->payload;
    resp.tenant_id = (char *)(rpc_call_tenant(call) ? rpc_call_tenant(call) : "");
    resp.user_id = (char *)(rpc_call_user(call) ? rpc_call_user(call) : "");
    resp.session_id = (char *)(rpc_call_session(call) ? rpc_call_session(call) : "");
    if (bin) {
        resp.bin_value.data = (uint8_t *)bin;
        resp.bin_value.len = bin_len;
    }
    rpc_call_reply(call, &resp.base);
}

static void never_cancelled(void *data)
{
    (void)data;
    log_debug("a NeverAnswer call was cancelled");
}

static void never_answer(rpc_call *call, const ProtobufCMessage *request, void *data)
{
    (void)request;
    (void)data;
    /* Nothing to detach, but the hook documents that the call may end. */
    rpc_call_on_cancel(call, never_cancelled, NULL);
}

/* A StreamN in progress. Heap-allocated (not in the arena) because the
 * timer handle must outlive the call until its close callback. */
struct streamer {
    uv_timer_t timer;
    rpc_call *call; /* NULL once the call ended */
    int32_t left, sent;
};

static void on_streamer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void streamer_stop(struct streamer *s)
{
    s->call = NULL;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_streamer_closed);
}

static void on_stream_cancel(void *data)
{
    streamer_stop(data);
}

/* Sends one message; returns false when the stream is over. */
static bool stream_one(struct streamer *s)
{
    Arbiter__V1__EchoResponse resp = ARBITER__V1__ECHO_RESPONSE__INIT;
    rpc_call *call = s->call;

    resp.text = arena_printf(rpc_call_arena(call), "message %d", (int)s->sent);
    if (!resp.text || rpc_call_send(call, &resp.base) < 0) {
        rpc_call_finish(call, RPC_INTERNAL, "cannot send");
        return false;
    }
    s->sent++;
    if (--s->left > 0)
        return true;
    rpc_call_finish(call, RPC_OK, NULL);
    return false;
}

static void on_stream_tick(uv_timer_t *t)
{
    struct streamer *s = t->data;

    if (!stream_one(s))
        streamer_stop(s);
}

static void stream_n(rpc_call *call, const ProtobufCMessage *request, void *data)
{
    const Arbiter__V1__StreamRequest *req = (const void *)request;
    struct streamer *s;

    if (req->count < 0 || req->interval_ms < 0) {
        rpc_call_finish(call, RPC_INVALID_ARGUMENT, "count and interval_ms must be >= 0");
        return;
    }
    if (req->count == 0) {
        rpc_call_finish(call, RPC_OK, NULL);
        return;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        svc_oom(call);
        return;
    }
    s->call = call;
    s->left = req->count;
    uv_timer_init(svc_entry_env(data)->loop, &s->timer);
    s->timer.data = s;
    /* The first message goes now, the others |interval_ms| apart. */
    if (!stream_one(s)) {
        streamer_stop(s);
        return;
    }
    rpc_call_on_cancel(call, on_stream_cancel, s);
    uv_timer_start(&s->timer, on_stream_tick, (uint64_t)req->interval_ms,
                   (uint64_t)(req->interval_ms > 0 ? req->interval_ms : 1));
}

static const svc_method methods[] = {
    {.name = "Echo", .handler = echo},
    {.name = "NeverAnswer", .handler = never_answer},
    {.name = "StreamN", .flags = SVC_STREAMING, .handler = stream_n},
};

static int start(svc_env *env)
{
    int rv;

    if (!env->cfg->enable_test_service)
        return 0;
    rv = svc_table_register(env, &arbiter__v1__testing__descriptor, methods,
                            sizeof(methods) / sizeof(methods[0]));
    return rv == 0 ? svc_testing_db_start(env) : rv;
}

const struct svc_service svc_testing = {.name = "Testing", .start = start};
