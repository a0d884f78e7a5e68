/* Configuration: one declarative key table (PgBouncer's CF_ABS idea) drives
 * the defaults listing, the environment, the command line and --help, so a
 * new flag is one line here and one field in struct cfg. */
#include "util/cfg.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

enum key_type { KEY_STR, KEY_U32, KEY_U64, KEY_MODE, KEY_BOOL, KEY_LEVEL, KEY_TENANT_AUTH };

struct cfg_key {
    const char *flag; /* without "--"; the env name is derived from it */
    enum key_type type;
    size_t off;        /* offset of the field in struct cfg */
    uint64_t min, max; /* inclusive range for numbers */
    const char *arg;   /* placeholder in --help; NULL for booleans */
    const char *help;  /* NULL: not listed in --help */
};

#define F(field) offsetof(struct cfg, field)
#define DAY_MS 86400000ull

static const struct cfg_key keys[] = {
    {"config", KEY_STR, F(config_path), 0, 0, "FILE",
     "read settings from FILE (lines 'flag = value'); SIGHUP reads it again"},
    {"socket", KEY_STR, F(socket_path), 0, 0, "PATH", "Unix socket to listen on"},
    {"socket-mode", KEY_MODE, F(socket_mode), 0, 0777, "OCTAL", "permissions of the socket file"},
    {"max-message-bytes", KEY_U32, F(max_message_bytes), 16, 1u << 30, "N",
     "largest request message accepted"},
    {"max-concurrent-streams", KEY_U32, F(max_concurrent_streams), 1, 1u << 20, "N",
     "concurrent calls per connection"},
    {"shutdown-timeout-ms", KEY_U64, F(shutdown_timeout_ms), 0, DAY_MS, "MS",
     "grace period for in-flight calls at SIGTERM/SIGINT"},
    {"max-connections", KEY_U32, F(max_connections), 1, 1u << 20, "N",
     "client connections at once; more are closed at accept"},
    {"idle-connection-timeout-ms", KEY_U64, F(idle_connection_timeout_ms), 0, DAY_MS, "MS",
     "GOAWAY and close a connection without calls for this long (0 = never)"},
    {"write-timeout-ms", KEY_U64, F(write_timeout_ms), 0, DAY_MS, "MS",
     "reset a call whose answer the peer has not taken for this long (0 = never)"},
    {"max-connection-memory", KEY_U64, F(max_connection_memory), 1u << 20, 1ull << 40, "BYTES",
     "request buffers, arenas and queued answers of one connection"},
    {"max-memory", KEY_U64, F(max_memory), 1u << 20, 1ull << 44, "BYTES",
     "the same for all connections together"},
    {"log-level", KEY_LEVEL, F(log_level), 0, 0, "LEVEL", "error, warn, info or debug"},
    {"metrics-listen", KEY_STR, F(metrics_listen), 0, 0, "HOST:PORT",
     "loopback address of the Prometheus text endpoint (off by default; any local user "
     "can read it: prefer --metrics-socket)"},
    {"metrics-socket", KEY_STR, F(metrics_socket), 0, 0, "PATH",
     "Unix socket of the Prometheus text endpoint, instead of --metrics-listen"},
    {"metrics-socket-mode", KEY_MODE, F(metrics_socket_mode), 0, 0777, "OCTAL",
     "permissions of the metrics socket: who may read the metrics"},
    {"tenant-auth", KEY_TENANT_AUTH, F(tenant_auth), 0, 0, "MODE",
     "none (any peer may name any tenant) or peer (only tenants granted to its uid or gid)"},
    {"tenant-grants-refresh-ms", KEY_U64, F(tenant_grants_refresh_ms), 100, DAY_MS, "MS",
     "how often --tenant-auth=peer rereads the grants that other servers changed"},
    {"enable-test-service", KEY_BOOL, F(enable_test_service), 0, 0, NULL, NULL},
    {"database-url", KEY_STR, F(database_url), 0, 0, "DSN",
     "libpq conninfo or URI (also DATABASE_URL); without it no pool runs"},
    {"pool-min", KEY_U32, F(pool_min), 0, 10000, "N", "connections kept open"},
    {"pool-max", KEY_U32, F(pool_max), 1, 10000, "N", "most connections"},
    {"pool-queue", KEY_U32, F(pool_queue), 0, 10000000, "N", "most calls waiting for a connection"},
    {"pipeline-depth", KEY_U32, F(pipeline_depth), 1, 8, "N",
     "calls in flight on one connection, one after the other (1 = one at a time)"},
    {"acquire-timeout-ms", KEY_U64, F(acquire_timeout_ms), 1, DAY_MS, "MS",
     "longest wait for a connection"},
    {"idle-timeout-ms", KEY_U64, F(idle_timeout_ms), 0, DAY_MS, "MS",
     "close idle connections above --pool-min after this"},
    {"max-lifetime-ms", KEY_U64, F(max_lifetime_ms), 0, 30 * DAY_MS, "MS",
     "recycle connections after this (jittered +-10%)"},
    {"statement-timeout-ms", KEY_U64, F(statement_timeout_ms), 0, DAY_MS, "MS",
     "statement_timeout of every transaction (0 = none)"},
    {"no-prepared-statements", KEY_BOOL, F(no_prepared_statements), 0, 0, NULL,
     "do not prepare statements (PgBouncer transaction mode)"},
    {"allow-rls-bypass", KEY_BOOL, F(allow_rls_bypass), 0, 0, NULL,
     "serve even when the database role bypasses RLS (local experiments only)"},
    {"listen-database-url", KEY_STR, F(listen_database_url), 0, 0, "DSN",
     "direct conninfo for LISTEN/NOTIFY (default --database-url, none with "
     "--no-prepared-statements: then long polls and WatchQueue poll)"},
    {"migrate-database-url", KEY_STR, F(migrate_database_url), 0, 0, "DSN",
     "conninfo of the owner role for `arbiterd migrate`"},
    {"migrations-dir", KEY_STR, F(migrations_dir), 0, 0, "DIR", "where the NNNN_*.sql files are"},
    {"app-role", KEY_STR, F(app_role), 0, 0, "ROLE", "the role the server connects as"},
};

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

