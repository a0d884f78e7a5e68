/* Out of memory along the request path (issue 8, STYLE rule 11): for every
 * n, the n-th allocation of the request path fails (util/alloc.h), and the
 * call must still end with a clean gRPC status: answered, never hung, and
 * nothing leaked (the ASan build's LeakSanitizer checks at exit). A second
 * call on the same connection then succeeds, so nothing was left stuck.
 *
 * The server is real (server_init, a socketpair connection, the method
 * tables); the client is an nghttp2 session in the test. Without
 * ARBITER_TEST_DATABASE_URL the calls end UNAVAILABLE at the pool after
 * validation, binding and the transaction were built; under
 * tests/pg/with-postgres.sh they run for real (a write that answers the
 * written row, and a keyset page). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <nghttp2/nghttp2.h>
#include <uv.h>

#include "admin.pb-c.h"
#include "agent_registry.pb-c.h"
#include "rpc/frame.h"
#include "server.h"
#include "util/alloc.h"
#include "util/cfg.h"
#include "util/log.h"

#define MAX_ROUNDS 2000

static struct {
    uv_loop_t loop;
    struct cfg cfg;
    struct server srv;
    alloc mem;
    int fd;
    nghttp2_session *client;
    uint8_t *body;
    size_t body_len, body_off;
    int grpc_status; /* -1 until the trailers came */
    bool closed;
} fx;

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *user)
{
    size_t n = fx.body_len - fx.body_off;

    (void)s, (void)id, (void)src, (void)user;
    if (n > len)
        n = len;
    memcpy(buf, fx.body + fx.body_off, n);
    fx.body_off += n;
    if (fx.body_off == fx.body_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    (void)s, (void)frame, (void)flags, (void)user;
    if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0)
        fx.grpc_status = atoi((const char *)value) + 0 * (int)valuelen;
    return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t code, void *user)
{
    (void)s, (void)id, (void)user;
    /* A stream the server could not even allocate is refused: nothing was
     * processed, and gRPC clients report UNAVAILABLE (safe to retry). */
    if (code == NGHTTP2_REFUSED_STREAM && fx.grpc_status < 0)
        fx.grpc_status = 14;
    fx.closed = true;
    return 0;
}

static nghttp2_session *client_new(void)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_session *s;

    cr_assert(eq(int, nghttp2_session_callbacks_new(&cbs), 0));
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
    cr_assert(eq(int, nghttp2_session_client_new(&s, cbs, NULL), 0));
    nghttp2_session_callbacks_del(cbs);
    cr_assert(eq(int, nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, NULL, 0), 0));
    return s;
}

/* One unary call of |path| with |msg|, run to its end; returns grpc-status. */
static int call(const char *path, const ProtobufCMessage *msg, const char *tenant)
{
    nghttp2_nv hdrs[7] = {
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), 0}
        NV(":method", "POST"),
        NV(":scheme", "http"),
        NV(":path", path),
        NV(":authority", "localhost"),
        NV("content-type", "application/grpc"),
        NV("te", "trailers"),
        NV("x-tenant-id", tenant),
#undef NV
    };
    nghttp2_data_provider prd = {.read_callback = read_body};
    size_t len = protobuf_c_message_get_packed_size(msg);
    struct timespec t0, t1;
    uint8_t buf[65536];
    const uint8_t *p;
    ssize_t n;

    fx.body = malloc(len + 5);
    cr_assert(fx.body != NULL);
    rpc_frame_write_prefix(fx.body, false, (uint32_t)len);
    protobuf_c_message_pack(msg, fx.body + 5);
    fx.body_len = len + 5;
    fx.body_off = 0;
    fx.grpc_status = -1;
    fx.closed = false;
    cr_assert(gt(int, nghttp2_submit_request(fx.client, NULL, hdrs, 7, &prd, NULL), 0));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct pollfd pfd = {.fd = fx.fd, .events = POLLIN};

        while ((n = nghttp2_session_mem_send(fx.client, &p)) > 0)
            cr_assert(eq(sz, (size_t)write(fx.fd, p, (size_t)n), (size_t)n));
        uv_run(&fx.loop, UV_RUN_NOWAIT);
        while ((n = read(fx.fd, buf, sizeof(buf))) > 0)
            cr_assert(eq(sz, (size_t)nghttp2_session_mem_recv(fx.client, buf, (size_t)n),
                         (size_t)n));
        if (fx.closed)
            break;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        cr_assert(lt(long, t1.tv_sec - t0.tv_sec, 10), "%s hung (allocation %llu failed)", path,
                  (unsigned long long)fx.mem.fail_at);
        poll(&pfd, 1, 1);
    }
    free(fx.body);
    fx.body = NULL;
    return fx.grpc_status;
}

