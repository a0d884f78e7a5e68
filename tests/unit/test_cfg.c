/* util/cfg: defaults, environment, command line, precedence and every
 * validation error (each one line, and cfg_load() returns -EINVAL). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>

#include "util/cfg.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])) - 1)

struct loaded {
    struct cfg c;
    enum cfg_command cmd;
    char err[256];
    int rv;
};

static void load(struct loaded *l, int argc, char *const argv[], char *const envp[])
{
    memset(l, 0, sizeof(*l));
    l->rv = cfg_load(&l->c, argc, argv, envp, &l->cmd, l->err, sizeof(l->err));
}

TestSuite(cfg, .timeout = 5);

Test(cfg, defaults_match_the_contract)
{
    struct cfg c;
    cfg_defaults(&c);
    cr_assert(eq(str, (char *)c.socket_path, "./arbiterd.sock"));
    cr_assert(eq(uint, c.socket_mode, 0660));
    cr_assert(eq(u32, c.max_message_bytes, 4u << 20));
    cr_assert(eq(u32, c.max_concurrent_streams, 256));
    cr_assert(eq(u64, c.shutdown_timeout_ms, 10000));
    cr_assert(eq(int, c.log_level, LOG_INFO));
    cr_assert(eq(u32, c.pool_min, 2));
    cr_assert(eq(u32, c.pool_max, 10));
    cr_assert(eq(u32, c.pool_queue, 1024));
    cr_assert(eq(u64, c.acquire_timeout_ms, 5000));
    cr_assert(eq(u64, c.idle_timeout_ms, 30000));
    cr_assert(eq(u64, c.max_lifetime_ms, 1800000));
    cr_assert(eq(u64, c.statement_timeout_ms, 30000));
    cr_assert(eq(ptr, (void *)c.database_url, NULL));
    cr_assert(eq(ptr, (void *)c.metrics_listen, NULL));
    cr_assert(not(c.enable_test_service));
}

Test(cfg, no_arguments_is_serve_with_defaults)
{
    char *argv[] = {"arbiterd", NULL};
    struct loaded l;
    load(&l, ARGC(argv), argv, NULL);
    cr_assert(eq(int, l.rv, 0));
    cr_assert(eq(int, l.cmd, CFG_CMD_SERVE));
    cr_assert(eq(str, (char *)l.c.socket_path, "./arbiterd.sock"));
}

Test(cfg, flags_in_both_spellings)
{
    char *argv[] = {"arbiterd",
                    "serve",
                    "--socket",
                    "/tmp/a.sock",
                    "--socket-mode=0600",
                    "--pool-min",
                    "0",
                    "--pool-max=3",
                    "--log-level",
                    "debug",
                    "--enable-test-service",
                    "--shutdown-timeout-ms=0",
                    "--metrics-listen",
                    "127.0.0.1:9090",
                    NULL};
    struct loaded l;
    load(&l, ARGC(argv), argv, NULL);
    cr_assert(eq(int, l.rv, 0), "%s", l.err);
    cr_assert(eq(str, (char *)l.c.socket_path, "/tmp/a.sock"));
    cr_assert(eq(uint, l.c.socket_mode, 0600));
    cr_assert(eq(u32, l.c.pool_min, 0));
    cr_assert(eq(u32, l.c.pool_max, 3));
    cr_assert(eq(int, l.c.log_level, LOG_DEBUG));
    cr_assert(l.c.enable_test_service);
    cr_assert(eq(u64, l.c.shutdown_timeout_ms, 0));
    cr_assert(eq(str, (char *)l.c.metrics_listen, "127.0.0.1:9090"));
}

Test(cfg, environment_then_command_line)
{
    char *argv[] = {"arbiterd", "--pool-max", "7", NULL};
    char *envp[] = {"ARBITER_POOL_MAX=5",
                    "ARBITER_POOL_QUEUE=9",
                    "ARBITER_SOCKET=/e.sock",
                    "ARBITER_NO_PREPARED_STATEMENTS=true",
                    "OTHER=1",
                    NULL};
    struct loaded l;
    load(&l, ARGC(argv), argv, envp);
    cr_assert(eq(int, l.rv, 0), "%s", l.err);
    cr_assert(eq(u32, l.c.pool_max, 7)); /* the command line wins */
    cr_assert(eq(u32, l.c.pool_queue, 9));
    cr_assert(eq(str, (char *)l.c.socket_path, "/e.sock"));
    cr_assert(l.c.no_prepared_statements);
}

