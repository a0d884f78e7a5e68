/* arbiterctl: call any arbiterd method from the command line.
 *
 *   arbiterctl [options] call Service.Method [field=value ...]
 *   arbiterctl [options] list [Service | Service.Method]
 *
 * The request is built generically from the compiled-in protobuf-c
 * descriptors (ctl_request.c), sent with libarbiter, and every response
 * message is printed as JSON (ctl_json.c). Exit codes are in usage().
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter.h"
#include "config.h"
#include "ctl.h"

enum {
    EXIT_USAGE = 1,   /* bad arguments, unknown method or field, bad value */
    EXIT_CONNECT = 2, /* cannot connect, or the connection was lost */
    EXIT_DECODE = 3,  /* a response was not the method's output message */
    EXIT_STATUS = 10, /* + the gRPC status code of a non-OK answer */
};

#define MAX_HEADERS 32

struct ctl_opts {
    const char *socket; /* borrowed from argv or the environment */
    const char *tenant, *user, *session;
    arbiter_metadata headers[MAX_HEADERS + 3];
    size_t n_headers;
    unsigned long long timeout_ms;
    bool compact, all, dry_run;
    const char *pos[512]; /* positional arguments, borrowed from argv */
    size_t n_pos;
};

struct ctl_call {
    const ProtobufCMessageDescriptor *output; /* static */
    const char *socket;                       /* borrowed, for messages */
    int json_flags;
    int exit_code;
    arbiter_client *client; /* closed when the call ends */
};

static void usage(FILE *out)
{
    fputs("usage: arbiterctl [options] call Service.Method [field=value ...]\n"
          "       arbiterctl [options] list [Service | Service.Method]\n"
          "\n"
          "Calls arbiterd over its Unix socket (gRPC) and prints each response message\n"
          "as JSON (proto3 JSON mapping with the original proto field names; scalars\n"
          "printed even when default, int64 as strings, Timestamps as RFC 3339).\n"
          "Service is the short or full name: AgentRegistry.GetAgent,\n"
          "arbiter.v1.AgentRegistry.GetAgent, grpc.health.v1.Health.Check.\n"
          "\n"
          "Request fields: field=value, dotted paths into nested messages\n"
          "(agent.capabilities.languages=c), a repeated field by repeating the key,\n"
          "repeated messages by index (items[0].name=x), enums by name or number, bytes\n"
          "as base64, Timestamps as RFC 3339, wrappers as their value\n"
          "(min_success_rate=0.5), an empty sub-message as field={}.\n"
          "`arbiterctl list Service.Method` shows the request's fields.\n"
          "\n"
          "options (anywhere on the line):\n"
          "  --socket PATH      server socket (env ARBITER_SOCKET, else ./arbiterd.sock)\n"
          "  --tenant T         x-tenant-id metadata (needed by arbiter.v1 services)\n"
          "  --user U           x-user-id metadata\n"
          "  --session S        x-session-id metadata\n"
          "  --header K=V       any other metadata (repeatable; K ending in -bin: V is\n"
          "                     sent base64-encoded)\n"
          "  --timeout-ms N     deadline of the call (default 30000; 0 = none)\n"
          "  --compact          one JSON document per line instead of pretty-printed\n"
          "  --all              list: include the test-only service\n"
          "  --dry-run          call: print the request as JSON instead of sending it\n"
          "  -h, --help         this help;  --version  the version\n"
          "\n"
          "exit codes:\n"
          "  0        OK\n"
          "  1        usage error: bad option, unknown service/method/field, bad value\n"
          "  2        cannot connect to the server, or the connection was lost\n"
          "  3        a response could not be decoded\n"
          "  10+code  the server answered a non-OK gRPC status, e.g. 13 INVALID_ARGUMENT,\n"
          "           15 NOT_FOUND, 16 ALREADY_EXISTS, 17 PERMISSION_DENIED,\n"
          "           14 DEADLINE_EXCEEDED, 24 UNAVAILABLE; stderr gets\n"
          "           \"ERROR: <STATUS_NAME> (<code>): <message>\"\n",
          out);
}

