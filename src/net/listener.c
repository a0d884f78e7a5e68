#include "net/listener.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/log.h"

/* Does a process accept connections on |path|? A non-blocking connect to a
 * Unix socket either succeeds at once, fails with ECONNREFUSED (nobody
 * listens: the file is stale), or EAGAIN (a live server with a full
 * backlog). Returns 1 (live), 0 (stale) or a negative errno. */
static int socket_is_live(const char *path)
{
    struct sockaddr_un sa;
    int fd, rv;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    rv = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    if (rv == 0 || errno == EAGAIN || errno == EINPROGRESS)
        rv = 1;
    else if (errno == ECONNREFUSED)
        rv = 0;
    else
        rv = -errno;
    close(fd);
    return rv;
}

/* Removes a stale socket file at |path|; refuses a live one and any file
 * that is not a socket (never delete what we did not create). */
static int clear_path(const char *path, char *err, size_t errlen)
{
    struct stat st;
    int live;

    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "%s exists and is not a socket", path);
        return -EEXIST;
    }
    live = socket_is_live(path);
    if (live > 0) {
        snprintf(err, errlen, "socket %s is in use by a running server", path);
        return -EADDRINUSE;
    }
    if (live < 0) {
        snprintf(err, errlen, "cannot probe socket %s: %s", path, strerror(-live));
        return live;
    }
    log_info("replacing stale socket file %s", path);
    if (unlink(path) < 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot remove stale socket %s: %s", path, strerror(errno));
        return -errno;
    }
    return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
    net_listener *l = h->data;
    if (l->on_close)
        l->on_close(l);
}

static void on_connection(uv_stream_t *s, int status)
{
    net_listener *l = s->data;
    if (status < 0) {
        log_warn("accept: %s", uv_strerror(status));
        return;
    }
    l->on_connection(l);
}

/* Binds |path| with permissions |mode| set by the umask around bind(2): the
 * socket file is born with them. A chmod(2) of the path afterwards would
 * follow a symlink swapped in meanwhile (to another file it would then
 * open up). The umask is the process's, but nothing else runs now. */
static int bind_with_mode(net_listener *l, const char *path, unsigned mode, char *err,
                          size_t errlen)
{
    mode_t old = umask((mode_t)(~mode & 0777));
    int rv = uv_pipe_bind(&l->pipe, path);

    umask(old);
    if (rv < 0) {
        snprintf(err, errlen, "cannot bind %s: %s", path, uv_strerror(rv));
        return rv;
    }
    l->bound = true;
    return 0;
}

int net_listener_open(net_listener *l, uv_loop_t *loop, const char *path, unsigned mode, char *err,
                      size_t errlen)
{
    int rv;

    if (strlen(path) >= sizeof(l->path)) {
        snprintf(err, errlen, "socket path too long: %s", path);
        return -ENAMETOOLONG;
    }
    memcpy(l->path, path, strlen(path) + 1);
    l->bound = l->closing = l->opened = false;
    rv = clear_path(path, err, errlen);
    if (rv < 0)
        return rv;
    rv = uv_pipe_init(loop, &l->pipe, 0);
    if (rv < 0) {
        snprintf(err, errlen, "uv_pipe_init: %s", uv_strerror(rv));
        return rv;
    }
    l->pipe.data = l;
    rv = bind_with_mode(l, path, mode, err, errlen);
    if (rv == 0) {
        rv = uv_listen((uv_stream_t *)&l->pipe, 1024, on_connection);
        if (rv < 0)
            snprintf(err, errlen, "cannot listen on %s: %s", path, uv_strerror(rv));
    }
    if (rv < 0)
        net_listener_close(l); /* reported through the return value, not on_close */
    else
        l->opened = true;
    return rv;
}

void net_listener_close(net_listener *l)
{
    if (l->closing)
        return;
    l->closing = true;
    /* Unlink first: a client that connects now gets ENOENT, not a hang. */
    if (l->bound && unlink(l->path) < 0 && errno != ENOENT)
        log_warn("cannot remove %s: %s", l->path, strerror(errno));
    l->bound = false;
    uv_close((uv_handle_t *)&l->pipe, on_listener_closed);
}

static void on_rejected_closed(uv_handle_t *h)
{
    free(h);
}

void net_listener_reject(net_listener *l)
{
    uv_pipe_t *p = malloc(sizeof(*p));

    if (p == NULL || uv_pipe_init(l->pipe.loop, p, 0) < 0) {
        free(p);
        return;
    }
    (void)uv_accept((uv_stream_t *)&l->pipe, (uv_stream_t *)p);
    uv_close((uv_handle_t *)p, on_rejected_closed);
}