/* What SIGHUP may change in a running server (cfg_reload); everything else
 * takes a restart (README: "Operating arbiterd"). */
static const char *const reloadable[] = {
    "log-level",
    "pool-min",
    "pool-max",
    "pool-queue",
    "pipeline-depth",
    "acquire-timeout-ms",
    "idle-timeout-ms",
    "max-lifetime-ms",
    "statement-timeout-ms",
    "shutdown-timeout-ms",
    "max-connections",
    "idle-connection-timeout-ms",
    "write-timeout-ms",
    "max-connection-memory",
    "max-memory",
    "max-concurrent-streams",
};

void cfg_defaults(struct cfg *c)
{
    memset(c, 0, sizeof(*c));
    c->socket_path = "./arbiterd.sock";
    c->socket_mode = 0660;
    c->metrics_socket_mode = 0600;
    c->max_message_bytes = 4u << 20;
    c->max_concurrent_streams = 256;
    c->shutdown_timeout_ms = 10000;
    c->max_connections = 1024;
    c->idle_connection_timeout_ms = 300000;
    c->write_timeout_ms = 30000;
    c->max_connection_memory = 128ull << 20;
    c->max_memory = 1ull << 30;
    c->log_level = LOG_INFO;
    c->tenant_auth = CFG_TENANT_AUTH_NONE;
    c->tenant_grants_refresh_ms = 5000;
    c->pool_min = 2;
    c->pool_max = 10;
    c->pool_queue = 1024;
    c->pipeline_depth = 1;
    c->acquire_timeout_ms = 5000;
    c->idle_timeout_ms = 30000;
    c->max_lifetime_ms = 1800000;
    c->statement_timeout_ms = 30000;
    c->migrations_dir = ARBITER_MIGRATIONS_DIR;
    c->app_role = "arbiter_app";
}

int cfg_tenant_auth_parse(const char *s, enum cfg_tenant_auth *out)
{
    if (strcmp(s, "none") == 0)
        *out = CFG_TENANT_AUTH_NONE;
    else if (strcmp(s, "peer") == 0)
        *out = CFG_TENANT_AUTH_PEER;
    else
        return -EINVAL;
    return 0;
}