Test(cfg, database_url_falls_back_to_DATABASE_URL)
{
    char *argv[] = {"arbiterd", NULL};
    char *generic[] = {"DATABASE_URL=host=a", NULL};
    char *both[] = {"DATABASE_URL=host=a", "ARBITER_DATABASE_URL=host=b", NULL};
    struct loaded l;
    load(&l, ARGC(argv), argv, generic);
    cr_assert(eq(str, (char *)l.c.database_url, "host=a"));
    load(&l, ARGC(argv), argv, both);
    cr_assert(eq(str, (char *)l.c.database_url, "host=b"));
}

Test(cfg, listen_url_defaults_to_the_database_url_unless_pooled)
{
    char *plain[] = {"arbiterd", "--database-url", "host=a", NULL};
    char *pooled[] = {"arbiterd", "--database-url", "host=a", "--no-prepared-statements", NULL};
    char *direct[] = {"arbiterd", "--database-url", "host=a", "--no-prepared-statements",
                      "--listen-database-url", "host=b", NULL};
    char *envp[] = {"ARBITER_LISTEN_DATABASE_URL=host=c", NULL};
    struct loaded l;
    load(&l, ARGC(plain), plain, NULL);
    cr_assert(eq(str, (char *)cfg_listen_url(&l.c), "host=a"));
    load(&l, ARGC(pooled), pooled, NULL);
    cr_assert(eq(ptr, (void *)cfg_listen_url(&l.c), NULL)); /* polling */
    load(&l, ARGC(direct), direct, NULL);
    cr_assert(eq(str, (char *)cfg_listen_url(&l.c), "host=b"));
    load(&l, ARGC(pooled), pooled, envp);
    cr_assert(eq(str, (char *)cfg_listen_url(&l.c), "host=c"));
}

Test(cfg, empty_environment_values_are_unset)
{
    char *argv[] = {"arbiterd", NULL};
    char *envp[] = {"ARBITER_POOL_MAX=", "ARBITER_DATABASE_URL=", NULL};
    struct loaded l;
    load(&l, ARGC(argv), argv, envp);
    cr_assert(eq(int, l.rv, 0));
    cr_assert(eq(u32, l.c.pool_max, 10));
    cr_assert(eq(ptr, (void *)l.c.database_url, NULL));
}

Test(cfg, migrate_and_status)
{
    char *argv[] = {"arbiterd", "migrate", "--status", "--migrate-database-url", "x", NULL};
    struct loaded l;
    load(&l, ARGC(argv), argv, NULL);
    cr_assert(eq(int, l.rv, 0), "%s", l.err);
    cr_assert(eq(int, l.cmd, CFG_CMD_MIGRATE));
    cr_assert(l.c.migrate_status);
    cr_assert(eq(str, (char *)l.c.migrate_database_url, "x"));
}

Test(cfg, help_and_version_win)
{
    char *help[] = {"arbiterd", "--bogus", "--help", NULL};
    char *version[] = {"arbiterd", "serve", "--version", NULL};
    struct loaded l;
    load(&l, ARGC(help), help, NULL);
    cr_assert(eq(int, l.rv, 0));
    cr_assert(eq(int, l.cmd, CFG_CMD_HELP));
    load(&l, ARGC(version), version, NULL);
    cr_assert(eq(int, l.cmd, CFG_CMD_VERSION));
}

/* Each bad command line and the start of the one-line error it gives.
 * Arrays, not pointers: Criterion runs each parameter in a new process
 * where pointers into this one would not be valid. */
struct bad_case {
    char args[4][48];
    char env[48];
    char err[64];
};

