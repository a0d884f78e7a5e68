/* libarbiter against the real arbiterd (started here on a temporary socket
 * with --enable-test-service): Health/Check, many concurrent calls
 * multiplexed on one connection (each answer must match its own request,
 * including a 3 MiB payload and binary metadata), server streaming, the
 * client-side deadline, cancellation, UNIMPLEMENTED, a failed connect and
 * closing a client with calls in flight.
 *
 * Environment: ARBITERD (else exit 77 = SKIP), ARBITER_TEST_DATABASE_URL
 * (optional; passed to the server). A plain exit-code test: one server for
 * every check, so the run stays short.
 */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arbiter.h"
#include "health.pb-c.h"
#include "testing.pb-c.h"
#include "util/status.h"

extern char **environ;

struct env {
    char dir[64];
    char socket[100];
    pid_t server;
    int failures;
};

#define CHECK(e, cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: %s: ", __func__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            (e)->failures++;                                                                       \
        }                                                                                          \
    } while (0)

/* What a call ended with, copied out of the done callback. */
struct outcome {
    bool done;
    int status;
    char message[256];
    int transport_error;
    size_t messages;
    uint8_t *resp; /* owned */
    size_t resp_len;
    uint64_t ended_at;
    /* Batch bookkeeping: the client is closed when the last call ends. */
    int *pending;
    arbiter_client *client;
};

static void on_done(arbiter_call *call, const arbiter_result *r, void *user)
{
    struct outcome *o = user;

    o->done = true;
    o->status = r->status;
    snprintf(o->message, sizeof o->message, "%s", r->message);
    o->transport_error = r->transport_error;
    o->messages = r->messages;
    o->ended_at = uv_hrtime() / 1000000;
    if (r->response) {
        o->resp = malloc(r->response_len + 1);
        memcpy(o->resp, r->response, r->response_len);
        o->resp_len = r->response_len;
    }
    if (o->pending && --*o->pending == 0)
        arbiter_client_close(o->client);
}

static void outcome_clear(struct outcome *o)
{
    free(o->resp);
    memset(o, 0, sizeof *o);
}

/* One call on a fresh client and loop; fills |o|. */
static void run_one(struct env *e, const char *path, const ProtobufCMessage *req,
                    const arbiter_metadata *md, size_t n_md, uint64_t timeout_ms, struct outcome *o)
{
    uv_loop_t loop;
    arbiter_client *c;
    int pending = 1;
    struct arbiter_call_opts opts = {
        .path = path,
        .metadata = md,
        .n_metadata = n_md,
        .timeout_ms = timeout_ms,
        .on_done = on_done,
        .user = o,
    };

    uv_loop_init(&loop);
    CHECK(e, arbiter_client_new(&loop, e->socket, &c) == 0, "client_new");
    o->pending = &pending;
    o->client = c;
    CHECK(e, arbiter_call_start_message(c, &opts, req, NULL) == 0, "call_start %s", path);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(e, uv_loop_close(&loop) == 0, "loop closes: every handle was closed");
    o->pending = NULL;
    o->client = NULL;
}

static void test_health(struct env *e)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    Grpc__Health__V1__HealthCheckResponse *resp = NULL;
    struct outcome o = {0};

    /* The pool may still be connecting right after start-up. */
    for (int i = 0; i < 100; i++) {
        outcome_clear(&o);
        run_one(e, "/grpc.health.v1.Health/Check", &req.base, NULL, 0, 2000, &o);
        if (o.status != RPC_OK)
            break;
        resp = grpc__health__v1__health_check_response__unpack(NULL, o.resp_len, o.resp);
        if (resp &&
            resp->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING)
            break;
        grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
        resp = NULL;
        usleep(50000);
    }
    CHECK(e, o.done && o.status == RPC_OK, "status %d: %s", o.status, o.message);
    CHECK(e, resp != NULL, "a HealthCheckResponse");
    CHECK(e, resp && resp->status == 1, "SERVING, got %d", resp ? (int)resp->status : -1);
    grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
    outcome_clear(&o);

    req.service = "no.such.Service";
    run_one(e, "/grpc.health.v1.Health/Check", &req.base, NULL, 0, 2000, &o);
    CHECK(e, o.status == RPC_NOT_FOUND, "unknown service: NOT_FOUND, got %d", o.status);
    outcome_clear(&o);
}

#define N_CONCURRENT 64