/* Takes the value of option |name| from "--name=value" or the next
 * argument. Returns NULL (after a message) when it is missing. */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
    const char *a = argv[*i];
    size_t n = strlen(name);

    if (a[n] == '=')
        return a + n + 1;
    if (*i + 1 >= argc) {
        fprintf(stderr, "arbiterctl: %s needs a value\n", name);
        return NULL;
    }
    return argv[++*i];
}

static bool opt_is(const char *a, const char *name)
{
    size_t n = strlen(name);

    return strncmp(a, name, n) == 0 && (a[n] == '\0' || a[n] == '=');
}

static int add_header(struct ctl_opts *o, const char *key, const char *value)
{
    if (o->n_headers >= MAX_HEADERS + 3) {
        fprintf(stderr, "arbiterctl: too many headers\n");
        return -E2BIG;
    }
    o->headers[o->n_headers++] = (arbiter_metadata){.key = key, .value = value};
    return 0;
}

/* --header K=V: splits in place (argv is ours to modify). */
static int parse_header(struct ctl_opts *o, char *kv)
{
    char *eq = strchr(kv, '=');

    if (!eq || eq == kv) {
        fprintf(stderr, "arbiterctl: --header wants KEY=VALUE, got '%s'\n", kv);
        return -EINVAL;
    }
    *eq = '\0';
    return add_header(o, kv, eq + 1);
}

static int parse_timeout(struct ctl_opts *o, const char *v)
{
    char *end;

    errno = 0;
    o->timeout_ms = strtoull(v, &end, 10);
    if (*v < '0' || *v > '9' || *end || errno || o->timeout_ms > 1000ull * 3600 * 24 * 365) {
        fprintf(stderr, "arbiterctl: bad --timeout-ms '%s'\n", v);
        return -EINVAL;
    }
    return 0;
}

/* Stores the value |v| of the |k|-th valued option (see parse_option). */
static int apply_valued(struct ctl_opts *o, size_t k, const char *v)
{
    switch (k) {
    case 0:
        o->socket = v;
        return 0;
    case 1:
        o->tenant = v;
        return 0;
    case 2:
        o->user = v;
        return 0;
    case 3:
        o->session = v;
        return 0;
    case 4:
        return parse_header(o, (char *)v);
    default:
        return parse_timeout(o, v);
    }
}

/* Handles one option at argv[*i]. Returns 0, 1 when the program should
 * exit 0 (help, version), or negative for a usage error. */
static int parse_option(struct ctl_opts *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    const char *v;

    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
        usage(stdout);
        return 1;
    }
    if (!strcmp(a, "--version")) {
        printf("arbiterctl %s\n", ARBITER_VERSION);
        return 1;
    }
    if (!strcmp(a, "--compact") || !strcmp(a, "--all") || !strcmp(a, "--dry-run")) {
        *(a[2] == 'c' ? &o->compact : a[2] == 'a' ? &o->all : &o->dry_run) = true;
        return 0;
    }
    static const char *const valued[] = {"--socket",  "--tenant", "--user",
                                         "--session", "--header", "--timeout-ms"};
    for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++) {
        if (!opt_is(a, valued[k]))
            continue;
        v = opt_value(argc, argv, i, valued[k]);
        if (!v)
            return -EINVAL;
        return apply_valued(o, k, v);
    }
    fprintf(stderr, "arbiterctl: unknown option '%s' (see --help)\n", a);
    return -EINVAL;
}

static int parse_args(struct ctl_opts *o, int argc, char **argv)
{
    bool options_done = false;

    o->socket = getenv("ARBITER_SOCKET");
    if (!o->socket || !*o->socket)
        o->socket = "./arbiterd.sock";
    o->timeout_ms = 30000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rv;

        if (!options_done && !strcmp(a, "--")) {
            options_done = true;
        } else if (!options_done && a[0] == '-' && a[1] != '\0') {
            rv = parse_option(o, argc, argv, &i);
            if (rv != 0)
                return rv;
        } else if (o->n_pos < sizeof o->pos / sizeof o->pos[0]) {
            o->pos[o->n_pos++] = a;
        } else {
            fprintf(stderr, "arbiterctl: too many arguments\n");
            return -E2BIG;
        }
    }
    if ((o->tenant && add_header(o, "x-tenant-id", o->tenant) < 0) ||
        (o->user && add_header(o, "x-user-id", o->user) < 0) ||
        (o->session && add_header(o, "x-session-id", o->session) < 0))
        return -E2BIG;
    return 0;
}