static void server_up(void)
{
    int sv[2];

    cr_assert(eq(int, uv_loop_init(&fx.loop), 0));
    cr_assert(eq(int, server_init(&fx.srv, &fx.loop, &fx.cfg, &fx.mem), 0));
    cr_assert(eq(int, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0));
    cr_assert(eq(int, fcntl(sv[1], F_SETFL, O_NONBLOCK), 0));
    cr_assert(eq(int, server_adopt(&fx.srv, sv[0]), 0));
    fx.fd = sv[1];
    fx.client = client_new();
}

static void server_down(void)
{
    nghttp2_session_del(fx.client);
    close(fx.fd);
    server_shutdown(&fx.srv);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    server_deinit(&fx.srv);
    cr_assert(eq(int, uv_loop_close(&fx.loop), 0));
}

/* Waits (a few seconds at most) until the pool serves, when there is one. */
static void wait_for_database(const char *tenant)
{
    Arbiter__V1__CreateTenantRequest req = ARBITER__V1__CREATE_TENANT_REQUEST__INIT;

    if (!fx.cfg.database_url)
        return;
    req.id = (char *)tenant;
    req.name = (char *)"oom";
    for (int i = 0; i < 500; i++) {
        int st = call("/arbiter.v1.Admin/CreateTenant", &req.base, tenant);

        if (st == 0 || st == 6) /* OK, ALREADY_EXISTS */
            return;
        usleep(10000);
    }
    cr_assert(false, "the database never served");
}

static bool clean(int status)
{
    /* OK, RESOURCE_EXHAUSTED (out of memory), INTERNAL (an answer that
     * could not be encoded), UNAVAILABLE (no database configured). */
    return status == 0 || status == 8 || status == 13 || status == 14;
}

/* Makes the request of call number |k| (names must differ when calls
 * write). */
typedef const ProtobufCMessage *(*request_fn)(unsigned k);

/* Runs |path| with allocation n failing, for n = 1, 2, ... until a run
 * needs no failure; each must end cleanly and a retry must work. */
static void every_allocation(const char *path, request_fn request, const char *tenant, int want_ok)
{
    unsigned rounds = 0;

    for (uint64_t n = 1; rounds < MAX_ROUNDS; n++, rounds++) {
        int st, again;

        server_up();
        wait_for_database(tenant);
        fx.mem.arena_too = true; /* every arena allocation is a site of its own */
        fx.mem.fail_at = fx.mem.count + n;
        fx.mem.failed = 0;
        st = call(path, request(2 * rounds), tenant);
        cr_expect(clean(st), "%s with allocation %llu failing: grpc-status %d", path,
                  (unsigned long long)n, st);
        fx.mem.fail_at = 0;
        fx.mem.arena_too = false;
        again = call(path, request(2 * rounds + 1), tenant);
        cr_expect(eq(int, again, want_ok), "%s: the call after allocation %llu failed: %d",
                  path, (unsigned long long)n, again);
        server_down();
        if (fx.mem.failed == 0)
            break; /* the whole call ran without reaching allocation n */
    }
    cr_expect(lt(u32, rounds, MAX_ROUNDS));
    cr_log_info("%s: %u allocation sites failed in turn", path, rounds);
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN); /* as arbiterd does: the peer may be gone */
    memset(&fx, 0, sizeof(fx));
    log_level_current = LOG_ERROR;
    cfg_defaults(&fx.cfg);
    fx.cfg.database_url = getenv("ARBITER_TEST_DATABASE_URL");
    fx.cfg.pool_min = 1;
}

TestSuite(oom, .init = setup, .timeout = 600);

static const ProtobufCMessage *register_request(unsigned k)
{
    static Arbiter__V1__RegisterAgentRequest req;
    static Arbiter__V1__Agent agent;
    static Arbiter__V1__Capabilities caps;
    static char *langs[] = {(char *)"c", (char *)"sql"};
    static char name[64];

    arbiter__v1__register_agent_request__init(&req);
    arbiter__v1__agent__init(&agent);
    arbiter__v1__capabilities__init(&caps);
    snprintf(name, sizeof(name), "oom-%ld-%u", (long)getpid(), k);
    agent.name = name;
    agent.model_family = (char *)"m";
    caps.languages = langs;
    caps.n_languages = 2;
    agent.capabilities = &caps;
    req.agent = &agent;
    return &req.base;
}

static const ProtobufCMessage *list_request(unsigned k)
{
    static Arbiter__V1__ListAgentsRequest req;

    (void)k;
    arbiter__v1__list_agents_request__init(&req);
    req.page_size = 1;
    return &req.base;
}

Test(oom, register_agent)
{
    every_allocation("/arbiter.v1.AgentRegistry/RegisterAgent", register_request, "oom-tenant",
                     fx.cfg.database_url ? 0 : 14);
}

Test(oom, list_agents_page)
{
    /* With a database, agents from the other test may exist: pages of one
     * carry a next_page_token, which is allocated too. */
    every_allocation("/arbiter.v1.AgentRegistry/ListAgents", list_request, "oom-tenant",
                     fx.cfg.database_url ? 0 : 14);
}
