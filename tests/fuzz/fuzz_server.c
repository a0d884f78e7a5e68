/* The whole request path as a libFuzzer target: the input is what a client
 * writes on its socket (preface, SETTINGS, HEADERS, DATA, RST_STREAM, ...).
 * It goes through a socketpair into a real h2 connection of a real server
 * (nghttp2 session, header validation, framing, decoding, the Health and
 * Testing handlers), the answers are read and dropped, then the client
 * hangs up. Oracles: no crash or sanitizer report, the connection closes
 * after the hang-up whatever state the input left it in, and every call it
 * carried is freed (LeakSanitizer, and the in-flight counter returns to 0).
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "h2/conn.h"
#include "server.h"
#include "util/cfg.h"
#include "util/list.h"
#include "util/log.h"

#define MAX_SPINS 100000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One server for the whole run, as libFuzzer calls the target many times
 * in one process. */
static struct {
    uv_loop_t loop;
    struct cfg cfg;
    struct server srv;
    bool ready;
} fx;

static void setup(void)
{
    if (uv_loop_init(&fx.loop) != 0)
        abort();
    cfg_defaults(&fx.cfg);
    fx.cfg.enable_test_service = true;
    fx.cfg.max_message_bytes = 1 << 16; /* small, so limits are reachable */
    log_level_current = LOG_ERROR;
    if (server_init(&fx.srv, &fx.loop, &fx.cfg, NULL) < 0)
        abort();
    fx.ready = true;
}

/* Reads and drops whatever the server answered so far. */
static void drain(int fd)
{
    char buf[65536];

    while (read(fd, buf, sizeof(buf)) > 0) {
    }
}

/* Writes what fits into the socket now; returns the bytes written. */
static size_t feed(int fd, const uint8_t *p, size_t n)
{
    ssize_t w = write(fd, p, n);
    return w > 0 ? (size_t)w : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int sv[2];
    size_t off = 0;
    int spins = 0;

    if (!fx.ready)
        setup();
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    if (fcntl(sv[1], F_SETFL, O_NONBLOCK) < 0 || server_adopt(&fx.srv, sv[0]) < 0)
        abort();
    while (off < size && spins++ < MAX_SPINS) {
        off += feed(sv[1], data + off, size - off);
        uv_run(&fx.loop, UV_RUN_NOWAIT);
        drain(sv[1]);
    }
    /* Hang up: the server must close the connection and free every call on
     * it, including handlers that never answer and streams with timers. */
    shutdown(sv[1], SHUT_WR);
    while (server_connections(&fx.srv) > 0 && spins++ < MAX_SPINS) {
        uv_run(&fx.loop, UV_RUN_NOWAIT);
        drain(sv[1]);
    }
    close(sv[1]);
    if (server_connections(&fx.srv) > 0 || fx.srv.rpc.stats.calls_in_flight != 0)
        abort();
    uv_run(&fx.loop, UV_RUN_NOWAIT); /* the close callbacks */
    return 0;
}