/* ---- list ---------------------------------------------------------------- */

static void list_service(const ProtobufCServiceDescriptor *s)
{
    printf("%s\n", s->name);
    for (unsigned m = 0; m < s->n_methods; m++)
        printf("  %s(%s) returns (%s)\n", s->methods[m].name, s->methods[m].input->name,
               s->methods[m].output->name);
}

static int cmd_list(const struct ctl_opts *o)
{
    const ProtobufCServiceDescriptor *s;
    const ProtobufCMethodDescriptor *m;

    if (o->n_pos > 2) {
        fprintf(stderr, "arbiterctl: list takes at most one argument\n");
        return EXIT_USAGE;
    }
    if (o->n_pos == 1) {
        for (size_t i = 0; ctl_services[i]; i++) {
            if (o->all || !ctl_service_hidden(ctl_services[i]))
                list_service(ctl_services[i]);
        }
        return 0;
    }
    for (size_t i = 0; ctl_services[i]; i++) {
        s = ctl_services[i];
        if (!strcmp(o->pos[1], s->name) || !strcmp(o->pos[1], s->short_name)) {
            list_service(s);
            return 0;
        }
    }
    if (ctl_resolve_method(o->pos[1], &s, &m) < 0) {
        fprintf(stderr, "arbiterctl: unknown service or method '%s' (see arbiterctl list)\n",
                o->pos[1]);
        return EXIT_USAGE;
    }
    printf("/%s/%s(%s) returns (%s)\nrequest fields:\n", s->name, m->name, m->input->name,
           m->output->name);
    ctl_print_fields(stdout, m->input, 4);
    return 0;
}

/* ---- call ---------------------------------------------------------------- */

/* Prints json-c's text with empty arrays and objects as [] and {} (its
 * pretty printer spreads them over two lines); strings are left alone. */
static void print_json(struct json_object *json, int flags)
{
    const char *s = json_object_to_json_string_ext(json, flags);
    bool in_str = false;

    for (const char *p = s; *p; p++) {
        if (in_str && *p == '\\' && p[1]) {
            putchar(*p++);
        } else if (*p == '"') {
            in_str = !in_str;
        } else if (!in_str && (*p == '[' || *p == '{')) {
            const char *q = p + 1;

            while (*q == ' ' || *q == '\n')
                q++;
            if (*q == (*p == '[' ? ']' : '}')) {
                fputs(*p == '[' ? "[]" : "{}", stdout);
                p = q;
                continue;
            }
        }
        putchar(*p);
    }
    putchar('\n');
}

static void on_message(arbiter_call *call, const uint8_t *data, size_t len, void *user)
{
    struct ctl_call *cc = user;
    ProtobufCMessage *msg = protobuf_c_message_unpack(cc->output, NULL, len, data);
    struct json_object *json;

    if (!msg) {
        fprintf(stderr, "ERROR: cannot decode a response of %zu bytes as %s\n", len,
                cc->output->name);
        cc->exit_code = EXIT_DECODE;
        arbiter_call_cancel(call);
        return;
    }
    json = ctl_msg_to_json(msg);
    protobuf_c_message_free_unpacked(msg, NULL);
    if (!json) {
        fprintf(stderr, "ERROR: out of memory\n");
        cc->exit_code = EXIT_DECODE;
        arbiter_call_cancel(call);
        return;
    }
    print_json(json, cc->json_flags);
    fflush(stdout);
    json_object_put(json);
}

static void on_done(arbiter_call *call, const arbiter_result *r, void *user)
{
    struct ctl_call *cc = user;

    if (cc->exit_code == 0 && r->status != 0) {
        fprintf(stderr, "ERROR: %s (%d): %s%s%s%s\n", arbiter_status_name(r->status), r->status,
                r->message, r->transport_error ? " (socket " : "",
                r->transport_error ? cc->socket : "", r->transport_error ? ")" : "");
        cc->exit_code = r->transport_error ? EXIT_CONNECT : EXIT_STATUS + r->status;
    }
    arbiter_client_close(cc->client);
}