static struct bad_case bad_cases[] = {
    {{"--pool-min", "5", "--pool-max", "2"}, "", "--pool-min (5) is larger"},
    {{"--pool-max", "abc"}, "", "--pool-max: 'abc' is not a number"},
    {{"--pool-max", "-1"}, "", "--pool-max: '-1' is not a number"},
    {{"--pool-max", " 1"}, "", "--pool-max: ' 1' is not a number"},
    {{"--pool-max", "10x"}, "", "--pool-max: '10x' is not a number"},
    {{"--pool-max", "0"}, "", "--pool-max: 0 is out of range"},
    {{"--max-concurrent-streams", "99999999999999999999999"}, "", "--max-concurrent-streams: 9"},
    {{"--max-message-bytes", "4294967296"}, "", "--max-message-bytes: 4294967296 is out"},
    {{"--socket-mode", "888"}, "", "--socket-mode: '888' is not an octal"},
    {{"--socket-mode", "1777"}, "", "--socket-mode: '1777' is not an octal"},
    {{"--log-level", "loud"}, "", "--log-level: 'loud' is not a log level"},
    {{"--nope"}, "", "unknown option '--nope'"},
    {{"--nope=1"}, "", "unknown option '--nope'"},
    {{"--socket"}, "", "option '--socket' needs a value"},
    {{"--socket="}, "", "--socket: empty value"},
    {{"stray"}, "", "unknown command 'stray'"},
    {{"serve", "stray"}, "", "unexpected argument 'stray'"},
    {{"--status"}, "", "unknown option '--status'"},
    {{"--enable-test-service=maybe"}, "", "--enable-test-service: 'maybe' is not a boolean"},
    {{"--metrics-listen", "10.0.0.1:9090"}, "", "--metrics-listen: '10.0.0.1:9090' is not a loop"},
    {{"--metrics-listen", "127.0.0.1"}, "", "--metrics-listen: '127.0.0.1' is not HOST:PORT"},
    {{"--metrics-listen", "127.0.0.1:0"}, "", "--metrics-listen: '127.0.0.1:0' is not HOST"},
    {{""}, "ARBITER_POOL_QUEUE=-1", "ARBITER_POOL_QUEUE: '-1' is not a number"},
    {{""}, "ARBITER_LOG_LEVEL=verbose", "ARBITER_LOG_LEVEL: 'verbose' is not a log level"},
};

ParameterizedTestParameters(cfg, rejects_bad_input)
{
    return cr_make_param_array(struct bad_case, bad_cases,
                               sizeof(bad_cases) / sizeof(bad_cases[0]));
}

ParameterizedTest(struct bad_case *bc, cfg, rejects_bad_input)
{
    char *argv[6] = {"arbiterd"};
    char *envp[2] = {bc->env[0] ? bc->env : NULL, NULL};
    int argc = 1;
    struct loaded l;

    while (argc < 5 && bc->args[argc - 1][0])
        argv[argc] = bc->args[argc - 1], argc++;
    load(&l, argc, argv, envp);
    cr_assert(eq(int, l.rv, -EINVAL));
    cr_assert(eq(int, strncmp(l.err, bc->err, strlen(bc->err)), 0), "got '%s', want '%s...'", l.err,
              bc->err);
    cr_assert(eq(ptr, strchr(l.err, '\n'), NULL));
}

Test(cfg, parse_u64_ranges)
{
    uint64_t v = 7;
    cr_assert(eq(int, cfg_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0));
    cr_assert(eq(u64, v, UINT64_MAX));
    cr_assert(eq(int, cfg_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE));
    cr_assert(eq(int, cfg_parse_u64("", 0, 10, &v), -EINVAL));
    cr_assert(eq(int, cfg_parse_u64("+1", 0, 10, &v), -EINVAL));
    cr_assert(eq(int, cfg_parse_u64("11", 0, 10, &v), -ERANGE));
    cr_assert(eq(int, cfg_parse_u64("3", 5, 10, &v), -ERANGE));
}

Test(cfg, listen_addresses)
{
    char host[64];
    uint16_t port = 0;
    cr_assert(eq(int, cfg_parse_listen("[::1]:9100", host, sizeof(host), &port), 0));
    cr_assert(eq(str, host, "::1"));
    cr_assert(eq(u16, port, 9100));
    cr_assert(eq(int, cfg_parse_listen("localhost:80", host, sizeof(host), &port), 0));
    cr_assert(eq(int, cfg_parse_listen("127.1.2.3:80", host, sizeof(host), &port), 0));
    cr_assert(eq(int, cfg_parse_listen("0.0.0.0:80", host, sizeof(host), &port), -EADDRNOTAVAIL));
    cr_assert(eq(int, cfg_parse_listen("[::]:80", host, sizeof(host), &port), -EADDRNOTAVAIL));
    cr_assert(eq(int, cfg_parse_listen(":80", host, sizeof(host), &port), -EINVAL));
}