static size_t payload_size(int i)
{
    if (i == 0)
        return 3u << 20; /* larger than the default 64 KiB windows */
    if (i == 1)
        return 1u << 20;
    return (size_t)(i * 997) % 20000;
}

static void fill_payload(uint8_t *p, size_t n, int i)
{
    for (size_t k = 0; k < n; k++)
        p[k] = (uint8_t)(k * 31 + (size_t)i);
}

/* Checks that the answer to call |i| echoes exactly what call |i| sent. */
static void check_echo(struct env *e, int i, const struct outcome *o)
{
    Arbiter__V1__EchoResponse *r;
    char text[32], tenant[32];
    uint8_t bin[3] = {0x00, 0xff, (uint8_t)i};
    size_t n = payload_size(i);
    uint8_t *want = malloc(n + 1);

    snprintf(text, sizeof text, "call-%d", i);
    snprintf(tenant, sizeof tenant, "tenant-%d", i);
    fill_payload(want, n, i);
    CHECK(e, o->done && o->status == RPC_OK, "call %d: status %d: %s", i, o->status, o->message);
    r = arbiter__v1__echo_response__unpack(NULL, o->resp_len, o->resp);
    CHECK(e, r != NULL, "call %d: an EchoResponse", i);
    if (r) {
        CHECK(e, strcmp(r->text, text) == 0, "call %d: text '%s'", i, r->text);
        CHECK(e, strcmp(r->tenant_id, tenant) == 0, "call %d: tenant '%s'", i, r->tenant_id);
        CHECK(e, r->payload.len == n && memcmp(r->payload.data, want, n) == 0,
              "call %d: payload of %zu bytes, got %zu", i, n, r->payload.len);
        CHECK(e, r->bin_value.len == 3 && memcmp(r->bin_value.data, bin, 3) == 0,
              "call %d: x-test-bin decoded (%zu bytes)", i, r->bin_value.len);
    }
    arbiter__v1__echo_response__free_unpacked(r, NULL);
    free(want);
}

static void test_concurrent(struct env *e)
{
    struct outcome *o = calloc(N_CONCURRENT, sizeof *o);
    uv_loop_t loop;
    arbiter_client *c;
    int pending = N_CONCURRENT;

    uv_loop_init(&loop);
    CHECK(e, arbiter_client_new(&loop, e->socket, &c) == 0, "client_new");
    for (int i = 0; i < N_CONCURRENT; i++) {
        Arbiter__V1__EchoRequest req = ARBITER__V1__ECHO_REQUEST__INIT;
        char text[32], tenant[32];
        uint8_t bin[3] = {0x00, 0xff, (uint8_t)i};
        arbiter_metadata md[] = {
            {.key = "x-tenant-id", .value = tenant},
            {.key = "x-test-bin", .value = (const char *)bin, .value_len = 3},
        };
        struct arbiter_call_opts opts = {
            .path = "/arbiter.v1.Testing/Echo",
            .metadata = md,
            .n_metadata = 2,
            .timeout_ms = 20000,
            .on_done = on_done,
            .user = &o[i],
        };

        snprintf(text, sizeof text, "call-%d", i);
        snprintf(tenant, sizeof tenant, "tenant-%d", i);
        req.text = text;
        req.payload.len = payload_size(i);
        req.payload.data = malloc(req.payload.len + 1);
        fill_payload(req.payload.data, req.payload.len, i);
        o[i].pending = &pending;
        o[i].client = c;
        CHECK(e, arbiter_call_start_message(c, &opts, &req.base, NULL) == 0, "start %d", i);
        free(req.payload.data);
    }
    CHECK(e, arbiter_client_active_calls(c) == N_CONCURRENT, "all calls in flight");
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(e, uv_loop_close(&loop) == 0, "loop closes");
    for (int i = 0; i < N_CONCURRENT; i++) {
        check_echo(e, i, &o[i]);
        outcome_clear(&o[i]);
    }
    free(o);
}

#define N_MANY 600

/* More calls than the server's --max-concurrent-streams (256): nghttp2
 * queues the rest and every call still completes. */