/* Sends |req| to |m| and runs a private loop until the call ended. */
static int json_flags(const struct ctl_opts *o)
{
    if (o->compact)
        return JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;
    return JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE;
}

/* --dry-run: the request as JSON on stdout. */
static int print_request(const struct ctl_opts *o, const ProtobufCMessage *req)
{
    struct json_object *json = ctl_msg_to_json(req);

    if (!json)
        return EXIT_USAGE;
    print_json(json, json_flags(o));
    json_object_put(json);
    return 0;
}

static int run_call(const struct ctl_opts *o, const ProtobufCServiceDescriptor *s,
                    const ProtobufCMethodDescriptor *m, const ProtobufCMessage *req)
{
    struct ctl_call cc = {
        .output = m->output,
        .socket = o->socket,
        .json_flags = json_flags(o),
    };
    char path[512];
    struct arbiter_call_opts co = {
        .path = path,
        .metadata = o->headers,
        .n_metadata = o->n_headers,
        .timeout_ms = o->timeout_ms,
        .on_message = on_message,
        .on_done = on_done,
        .user = &cc,
    };
    uv_loop_t loop;
    int rv;

    snprintf(path, sizeof path, "/%s/%s", s->name, m->name);
    if (uv_loop_init(&loop) < 0)
        return EXIT_CONNECT;
    rv = arbiter_client_new(&loop, o->socket, &cc.client);
    if (rv < 0) {
        fprintf(stderr, "ERROR: cannot connect to arbiterd at %s: %s\n", o->socket, strerror(-rv));
        uv_loop_close(&loop);
        return EXIT_CONNECT;
    }
    rv = arbiter_call_start_message(cc.client, &co, req, NULL);
    if (rv < 0) {
        fprintf(stderr, "arbiterctl: cannot start the call: %s\n", strerror(-rv));
        cc.exit_code = rv == -EINVAL ? EXIT_USAGE : EXIT_CONNECT;
        arbiter_client_close(cc.client);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return cc.exit_code;
}

static int cmd_call(const struct ctl_opts *o)
{
    const ProtobufCServiceDescriptor *s;
    const ProtobufCMethodDescriptor *m;
    ProtobufCMessage *req;
    char err[1024];
    arena a;
    int rv, code = EXIT_USAGE;

    if (o->n_pos < 2) {
        fprintf(stderr, "arbiterctl: call needs Service.Method (see arbiterctl list)\n");
        return EXIT_USAGE;
    }
    rv = ctl_resolve_method(o->pos[1], &s, &m);
    if (rv < 0) {
        fprintf(stderr, "arbiterctl: %s '%s' (see arbiterctl list)\n",
                rv == -ESRCH ? "no such method" : "unknown service in", o->pos[1]);
        return EXIT_USAGE;
    }
    arena_init(&a, 0, NULL);
    req = ctl_msg_new(m->input, &a);
    for (size_t i = 2; req && i < o->n_pos; i++) {
        rv = ctl_msg_assign(req, o->pos[i], &a, err, sizeof err);
        if (rv < 0) {
            fprintf(stderr, "arbiterctl: %s\n", rv == -ENOMEM ? "out of memory" : err);
            goto out;
        }
    }
    if (req)
        code = o->dry_run ? print_request(o, req) : run_call(o, s, m, req);
out:
    arena_deinit(&a);
    return code;
}

int main(int argc, char **argv)
{
    struct ctl_opts o = {0};
    int rv = parse_args(&o, argc, argv);

    if (rv != 0)
        return rv > 0 ? 0 : EXIT_USAGE;
    /* A server that hangs up mid-write must be an EPIPE, not a kill. */
    signal(SIGPIPE, SIG_IGN);
    if (o.n_pos == 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(o.pos[0], "call"))
        return cmd_call(&o);
    if (!strcmp(o.pos[0], "list"))
        return cmd_list(&o);
    fprintf(stderr, "arbiterctl: unknown command '%s' (call or list; see --help)\n", o.pos[0]);
    return EXIT_USAGE;
}