const char *cfg_tenant_auth_name(enum cfg_tenant_auth mode)
{
    return mode == CFG_TENANT_AUTH_PEER ? "peer" : "none";
}

int cfg_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (!s || !*s)
        return -EINVAL;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    if (v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

static int parse_octal(const char *s, unsigned *out)
{
    unsigned v = 0;

    if (!*s || strlen(s) > 4)
        return -EINVAL;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '7')
            return -EINVAL;
        v = v * 8 + (unsigned)(*p - '0');
    }
    if (v > 0777)
        return -ERANGE;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};

    for (size_t i = 0; i < 4; i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

static bool is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (strcmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return memcmp(&a6, &in6addr_loopback, sizeof(a6)) == 0;
    return false;
}

int cfg_parse_listen(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon = strrchr(s, ':');
    const char *h = s;
    size_t hl;
    uint64_t p;

    if (!colon || colon == s)
        return -EINVAL;
    hl = (size_t)(colon - s);
    if (s[0] == '[') { /* "[::1]:9090" */
        if (hl < 2 || s[hl - 1] != ']')
            return -EINVAL;
        h = s + 1;
        hl -= 2;
    }
    if (hl == 0 || hl >= hostlen)
        return -EINVAL;
    if (cfg_parse_u64(colon + 1, 1, 65535, &p) < 0)
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (!is_loopback(host))
        return -EADDRNOTAVAIL;
    *port = (uint16_t)p;
    return 0;
}

static int errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void default_text(const struct cfg *d, const struct cfg_key *k, char *out, size_t n);

static int errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* Stores |val| (from |origin|, e.g. "--pool-min" or "ARBITER_POOL_MIN")
 * into the field of |k|. */
static int set_key(struct cfg *c, const struct cfg_key *k, const char *origin, const char *val,
                   char *err, size_t errlen)
{
    char *field = (char *)c + k->off;
    uint64_t v;
    int rv = 0;

    switch (k->type) {
    case KEY_STR:
        if (!*val)
            return errf(err, errlen, "%s: empty value", origin);
        *(const char **)(void *)field = val;
        return 0;
    case KEY_U32:
    case KEY_U64:
        rv = cfg_parse_u64(val, k->min, k->max, &v);
        if (rv == -EINVAL)
            return errf(err, errlen, "%s: '%s' is not a number", origin, val);
        if (rv < 0)
            return errf(err, errlen, "%s: %s is out of range (%llu-%llu)", origin, val,
                        (unsigned long long)k->min, (unsigned long long)k->max);
        if (k->type == KEY_U32)
            *(uint32_t *)(void *)field = (uint32_t)v;
        else
            *(uint64_t *)(void *)field = v;
        return 0;
    case KEY_MODE:
        if (parse_octal(val, (unsigned *)(void *)field) < 0)
            return errf(err, errlen, "%s: '%s' is not an octal mode (0000-0777)", origin, val);
        return 0;
    case KEY_BOOL:
        if (parse_bool(val, (bool *)(void *)field) < 0)
            return errf(err, errlen, "%s: '%s' is not a boolean (1/0, true/false)", origin, val);
        return 0;
    case KEY_LEVEL:
        if (log_level_parse(val, (enum log_level *)(void *)field) < 0)
            return errf(err, errlen, "%s: '%s' is not a log level (error, warn, info, debug)",
                        origin, val);
        return 0;
    case KEY_TENANT_AUTH:
        if (cfg_tenant_auth_parse(val, (enum cfg_tenant_auth *)(void *)field) < 0)
            return errf(err, errlen, "%s: '%s' is not a tenant auth mode (none, peer)", origin,
                        val);
        return 0;
    }
    return errf(err, errlen, "%s: unsupported key type", origin);
}

/* "pool-min" → "ARBITER_POOL_MIN". */
static void env_name(const struct cfg_key *k, char *out, size_t outlen)
{
    size_t n = (size_t)snprintf(out, outlen, "ARBITER_%s", k->flag);
    for (size_t i = 8; i < n && i < outlen; i++)
        out[i] = out[i] == '-' ? '_' : (char)toupper((unsigned char)out[i]);
}

static const char *env_get(char *const envp[], const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; envp && envp[i]; i++) {
        if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
            return envp[i] + n + 1;
    }
    return NULL;
}