static void test_many_streams(struct env *e)
{
    struct outcome *o = calloc(N_MANY, sizeof *o);
    Arbiter__V1__EchoRequest req = ARBITER__V1__ECHO_REQUEST__INIT;
    struct arbiter_call_opts opts = {
        .path = "/arbiter.v1.Testing/Echo",
        .timeout_ms = 20000,
        .on_done = on_done,
    };
    uv_loop_t loop;
    arbiter_client *c;
    int pending = N_MANY, ok = 0;

    uv_loop_init(&loop);
    CHECK(e, arbiter_client_new(&loop, e->socket, &c) == 0, "client_new");
    req.text = "many";
    for (int i = 0; i < N_MANY; i++) {
        o[i].pending = &pending;
        o[i].client = c;
        opts.user = &o[i];
        CHECK(e, arbiter_call_start_message(c, &opts, &req.base, NULL) == 0, "start %d", i);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    for (int i = 0; i < N_MANY; i++) {
        ok += o[i].status == RPC_OK && o[i].resp_len > 0;
        outcome_clear(&o[i]);
    }
    CHECK(e, ok == N_MANY, "%d of %d calls OK", ok, N_MANY);
    free(o);
}

struct stream_state {
    struct outcome out;
    int seen;
    bool in_order;
};

static void on_stream_message(arbiter_call *call, const uint8_t *data, size_t len, void *user)
{
    struct stream_state *s = user;
    Arbiter__V1__EchoResponse *r = arbiter__v1__echo_response__unpack(NULL, len, data);

    s->seen++;
    if (!r)
        s->in_order = false;
    arbiter__v1__echo_response__free_unpacked(r, NULL);
}

static void on_stream_done(arbiter_call *call, const arbiter_result *r, void *user)
{
    on_done(call, r, &((struct stream_state *)user)->out);
}

static void test_streaming(struct env *e)
{
    Arbiter__V1__StreamRequest req = ARBITER__V1__STREAM_REQUEST__INIT;
    struct stream_state s = {.in_order = true};
    int pending = 1;
    struct arbiter_call_opts opts = {
        .path = "/arbiter.v1.Testing/StreamN",
        .timeout_ms = 10000,
        .on_message = on_stream_message,
        .on_done = on_stream_done,
        .user = &s,
    };
    uv_loop_t loop;
    arbiter_client *c;

    req.count = 5;
    req.interval_ms = 10;
    uv_loop_init(&loop);
    CHECK(e, arbiter_client_new(&loop, e->socket, &c) == 0, "client_new");
    s.out.pending = &pending;
    s.out.client = c;
    CHECK(e, arbiter_call_start_message(c, &opts, &req.base, NULL) == 0, "start");
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    CHECK(e, s.out.status == RPC_OK, "status %d: %s", s.out.status, s.out.message);
    CHECK(e, s.seen == 5 && s.out.messages == 5, "5 messages, got %d", s.seen);
    CHECK(e, s.in_order, "every message decodes");
    CHECK(e, s.out.resp == NULL, "streaming calls deliver through on_message only");
    outcome_clear(&s.out);
}

static void test_deadline(struct env *e)
{
    Arbiter__V1__Empty req = ARBITER__V1__EMPTY__INIT;
    struct outcome o = {0};
    uint64_t start = uv_hrtime() / 1000000;

    run_one(e, "/arbiter.v1.Testing/NeverAnswer", &req.base, NULL, 0, 100, &o);
    CHECK(e, o.status == RPC_DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED, got %d: %s", o.status,
          o.message);
    CHECK(e, o.ended_at - start >= 90 && o.ended_at - start < 1000, "ended after %llu ms",
          (unsigned long long)(o.ended_at - start));
    outcome_clear(&o);
}

struct cancel_state {
    arbiter_call *victim;
    arbiter_client *client;
    struct outcome never, echo;
    int pending;
};

static void on_cancel_timer(uv_timer_t *t)
{
    struct cancel_state *s = t->data;

    arbiter_call_cancel(s->victim);
    arbiter_call_cancel(s->victim); /* ended already: a no-op */
    uv_close((uv_handle_t *)t, NULL);
}

/* Cancelling one call leaves the connection usable for the others. */
static void test_cancel(struct env *e)
{
    Arbiter__V1__Empty empty = ARBITER__V1__EMPTY__INIT;
    Arbiter__V1__EchoRequest echo = ARBITER__V1__ECHO_REQUEST__INIT;
    struct cancel_state s = {.pending = 2};
    struct arbiter_call_opts never = {
        .path = "/arbiter.v1.Testing/NeverAnswer",
        .on_done = on_done,
        .user = &s.never,
    };
    struct arbiter_call_opts after = {
        .path = "/arbiter.v1.Testing/Echo",
        .timeout_ms = 5000,
        .on_done = on_done,
        .user = &s.echo,
    };
    uv_loop_t loop;
    uv_timer_t timer;

    uv_loop_init(&loop);
    CHECK(e, arbiter_client_new(&loop, e->socket, &s.client) == 0, "client_new");
    s.never.pending = s.echo.pending = &s.pending;
    s.never.client = s.echo.client = s.client;
    CHECK(e, arbiter_call_start_message(s.client, &never, &empty.base, &s.victim) == 0, "start");
    uv_timer_init(&loop, &timer);
    timer.data = &s;
    uv_timer_start(&timer, on_cancel_timer, 50, 0);
    echo.text = "still there";
    CHECK(e, arbiter_call_start_message(s.client, &after, &echo.base, NULL) == 0, "start echo");
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    CHECK(e, s.never.status == RPC_CANCELLED, "CANCELLED, got %d", s.never.status);
    CHECK(e, s.echo.status == RPC_OK, "the other call: %d %s", s.echo.status, s.echo.message);
    outcome_clear(&s.never);
    outcome_clear(&s.echo);
}

static void test_unimplemented(struct env *e)
{
    Arbiter__V1__Empty req = ARBITER__V1__EMPTY__INIT;
    struct outcome o = {0};

    run_one(e, "/arbiter.v1.NoSuchService/Nope", &req.base, NULL, 0, 2000, &o);
    CHECK(e, o.status == RPC_UNIMPLEMENTED, "UNIMPLEMENTED, got %d: %s", o.status, o.message);
    CHECK(e, o.transport_error == 0, "a server status, not a transport error");
    outcome_clear(&o);
}

static void test_connect_failure(struct env *e)
{
    Arbiter__V1__Empty req = ARBITER__V1__EMPTY__INIT;
    struct outcome o = {0};
    struct env bad = *e;

    snprintf(bad.socket, sizeof bad.socket, "%s/nobody-listens.sock", e->dir);
    run_one(&bad, "/grpc.health.v1.Health/Check", &req.base, NULL, 0, 2000, &o);
    e->failures = bad.failures;
    CHECK(e, o.status == RPC_UNAVAILABLE, "UNAVAILABLE, got %d", o.status);
    CHECK(e, o.transport_error == -ENOENT, "transport_error -ENOENT, got %d", o.transport_error);
    outcome_clear(&o);
}

/* Closing a client ends its calls with CANCELLED before it returns. */
static void test_close_in_flight(struct env *e)
{
    Arbiter__V1__Empty req = ARBITER__V1__EMPTY__INIT;
    struct outcome o[3] = {{0}};
    struct arbiter_call_opts opts = {.path = "/arbiter.v1.Testing/NeverAnswer", .on_done = on_done};
    uv_loop_t loop;
    arbiter_client *c;

    uv_loop_init(&loop);
    CHECK(e, arbiter_client_new(&loop, e->socket, &c) == 0, "client_new");
    for (int i = 0; i < 3; i++) {
        opts.user = &o[i];
        CHECK(e, arbiter_call_start_message(c, &opts, &req.base, NULL) == 0, "start %d", i);
    }
    uv_run(&loop, UV_RUN_NOWAIT); /* connect and send */
    arbiter_client_close(c);
    for (int i = 0; i < 3; i++) {
        CHECK(e, o[i].done && o[i].status == RPC_CANCELLED, "call %d CANCELLED, got %d", i,
              o[i].status);
        outcome_clear(&o[i]);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(e, uv_loop_close(&loop) == 0, "loop closes");
}

/* A fake server on the same loop: it accepts, then either answers garbage
 * instead of HTTP/2 (mode 0) or hangs up at once (mode 1). */
struct fake {
    uv_pipe_t server, conn;
    bool conn_open;
    int mode;
    uv_write_t w;
    struct outcome out;
    arbiter_client *client;
};

static void on_fake_connection(uv_stream_t *server, int status)
{
    struct fake *f = server->data;
    static char garbage[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    uv_buf_t b = uv_buf_init(garbage, sizeof garbage - 1);

    if (status < 0)
        return;
    uv_pipe_init(server->loop, &f->conn, 0);
    f->conn_open = true;
    if (uv_accept(server, (uv_stream_t *)&f->conn) < 0)
        return;
    if (f->mode == 0) {
        uv_write(&f->w, (uv_stream_t *)&f->conn, &b, 1, NULL);
    } else {
        uv_close((uv_handle_t *)&f->conn, NULL);
        f->conn_open = false;
    }
}

static void on_fake_done(arbiter_call *call, const arbiter_result *r, void *user)
{
    struct fake *f = user;

    on_done(call, r, &f->out);
    arbiter_client_close(f->client);
    uv_close((uv_handle_t *)&f->server, NULL);
    if (f->conn_open)
        uv_close((uv_handle_t *)&f->conn, NULL);
}

/* A peer that is not an HTTP/2 server, or that hangs up: every call ends
 * UNAVAILABLE with the transport error, nothing hangs or leaks. */
static void test_broken_peer(struct env *e, int mode, int want_error)
{
    Arbiter__V1__Empty req = ARBITER__V1__EMPTY__INIT;
    struct fake f = {.mode = mode};
    struct arbiter_call_opts o = {
        .path = "/grpc.health.v1.Health/Check",
        .timeout_ms = 5000,
        .on_done = on_fake_done,
        .user = &f,
    };
    char path[128];
    uv_loop_t loop;

    snprintf(path, sizeof path, "%s/fake%d.sock", e->dir, mode);
    uv_loop_init(&loop);
    uv_pipe_init(&loop, &f.server, 0);
    f.server.data = &f;
    CHECK(e, uv_pipe_bind(&f.server, path) == 0, "bind %s", path);
    CHECK(e, uv_listen((uv_stream_t *)&f.server, 4, on_fake_connection) == 0, "listen");
    CHECK(e, arbiter_client_new(&loop, path, &f.client) == 0, "client_new");
    CHECK(e, arbiter_call_start_message(f.client, &o, &req.base, NULL) == 0, "start");
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(e, uv_loop_close(&loop) == 0, "loop closes");
    CHECK(e, f.out.status == RPC_UNAVAILABLE, "mode %d: UNAVAILABLE, got %d: %s", mode,
          f.out.status, f.out.message);
    CHECK(e, want_error ? f.out.transport_error == want_error : f.out.transport_error < 0,
          "mode %d: transport error %d, got %d", mode, want_error, f.out.transport_error);
    outcome_clear(&f.out);
    unlink(path);
}

static int start_server(struct env *e, const char *arbiterd, const char *extra);
static int stop_server(struct env *e, bool signal_it);

struct shutdown_state {
    struct env *env;
    arbiter_client *client;
    struct outcome in_flight, late;
    int pending;
    int late_start;
    int step;
};

/* 100 ms: SIGTERM the server; 200 ms: start a call after its GOAWAY. */
static void on_shutdown_timer(uv_timer_t *t)
{
    struct shutdown_state *s = t->data;
    Arbiter__V1__EchoRequest echo = ARBITER__V1__ECHO_REQUEST__INIT;
    struct arbiter_call_opts o = {
        .path = "/arbiter.v1.Testing/Echo",
        .timeout_ms = 5000,
        .on_done = on_done,
        .user = &s->late,
    };

    if (s->step++ == 0) {
        kill(s->env->server, SIGTERM);
        return;
    }
    uv_close((uv_handle_t *)t, NULL);
    s->late.pending = &s->pending;
    s->late.client = s->client;
    s->late_start = arbiter_call_start_message(s->client, &o, &echo.base, NULL);
    if (s->late_start < 0 && --s->pending == 0)
        arbiter_client_close(s->client);
}

/* A server shutting down (GOAWAY, then --shutdown-timeout-ms): the call in
 * flight and a call started after the GOAWAY both end UNAVAILABLE, none
 * hangs. */
static void test_server_shutdown(struct env *outer, const char *arbiterd)
{
    Arbiter__V1__Empty empty = ARBITER__V1__EMPTY__INIT;
    struct env e = {0};
    struct shutdown_state s = {.env = &e, .pending = 2};
    struct arbiter_call_opts never = {
        .path = "/arbiter.v1.Testing/NeverAnswer",
        .on_done = on_done,
        .user = &s.in_flight,
    };
    uv_loop_t loop;
    uv_timer_t timer;
    uint64_t start;
    int rv;

    if (start_server(&e, arbiterd, "300") < 0) {
        CHECK(outer, 0, "second server starts");
        return;
    }
    uv_loop_init(&loop);
    CHECK(outer, arbiter_client_new(&loop, e.socket, &s.client) == 0, "client_new");
    s.in_flight.pending = &s.pending;
    s.in_flight.client = s.client;
    CHECK(outer, arbiter_call_start_message(s.client, &never, &empty.base, NULL) == 0, "start");
    uv_timer_init(&loop, &timer);
    timer.data = &s;
    uv_timer_start(&timer, on_shutdown_timer, 100, 100);
    start = uv_hrtime() / 1000000;
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    CHECK(outer, s.in_flight.status == RPC_UNAVAILABLE, "in flight: UNAVAILABLE, got %d: %s",
          s.in_flight.status, s.in_flight.message);
    CHECK(outer, s.late_start == -EPIPE || s.late.status == RPC_UNAVAILABLE,
          "after GOAWAY: start %d, status %d: %s", s.late_start, s.late.status, s.late.message);
    CHECK(outer, uv_hrtime() / 1000000 - start < 3000, "no call hangs");
    printf("shutdown: in flight ended %d (%s); late call: start %d, status %d (%s)\n",
           s.in_flight.status, s.in_flight.message, s.late_start, s.late.status, s.late.message);
    outcome_clear(&s.in_flight);
    outcome_clear(&s.late);
    rv = stop_server(&e, false);
    CHECK(outer, rv == 0, "arbiterd exits 0 after SIGTERM, got %d", rv);
}

static bool socket_answers(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok;

    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    ok = fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static int start_server(struct env *e, const char *arbiterd, const char *extra)
{
    const char *db = getenv("ARBITER_TEST_DATABASE_URL");
    const char *level = getenv("ARBITER_TEST_LOG_LEVEL");
    char *argv[14];
    int n = 0, status;

    snprintf(e->dir, sizeof e->dir, "/tmp/libarbiter-test-XXXXXX");
    if (!mkdtemp(e->dir))
        return -errno;
    snprintf(e->socket, sizeof e->socket, "%s/arbiterd.sock", e->dir);
    argv[n++] = (char *)arbiterd;
    argv[n++] = "serve";
    argv[n++] = "--socket";
    argv[n++] = e->socket;
    argv[n++] = "--enable-test-service";
    argv[n++] = "--log-level";
    argv[n++] = (char *)(level ? level : "warn");
    if (extra) {
        argv[n++] = "--shutdown-timeout-ms";
        argv[n++] = (char *)extra;
    }
    if (db && *db) {
        argv[n++] = "--database-url";
        argv[n++] = (char *)db;
    }
    argv[n] = NULL;
    if (posix_spawn(&e->server, arbiterd, NULL, NULL, argv, environ) != 0)
        return -errno;
    for (int i = 0; i < 500; i++) {
        if (socket_answers(e->socket))
            return 0;
        if (waitpid(e->server, &status, WNOHANG) == e->server) {
            e->server = 0;
            return -ECHILD;
        }
        usleep(20000);
    }
    return -ETIMEDOUT;
}

/* Stops the server (SIGTERM unless |signal_it| is false because it already
 * got one: a second SIGTERM may end a draining server at once) and returns
 * its exit code. */
static int stop_server(struct env *e, bool signal_it)
{
    int status = 0;

    if (e->server > 0) {
        if (signal_it)
            kill(e->server, SIGTERM);
        waitpid(e->server, &status, 0);
    }
    unlink(e->socket);
    rmdir(e->dir);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(void)
{
    const char *arbiterd = getenv("ARBITERD");
    struct env e = {0};
    int rv;

    if (!arbiterd || !*arbiterd) {
        printf("SKIP: ARBITERD is not set\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    rv = start_server(&e, arbiterd, NULL);
    if (rv < 0) {
        fprintf(stderr, "cannot start %s: %s\n", arbiterd, strerror(-rv));
        stop_server(&e, true);
        return 1;
    }
    test_health(&e);
    test_concurrent(&e);
    test_many_streams(&e);
    test_streaming(&e);
    test_deadline(&e);
    test_cancel(&e);
    test_unimplemented(&e);
    test_connect_failure(&e);
    test_close_in_flight(&e);
    test_broken_peer(&e, 0, -EPROTO);
    test_broken_peer(&e, 1, 0); /* EPIPE or ECONNRESET, whichever comes first */
    rv = stop_server(&e, true);
    CHECK(&e, rv == 0, "arbiterd exits 0 on SIGTERM, got %d", rv);
    test_server_shutdown(&e, arbiterd);
    printf("%s: %d failure(s)\n", e.failures ? "FAIL" : "PASS", e.failures);
    return e.failures ? 1 : 0;
}
