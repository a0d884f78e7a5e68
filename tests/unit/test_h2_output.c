/* The server's output path under a peer that only reads: a large answer
 * must arrive in full even when the socket takes whole output batches at
 * once. Regression: flush() stopped pulling from nghttp2 at the high-water
 * mark and waited for a write callback that never came when uv_try_write
 * had taken everything, so a 1 MiB answer stalled after its first 256 KiB
 * until the client happened to send something (seen as a 3 MiB Echo that
 * never completed in the libarbiter test under CPU load).
 *
 * The fixture is a real server (Testing service) driving one connection
 * over a socketpair whose server end has a send buffer larger than the
 * high-water mark, and an nghttp2 client session with windows so large it
 * never needs to send WINDOW_UPDATE: after its request it only reads. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <fcntl.h>
#include <nghttp2/nghttp2.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "h2/conn.h"
#include "net/conn.h"
#include "rpc/frame.h"
#include "server.h"
#include "testing.pb-c.h"
#include "util/cfg.h"
#include "util/list.h"
#include "util/log.h"

#define PAYLOAD (1u << 20)

static struct {
    uv_loop_t loop;
    struct cfg cfg;
    struct server srv;
    int fd; /* client end */
    uint8_t *body;
    size_t body_len, body_off;
    size_t got_data;
    bool closed;
    uint32_t close_code;
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

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *user)
{
    (void)s, (void)flags, (void)id, (void)data, (void)user;
    fx.got_data += len;
    return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t code, void *user)
{
    (void)s, (void)id, (void)user;
    fx.closed = true;
    fx.close_code = code;
    return 0;
}

static nghttp2_session *client_new(void)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_session *s;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 16 << 20}};

    cr_assert(eq(int, nghttp2_session_callbacks_new(&cbs), 0));
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
    cr_assert(eq(int, nghttp2_session_client_new(&s, cbs, NULL), 0));
    nghttp2_session_callbacks_del(cbs);
    cr_assert(eq(int, nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, iv, 1), 0));
    cr_assert(eq(int, nghttp2_session_set_local_window_size(s, NGHTTP2_FLAG_NONE, 0, 64 << 20), 0));
    return s;
}

static void submit_echo(nghttp2_session *s)
{
    Arbiter__V1__EchoRequest req = ARBITER__V1__ECHO_REQUEST__INIT;
    static uint8_t payload[PAYLOAD];
    nghttp2_nv hdrs[] = {
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, 0}
        NV(":method", "POST"),
        NV(":scheme", "http"),
        NV(":path", "/arbiter.v1.Testing/Echo"),
        NV(":authority", "localhost"),
        NV("content-type", "application/grpc"),
        NV("te", "trailers"),
#undef NV
    };
    nghttp2_data_provider prd = {.read_callback = read_body};
    size_t len;

    memset(payload, 'x', sizeof(payload));
    req.payload.data = payload;
    req.payload.len = sizeof(payload);
    len = protobuf_c_message_get_packed_size(&req.base);
    fx.body = malloc(len + 5);
    cr_assert(fx.body != NULL);
    rpc_frame_write_prefix(fx.body, false, (uint32_t)len);
    protobuf_c_message_pack(&req.base, fx.body + 5);
    fx.body_len = len + 5;
    cr_assert(gt(int, nghttp2_submit_request(s, NULL, hdrs, 6, &prd, NULL), 0));
}

/* Moves bytes both ways once: client output into the socket, the
 * server's loop one turn, everything readable into the client session. */
static void pump(nghttp2_session *s, uint8_t *pending, size_t *npending)
{
    uint8_t buf[65536];
    const uint8_t *p;
    ssize_t n;

    while (*npending < sizeof(buf) && (n = nghttp2_session_mem_send(s, &p)) > 0) {
        cr_assert(le(sz, *npending + (size_t)n, 4u << 20));
        memcpy(pending + *npending, p, (size_t)n);
        *npending += (size_t)n;
    }
    if (*npending) {
        n = write(fx.fd, pending, *npending);
        if (n > 0) {
            memmove(pending, pending + n, *npending - (size_t)n);
            *npending -= (size_t)n;
        }
    }
    uv_run(&fx.loop, UV_RUN_NOWAIT);
    while ((n = read(fx.fd, buf, sizeof(buf))) > 0)
        cr_assert(eq(sz, (size_t)nghttp2_session_mem_recv(s, buf, (size_t)n), (size_t)n));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

TestSuite(h2_output, .timeout = 20);

Test(h2_output, large_answer_to_a_reading_only_peer_arrives_whole)
{
    int sv[2], sndbuf = 8 << 20;
    static uint8_t pending[4 << 20];
    size_t npending = 0;
    nghttp2_session *client;
    double deadline;

    log_level_current = LOG_ERROR;
    cr_assert(eq(int, uv_loop_init(&fx.loop), 0));
    cfg_defaults(&fx.cfg);
    fx.cfg.enable_test_service = true;
    cr_assert(eq(int, server_init(&fx.srv, &fx.loop, &fx.cfg, NULL), 0));
    cr_assert(eq(int, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0));
    /* The kernel caps this (2 x wmem_max), which is still above the
     * 256 KiB high-water mark: whole batches fit at once. */
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    socklen_t sl = sizeof(sndbuf);
    getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl);
    cr_assert(gt(int, sndbuf, NET_CONN_HIGH_WATER * 3 / 2), "SO_SNDBUF only %d", sndbuf);
    cr_assert(eq(int, fcntl(sv[1], F_SETFL, O_NONBLOCK), 0));
    cr_assert(eq(int, server_adopt(&fx.srv, sv[0]), 0));
    fx.fd = sv[1];

    client = client_new();
    submit_echo(client);
    deadline = now_s() + 5.0;
    while (!fx.closed && now_s() < deadline)
        pump(client, pending, &npending);

    cr_assert(fx.closed, "answer stalled after %zu of about %u bytes", fx.got_data, PAYLOAD);
    cr_assert(eq(u32, fx.close_code, NGHTTP2_NO_ERROR));
    cr_assert(gt(sz, fx.got_data, (size_t)PAYLOAD));

    /* Hang up, let the server free the connection, shut it down: the
     * ASan build checks that nothing leaks. */
    nghttp2_session_del(client);
    free(fx.body);
    close(sv[1]);
    deadline = now_s() + 5.0;
    while (server_connections(&fx.srv) > 0 && now_s() < deadline)
        uv_run(&fx.loop, UV_RUN_NOWAIT);
    cr_assert(eq(u32, server_connections(&fx.srv), 0));
    server_shutdown(&fx.srv);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    server_deinit(&fx.srv);
    cr_assert(eq(int, uv_loop_close(&fx.loop), 0));
}