static int load_env(struct cfg *c, char *const envp[], char *err, size_t errlen)
{
    char name[64];
    const char *v = env_get(envp, "DATABASE_URL");

    /* DATABASE_URL is the common convention; ARBITER_DATABASE_URL wins. */
    if (v && *v)
        c->database_url = v;
    for (size_t i = 0; i < N_KEYS; i++) {
        env_name(&keys[i], name, sizeof(name));
        v = env_get(envp, name);
        /* An empty variable counts as unset, as shells make that easy. */
        if (!v || !*v)
            continue;
        if (set_key(c, &keys[i], name, v, err, errlen) < 0)
            return -EINVAL;
    }
    return 0;
}

static const struct cfg_key *find_key(const char *flag, size_t len)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        if (strlen(keys[i].flag) == len && memcmp(keys[i].flag, flag, len) == 0)
            return &keys[i];
    }
    return NULL;
}

/* Reads |path| whole into a new NUL-terminated buffer. */
static char *read_text(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    long n;

    if (f == NULL) {
        errf(err, errlen, "--config: cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n < (1 << 20) &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL &&
        fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = '\0';
    } else {
        free(buf);
        buf = NULL;
        errf(err, errlen, "--config: cannot read %s", path);
    }
    fclose(f);
    return buf;
}

static char *trim(char *s)
{
    char *e;

    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* One line of a config file: "flag = value", blank, or "# comment". */
static int load_line(struct cfg *c, char *line, const char *path, int lineno, char *err,
                     size_t errlen)
{
    char *eq, *key, *val, origin[160];
    const struct cfg_key *k;

    line = trim(line);
    if (*line == '\0' || *line == '#')
        return 0;
    eq = strchr(line, '=');
    if (eq == NULL)
        return errf(err, errlen, "%s:%d: expected 'flag = value'", path, lineno);
    *eq = '\0';
    key = trim(line);
    val = trim(eq + 1);
    k = find_key(key, strlen(key));
    if (k == NULL || k->off == F(config_path))
        return errf(err, errlen, "%s:%d: unknown setting '%s'", path, lineno, key);
    snprintf(origin, sizeof(origin), "%s:%d: %s", path, lineno, key);
    if (k->type == KEY_BOOL && *val == '\0')
        val = (char *)"true";
    return set_key(c, k, origin, val, err, errlen);
}

/* Loads the file named by --config (or ARBITER_CONFIG); |c| owns its text
 * afterwards, because string settings point into it. */
static int load_file(struct cfg *c, const char *path, char *err, size_t errlen)
{
    char *text = read_text(path, err, errlen), *line, *next;
    int lineno = 0;

    if (text == NULL)
        return -EINVAL;
    c->config_text = text;
    for (line = text; line != NULL; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        if (load_line(c, line, path, ++lineno, err, errlen) < 0)
            return -EINVAL;
    }
    return 0;
}

/* The --config path of argv, else of ARBITER_CONFIG, or NULL. */
static const char *config_arg(int argc, char *const argv[], char *const envp[])
{
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--config=", 9) == 0)
            return argv[i] + 9;
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            return argv[i + 1];
    }
    return env_get(envp, "ARBITER_CONFIG");
}

/* Handles argv[*i] ("--flag", "--flag=value" or "--flag value"). */
static int load_flag(struct cfg *c, int argc, char *const argv[], int *i, enum cfg_command *cmd,
                     char *err, size_t errlen)
{
    const char *arg = argv[*i];
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const struct cfg_key *k = find_key(name, len);
    const char *val = eq ? eq + 1 : NULL;

    if (!k && len == 6 && memcmp(name, "status", 6) == 0 && !eq && *cmd == CFG_CMD_MIGRATE) {
        c->migrate_status = true;
        return 0;
    }
    if (!k)
        return errf(err, errlen, "unknown option '%.*s' (see --help)", (int)(len + 2), arg);
    if (k->type == KEY_BOOL && !val) {
        *(bool *)(void *)((char *)c + k->off) = true;
        return 0;
    }
    if (!val) {
        if (*i + 1 >= argc)
            return errf(err, errlen, "option '--%s' needs a value", k->flag);
        val = argv[++*i];
    }
    char origin[64];
    snprintf(origin, sizeof(origin), "--%s", k->flag);
    return set_key(c, k, origin, val, err, errlen);
}

static int load_argv(struct cfg *c, int argc, char *const argv[], enum cfg_command *cmd, char *err,
                     size_t errlen)
{
    int i = 1;

    if (argc > 1 && argv[1][0] != '-') {
        if (strcmp(argv[1], "serve") == 0)
            *cmd = CFG_CMD_SERVE;
        else if (strcmp(argv[1], "migrate") == 0)
            *cmd = CFG_CMD_MIGRATE;
        else
            return errf(err, errlen, "unknown command '%s' (serve or migrate)", argv[1]);
        i = 2;
    }
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0')
            return errf(err, errlen, "unexpected argument '%s' (see --help)", a);
        if (load_flag(c, argc, argv, &i, cmd, err, errlen) < 0)
            return -EINVAL;
    }
    return 0;
}