/* ---- --config files and SIGHUP reloads ---------------------------------- */

static char *write_config(const char *text)
{
    static char path[64];
    int fd;

    snprintf(path, sizeof(path), "/tmp/arbiter-cfg-XXXXXX");
    fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert(eq(sz, (size_t)write(fd, text, strlen(text)), strlen(text)));
    close(fd);
    return path;
}

Test(cfg, config_file_then_environment_then_command_line)
{
    char *path = write_config("# a comment\n\npool-max = 20\npool-min=3\n"
                              "log-level = debug\nsocket = /tmp/from-file.sock\n"
                              "no-prepared-statements =\n");
    char *argv[] = {"arbiterd", "--config", path, "--pool-max", "30", NULL};
    char *envp[] = {"ARBITER_POOL_MIN=4", NULL};
    struct loaded l;

    load(&l, ARGC(argv), argv, envp);
    cr_assert(eq(int, l.rv, 0), "%s", l.err);
    cr_expect(eq(u32, l.c.pool_max, 30), "the command line wins");
    cr_expect(eq(u32, l.c.pool_min, 4), "the environment wins over the file");
    cr_expect(eq(int, l.c.log_level, LOG_DEBUG));
    cr_expect(eq(str, (char *)l.c.socket_path, "/tmp/from-file.sock"));
    cr_expect(l.c.no_prepared_statements);
    cfg_free(&l.c);
    unlink(path);
}

Test(cfg, config_file_errors_name_file_and_line)
{
    char *path = write_config("pool-max = 5\nno-such-thing = 1\n");
    char *argv[] = {"arbiterd", "--config", path, NULL};
    char *argv2[] = {"arbiterd", "--config", "/nonexistent/arbiterd.conf", NULL};
    struct loaded l;
    char want[128];

    load(&l, ARGC(argv), argv, NULL);
    cr_expect(eq(int, l.rv, -EINVAL));
    snprintf(want, sizeof(want), "%s:2: unknown setting 'no-such-thing'", path);
    cr_expect(eq(str, l.err, want));
    unlink(path);
    path = write_config("pool-max = lots\n");
    char *argv3[] = {"arbiterd", "--config", path, NULL};
    load(&l, ARGC(argv3), argv3, NULL);
    cr_expect(eq(int, l.rv, -EINVAL));
    cr_expect(strstr(l.err, ":1: pool-max: 'lots' is not a number") != NULL, "%s", l.err);
    unlink(path);
    load(&l, ARGC(argv2), argv2, NULL);
    cr_expect(eq(int, l.rv, -EINVAL));
    cr_expect(strstr(l.err, "cannot read /nonexistent/arbiterd.conf") != NULL, "%s", l.err);
}

Test(cfg, reload_applies_what_a_running_server_can_change)
{
    char *path = write_config("pool-max = 5\nsocket-mode = 0600\n");
    char *argv[] = {"arbiterd", "--config", path, NULL};
    struct loaded l;
    char err[256];
    FILE *f;

    load(&l, ARGC(argv), argv, NULL);
    cr_assert(eq(int, l.rv, 0), "%s", l.err);
    f = fopen(path, "w");
    fputs("pool-max = 7\nsocket-mode = 0666\nlog-level = warn\n", f);
    fclose(f);
    cr_expect(eq(int, cfg_reload(&l.c, ARGC(argv), argv, NULL, err, sizeof(err)), 2), "%s", err);
    cr_expect(eq(u32, l.c.pool_max, 7));
    cr_expect(eq(int, l.c.log_level, LOG_WARN));
    cr_expect(eq(uint, l.c.socket_mode, 0600), "the socket's mode needs a restart");
    f = fopen(path, "w");
    fputs("pool-max = 1\npool-min = 2\n", f);
    fclose(f);
    cr_expect(eq(int, cfg_reload(&l.c, ARGC(argv), argv, NULL, err, sizeof(err)), -EINVAL));
    cr_expect(eq(u32, l.c.pool_max, 7), "a bad file changes nothing");
    cfg_free(&l.c);
    unlink(path);
}
