/* arbiterd: arguments, configuration and wiring only. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <uv.h>

#include "config.h"
#include "db/migrate.h"
#include "server.h"
#include "util/cfg.h"
#include "util/log.h"

extern char **environ;

/* SIGTERM/SIGINT: the first starts a graceful shutdown, a second one cuts
 * the grace period short. SIGHUP reloads the configuration. uv_signal_t
 * runs these on the loop, so no async-signal-safety concerns and no global
 * stop flag is needed. */
struct signals {
    uv_signal_t term, intr, hup;
    struct server *srv;
    struct cfg *cfg; /* the live configuration, which SIGHUP updates */
    int argc;
    char **argv;
    int count;
};

static void on_hup(uv_signal_t *h, int signum)
{
    struct signals *s = h->data;
    char err[512];
    int n;

    (void)signum;
    log_info("received SIGHUP: reloading the configuration");
    n = cfg_reload(s->cfg, s->argc, s->argv, environ, err, sizeof(err));
    if (n < 0) {
        log_error("configuration not reloaded: %s", err);
        return;
    }
    log_level_current = s->cfg->log_level;
    server_reload(s->srv);
    log_info("configuration reloaded: %d setting(s) changed", n);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct signals *s = h->data;

    log_info("received %s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    if (s->count++ == 0)
        server_shutdown(s->srv);
    else
        server_shutdown_now(s->srv);
}

static void signals_start(struct signals *s, uv_loop_t *loop, struct server *srv)
{
    s->srv = srv;
    s->count = 0;
    uv_signal_init(loop, &s->term);
    uv_signal_init(loop, &s->intr);
    uv_signal_init(loop, &s->hup);
    s->term.data = s->intr.data = s->hup.data = s;
    uv_signal_start(&s->term, on_signal, SIGTERM);
    uv_signal_start(&s->intr, on_signal, SIGINT);
    uv_signal_start(&s->hup, on_hup, SIGHUP);
    /* Watching for signals must not keep the loop alive by itself: the
     * loop runs out when the server has closed everything. */
    uv_unref((uv_handle_t *)&s->term);
    uv_unref((uv_handle_t *)&s->intr);
    uv_unref((uv_handle_t *)&s->hup);
}

static void signals_stop(struct signals *s)
{
    uv_close((uv_handle_t *)&s->term, NULL);
    uv_close((uv_handle_t *)&s->intr, NULL);
    uv_close((uv_handle_t *)&s->hup, NULL);
}

/* Raises the soft limit on open files to fit --max-connections, the pool
 * and a margin (libuv, the metrics endpoint, logs). Returns 0, or -1 after
 * printing one line when even the hard limit is too low. */
static int fit_file_limit(const struct cfg *cfg)
{
    rlim_t need = (rlim_t)cfg->max_connections + cfg->pool_max + 64;
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        fprintf(stderr,
                "arbiterd: --max-connections %u needs %llu open files, the limit is %llu "
                "(raise it with ulimit -n, or lower --max-connections)\n",
                cfg->max_connections, (unsigned long long)need,
                (unsigned long long)rl.rlim_max);
        return -1;
    }
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        fprintf(stderr, "arbiterd: cannot raise the open files limit to %llu: %s\n",
                (unsigned long long)need, strerror(errno));
        return -1;
    }
    return 0;
}

static int serve(struct cfg *cfg, int argc, char **argv)
{
    uv_loop_t loop;
    struct server srv;
    struct signals sigs;
    char err[512];
    int rv, init_rv;

    signal(SIGPIPE, SIG_IGN); /* write errors arrive as EPIPE instead */
    if (fit_file_limit(cfg) < 0)
        return 2;
    if (uv_loop_init(&loop) != 0)
        return 1;
    init_rv = rv = server_init(&srv, &loop, cfg, NULL);
    if (rv == -EINVAL)
        fprintf(stderr, "arbiterd: --database-url: not a valid libpq conninfo string or URI\n");
    if (rv == 0) {
        rv = server_listen(&srv, err, sizeof(err));
        if (rv < 0)
            fprintf(stderr, "arbiterd: %s\n", err);
    }
    if (rv < 0) {
        /* Tear down what exists through the normal path (no leaks, the
         * socket file removed) and report: a bad conninfo is a bad flag. */
        srv.exit_code = init_rv == -EINVAL ? 2 : 1;
        server_shutdown(&srv);
    }
    sigs.cfg = cfg;
    sigs.argc = argc;
    sigs.argv = argv;
    signals_start(&sigs, &loop, &srv);
    uv_run(&loop, UV_RUN_DEFAULT);
    signals_stop(&sigs);
    uv_run(&loop, UV_RUN_DEFAULT); /* runs the close callbacks */
    server_deinit(&srv);
    if (uv_loop_close(&loop) != 0)
        log_warn("event loop closed with handles still open");
    return srv.exit_code;
}

int main(int argc, char **argv)
{
    struct cfg cfg;
    enum cfg_command cmd;
    char err[512];
    int rv;

    if (cfg_load(&cfg, argc, argv, environ, &cmd, err, sizeof(err)) < 0) {
        fprintf(stderr, "arbiterd: %s\n", err);
        return 2;
    }
    switch (cmd) {
    case CFG_CMD_HELP:
        cfg_usage(stdout);
        return 0;
    case CFG_CMD_VERSION:
        printf("arbiterd %s\n", ARBITER_VERSION);
        return 0;
    case CFG_CMD_MIGRATE:
        log_level_current = cfg.log_level;
        rv = migrate_main(&cfg);
        cfg_free(&cfg);
        return rv;
    case CFG_CMD_SERVE:
        break;
    }
    log_level_current = cfg.log_level;
    rv = serve(&cfg, argc, argv);
    cfg_free(&cfg);
    return rv;
}