static int validate(const struct cfg *c, char *err, size_t errlen)
{
    char host[64];
    uint16_t port;
    int rv;

    if (c->pool_min > c->pool_max)
        return errf(err, errlen, "--pool-min (%u) is larger than --pool-max (%u)",
                    (unsigned)c->pool_min, (unsigned)c->pool_max);
    /* sun_path is 108 bytes including the NUL. */
    if (strlen(c->socket_path) >= 108)
        return errf(err, errlen, "--socket: path is longer than 107 bytes");
    if (c->metrics_listen && c->metrics_socket)
        return errf(err, errlen, "--metrics-listen and --metrics-socket: choose one");
    if (c->metrics_socket && strlen(c->metrics_socket) >= 108)
        return errf(err, errlen, "--metrics-socket: path is longer than 107 bytes");
    if (c->metrics_listen) {
        rv = cfg_parse_listen(c->metrics_listen, host, sizeof(host), &port);
        if (rv == -EADDRNOTAVAIL)
            return errf(err, errlen, "--metrics-listen: '%s' is not a loopback address",
                        c->metrics_listen);
        if (rv < 0)
            return errf(err, errlen, "--metrics-listen: '%s' is not HOST:PORT", c->metrics_listen);
    }
    return 0;
}

/* --help and --version win over everything else, even over bad flags. */
static bool has_flag(int argc, char *const argv[], const char *flag)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], flag) == 0)
            return true;
    }
    return false;
}

int cfg_load(struct cfg *c, int argc, char *const argv[], char *const envp[], enum cfg_command *cmd,
             char *err, size_t errlen)
{
    enum cfg_command command = CFG_CMD_SERVE;

    if (errlen)
        err[0] = '\0';
    if (has_flag(argc, argv, "--help") || has_flag(argc, argv, "-h")) {
        *cmd = CFG_CMD_HELP;
        return 0;
    }
    if (has_flag(argc, argv, "--version")) {
        *cmd = CFG_CMD_VERSION;
        return 0;
    }
    cfg_defaults(c);
    /* The file first, so that the environment and the command line win. */
    c->config_path = config_arg(argc, argv, envp);
    if (c->config_path != NULL && load_file(c, c->config_path, err, errlen) < 0) {
        cfg_free(c);
        return -EINVAL;
    }
    if (load_env(c, envp, err, errlen) < 0 || load_argv(c, argc, argv, &command, err, errlen) < 0 ||
        validate(c, err, errlen) < 0) {
        cfg_free(c);
        return -EINVAL;
    }
    *cmd = command;
    return 0;
}

void cfg_free(struct cfg *c)
{
    free(c->config_text);
    c->config_text = NULL;
}

static bool is_reloadable(const struct cfg_key *k)
{
    for (size_t i = 0; i < sizeof(reloadable) / sizeof(reloadable[0]); i++)
        if (strcmp(reloadable[i], k->flag) == 0)
            return true;
    return false;
}

/* The size of the field of |k|. */
static size_t key_size(const struct cfg_key *k)
{
    switch (k->type) {
    case KEY_STR:
        return sizeof(const char *);
    case KEY_U32:
        return sizeof(uint32_t);
    case KEY_U64:
        return sizeof(uint64_t);
    case KEY_MODE:
        return sizeof(unsigned);
    case KEY_BOOL:
        return sizeof(bool);
    case KEY_TENANT_AUTH:
        return sizeof(enum cfg_tenant_auth);
    default:
        return sizeof(enum log_level);
    }
}

static bool same(const struct cfg *a, const struct cfg *b, const struct cfg_key *k)
{
    const char *x = (const char *)a + k->off, *y = (const char *)b + k->off;

    if (k->type == KEY_STR) {
        const char *s = *(const char *const *)(const void *)x;
        const char *t = *(const char *const *)(const void *)y;

        return s == t || (s && t && strcmp(s, t) == 0);
    }
    return memcmp(x, y, key_size(k)) == 0;
}

int cfg_reload(struct cfg *live, int argc, char *const argv[], char *const envp[], char *err,
               size_t errlen)
{
    enum cfg_command cmd;
    struct cfg fresh;
    char was[64], now[64];
    int changed = 0;

    if (cfg_load(&fresh, argc, argv, envp, &cmd, err, errlen) < 0)
        return -EINVAL;
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct cfg_key *k = &keys[i];

        if (same(live, &fresh, k))
            continue;
        if (!is_reloadable(k)) {
            log_warn("config: --%s changed; it takes effect after a restart", k->flag);
            continue;
        }
        default_text(live, k, was, sizeof(was));
        default_text(&fresh, k, now, sizeof(now));
        memcpy((char *)live + k->off, (const char *)&fresh + k->off, key_size(k));
        log_info("config: --%s %s -> %s", k->flag, was, now);
        changed++;
    }
    cfg_free(&fresh);
    return changed;
}

const char *cfg_listen_url(const struct cfg *c)
{
    if (c->listen_database_url != NULL)
        return c->listen_database_url;
    return c->no_prepared_statements ? NULL : c->database_url;
}

static void default_text(const struct cfg *d, const struct cfg_key *k, char *out, size_t n)
{
    const char *field = (const char *)d + k->off;
    const char *s;

    switch (k->type) {
    case KEY_STR:
        s = *(const char *const *)(const void *)field;
        snprintf(out, n, "%s", s ? s : "unset");
        break;
    case KEY_U32:
        snprintf(out, n, "%u", (unsigned)*(const uint32_t *)(const void *)field);
        break;
    case KEY_U64:
        snprintf(out, n, "%llu", (unsigned long long)*(const uint64_t *)(const void *)field);
        break;
    case KEY_MODE:
        snprintf(out, n, "0%o", *(const unsigned *)(const void *)field);
        break;
    case KEY_BOOL:
        snprintf(out, n, "%s", *(const bool *)(const void *)field ? "on" : "off");
        break;
    case KEY_LEVEL:
        snprintf(out, n, "%s", log_level_name(*(const enum log_level *)(const void *)field));
        break;
    case KEY_TENANT_AUTH:
        snprintf(out, n, "%s",
                 cfg_tenant_auth_name(*(const enum cfg_tenant_auth *)(const void *)field));
        break;
    }
}

void cfg_usage(FILE *out)
{
    struct cfg d;
    char flag[64], env[64], def[256];

    cfg_defaults(&d);
    fprintf(out, "usage: arbiterd [serve] [OPTIONS]\n"
                 "       arbiterd migrate [--status] [OPTIONS]\n"
                 "       arbiterd --help | --version\n\n"
                 "gRPC gateway to PostgreSQL on a Unix socket.\n\n"
                 "Options (each also read from the environment variable shown):\n");
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct cfg_key *k = &keys[i];
        if (!k->help)
            continue; /* undocumented on purpose (test-only switches) */
        snprintf(flag, sizeof(flag), "--%s%s%s", k->flag, k->arg ? " " : "", k->arg ? k->arg : "");
        env_name(k, env, sizeof(env));
        default_text(&d, k, def, sizeof(def));
        fprintf(out, "  %-34s %s\n  %-34s env %s, default %s\n", flag, k->help, "", env, def);
    }
    fprintf(out, "\n  --status                           (migrate) list applied and pending "
                 "migrations\n  --help, --version\n");
}
