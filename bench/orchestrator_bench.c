/* The driver of bench/orchestrator.sh: the Orchestrator's full cycle and
 * its latencies, through libarbiter on one libuv loop (so the client costs
 * little next to the server and PostgreSQL on the same cores).
 *
 *   orchestrator-bench SOCKET TENANT cycle SECONDS WORKERS INFLIGHT [watch]
 *       WORKERS workers, each on its own connection, each running INFLIGHT
 *       loops of EnqueueTask -> DequeueTasks(max 1) -> CompleteTask at
 *       once, for SECONDS; counts completed tasks. With "watch", a
 *       WatchQueue stream on one more connection, and the time from each
 *       enqueue's start to its QUEUED event.
 *   orchestrator-bench SOCKET TENANT poll ROUNDS
 *       a DequeueTasks long poll waits; 5 ms later a task is enqueued on
 *       another connection: the time from the enqueue's start to the
 *       poll's answer, ROUNDS times.
 *
 * Prints "name value" lines (rates per second, latencies in ms). */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter.h"
#include "orchestrator.pb-c.h"

#define MAX_WORKERS 64
#define MAX_INFLIGHT 64
#define ID_LEN 36
#define TABLE_BITS 20 /* task ids seen: 1M slots */
#define SVC "/arbiter.v1.Orchestrator/"

/* When a task was enqueued and when its QUEUED event arrived (ns). */
struct seen {
    char id[ID_LEN + 1];
    uint64_t enqueued, event;
};

struct samples {
    double *v;
    size_t n, cap;
};

struct bench;
struct worker;

/* One loop of cycles; a worker runs several on its connection. */
struct lane {
    struct worker *w;
    struct bench *b;
    uint64_t cycle_start, enqueue_start;
    uint64_t cycles;
};

struct worker {
    arbiter_client *client;
    char name[16];
    struct lane lanes[MAX_INFLIGHT];
};

struct bench {
    uv_loop_t loop;
    const char *socket, *tenant;
    uint64_t end_ns;
    bool stopping;
    struct worker workers[MAX_WORKERS];
    int nworkers, inflight, running;
    arbiter_client *aux; /* the stream, or the enqueuer of the poll mode */
    arbiter_call *stream;
    bool live;
    struct seen *table; /* open addressing by task id */
    struct samples cycle, latency;
    int rounds, round;
    uv_timer_t poll_timer;
    uint64_t poll_enqueued;
    int errors;
};

static void die(const char *what, int rv)
{
    fprintf(stderr, "orchestrator-bench: %s: %s\n", what, rv < 0 ? strerror(-rv) : "failed");
    exit(1);
}

static void add(struct samples *s, double v)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->v = realloc(s->v, s->cap * sizeof(*s->v));
        if (s->v == NULL)
            die("out of memory", -ENOMEM);
    }
    s->v[s->n++] = v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void report(const char *name, struct samples *s)
{
    if (s->n == 0) {
        printf("%s_n 0\n", name);
        return;
    }
    qsort(s->v, s->n, sizeof(double), cmp_double);
    printf("%s_n %zu\n%s_p50_ms %.3f\n%s_p99_ms %.3f\n%s_max_ms %.3f\n", name, s->n, name,
           s->v[(s->n - 1) / 2], name, s->v[(s->n - 1) * 99 / 100], name, s->v[s->n - 1]);
}

/* The slot of task |id| (created empty when new). */
static struct seen *slot(struct bench *b, const char *id)
{
    uint64_t h = 1469598103934665603ull;
    size_t mask = ((size_t)1 << TABLE_BITS) - 1, i;

    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    for (i = h & mask;; i = (i + 1) & mask) {
        if (b->table[i].id[0] == '\0') {
            snprintf(b->table[i].id, sizeof(b->table[i].id), "%s", id);
            return &b->table[i];
        }
        if (strcmp(b->table[i].id, id) == 0)
            return &b->table[i];
    }
}

static void start(struct bench *b, arbiter_client *c, const char *method,
                  const ProtobufCMessage *req, arbiter_done_cb done, arbiter_message_cb msg,
                  void *user, arbiter_call **out)
{
    char path[96];
    const arbiter_metadata md = {"x-tenant-id", b->tenant, 0};
    struct arbiter_call_opts o = {
        .path = path,
        .metadata = &md,
        .n_metadata = 1,
        .timeout_ms = 60000,
        .on_message = msg,
        .on_done = done,
        .user = user,
    };
    int rv;

    snprintf(path, sizeof(path), SVC "%s", method);
    rv = arbiter_call_start_message(c, &o, req, out);
    if (rv < 0)
        die(method, rv);
}

static bool failed(struct bench *b, const char *what, const arbiter_result *r)
{
    if (r->status == 0)
        return false;
    fprintf(stderr, "orchestrator-bench: %s: %s: %s\n", what, arbiter_status_name(r->status),
            r->message);
    b->errors++;
    return true;
}

/* ---- the cycle ----------------------------------------------------------- */

static void cycle_begin(struct lane *l);

/* Closes every connection: the loop then runs out. */
static void finish(struct bench *b)
{
    if (b->stream != NULL)
        arbiter_call_cancel(b->stream);
    for (int i = 0; i < b->nworkers; i++)
        arbiter_client_close(b->workers[i].client);
    arbiter_client_close(b->aux);
}

static void lane_done(struct lane *l)
{
    if (--l->b->running == 0)
        finish(l->b);
}

static void on_completed(arbiter_call *call, const arbiter_result *r, void *user)
{
    struct lane *l = user;
    uint64_t now = uv_hrtime();

    if (!failed(l->b, "CompleteTask", r)) {
        l->cycles++;
        add(&l->b->cycle, (double)(now - l->cycle_start) / 1e6);
    }
    cycle_begin(l);
}

static void on_dequeued(arbiter_call *call, const arbiter_result *r, void *user)
{
    struct lane *l = user;
    Arbiter__V1__DequeueTasksResponse *resp;
    Arbiter__V1__CompleteTaskRequest req = ARBITER__V1__COMPLETE_TASK_REQUEST__INIT;

    if (failed(l->b, "DequeueTasks", r)) {
        cycle_begin(l);
        return;
    }
    resp = arbiter__v1__dequeue_tasks_response__unpack(NULL, r->response_len, r->response);
    if (resp == NULL || resp->n_tasks == 0) { /* another worker took it: go round */
        arbiter__v1__dequeue_tasks_response__free_unpacked(resp, NULL);
        cycle_begin(l);
        return;
    }
    req.task_id = resp->tasks[0]->id;
    req.lease_token = resp->tasks[0]->lease_token;
    start(l->b, l->w->client, "CompleteTask", &req.base, on_completed, NULL, l, NULL);
    arbiter__v1__dequeue_tasks_response__free_unpacked(resp, NULL);
}

static void on_enqueued(arbiter_call *call, const arbiter_result *r, void *user)
{
    struct lane *l = user;
    Arbiter__V1__Task *task;
    Arbiter__V1__DequeueTasksRequest req = ARBITER__V1__DEQUEUE_TASKS_REQUEST__INIT;

    if (failed(l->b, "EnqueueTask", r)) {
        cycle_begin(l);
        return;
    }
    task = arbiter__v1__task__unpack(NULL, r->response_len, r->response);
    if (task != NULL && l->b->stream != NULL)
        slot(l->b, task->id)->enqueued = l->enqueue_start;
    arbiter__v1__task__free_unpacked(task, NULL);
    req.worker_id = l->w->name;
    req.max = 1;
    req.lease_ms = 30000;
    start(l->b, l->w->client, "DequeueTasks", &req.base, on_dequeued, NULL, l, NULL);
}

static void cycle_begin(struct lane *l)
{
    Arbiter__V1__EnqueueTaskRequest req = ARBITER__V1__ENQUEUE_TASK_REQUEST__INIT;
    Arbiter__V1__Task task = ARBITER__V1__TASK__INIT;

    l->cycle_start = uv_hrtime();
    if (l->cycle_start >= l->b->end_ns || l->b->errors > 100) {
        lane_done(l);
        return;
    }
    task.task_type = (char *)"bench";
    task.payload_json = (char *)"{\"n\": 1}";
    req.task = &task;
    l->enqueue_start = l->cycle_start;
    start(l->b, l->w->client, "EnqueueTask", &req.base, on_enqueued, NULL, l, NULL);
}

static void start_workers(struct bench *b)
{
    for (int i = 0; i < b->nworkers; i++)
        for (int k = 0; k < b->inflight; k++)
            cycle_begin(&b->workers[i].lanes[k]);
}

/* ---- the stream ---------------------------------------------------------- */

static void on_event(arbiter_call *call, const uint8_t *data, size_t len, void *user)
{
    struct bench *b = user;
    uint64_t now = uv_hrtime();
    Arbiter__V1__QueueEvent *ev = arbiter__v1__queue_event__unpack(NULL, len, data);

    if (ev == NULL)
        return;
    if (ev->resync && !b->live) {
        b->live = true; /* the opening resync: the stream is live, go */
        start_workers(b);
    } else if (ev->status == ARBITER__V1__TASK_STATUS__TASK_STATUS_QUEUED &&
               strlen(ev->task_id) == ID_LEN) {
        slot(b, ev->task_id)->event = now;
    }
    arbiter__v1__queue_event__free_unpacked(ev, NULL);
}

static void on_stream_done(arbiter_call *call, const arbiter_result *r, void *user)
{
    struct bench *b = user;

    b->stream = NULL;
    if (r->status != 1 /* CANCELLED: ours */)
        failed(b, "WatchQueue", r);
}

static void watch_latencies(struct bench *b)
{
    for (size_t i = 0; i < ((size_t)1 << TABLE_BITS); i++) {
        const struct seen *s = &b->table[i];

        if (s->enqueued != 0 && s->event != 0)
            add(&b->latency, (double)(s->event - s->enqueued) / 1e6);
    }
}

/* ---- the long poll -------------------------------------------------------- */

static void poll_round(struct bench *b);

static void on_poll_enqueued(arbiter_call *call, const arbiter_result *r, void *user)
{
    failed(user, "EnqueueTask", r);
}

static void on_poll_completed(arbiter_call *call, const arbiter_result *r, void *user)
{
    struct bench *b = user;

    failed(b, "CompleteTask", r);
    poll_round(b);
}

static void on_poll_answer(arbiter_call *call, const arbiter_result *r, void *user)
{
    struct bench *b = user;
    uint64_t now = uv_hrtime();
    Arbiter__V1__DequeueTasksResponse *resp;
    Arbiter__V1__CompleteTaskRequest req = ARBITER__V1__COMPLETE_TASK_REQUEST__INIT;

    if (failed(b, "DequeueTasks", r)) {
        poll_round(b);
        return;
    }
    resp = arbiter__v1__dequeue_tasks_response__unpack(NULL, r->response_len, r->response);
    if (b->poll_enqueued == 0) /* a task left from before: no enqueue this round */
        uv_timer_stop(&b->poll_timer);
    else if (resp != NULL && resp->n_tasks == 1)
        add(&b->latency, (double)(now - b->poll_enqueued) / 1e6);
    if (resp == NULL || resp->n_tasks == 0) {
        arbiter__v1__dequeue_tasks_response__free_unpacked(resp, NULL);
        poll_round(b);
        return;
    }
    /* Done with it, so no later round finds it (not measured). */
    req.task_id = resp->tasks[0]->id;
    req.lease_token = resp->tasks[0]->lease_token;
    start(b, b->aux, "CompleteTask", &req.base, on_poll_completed, NULL, b, NULL);
    arbiter__v1__dequeue_tasks_response__free_unpacked(resp, NULL);
}

static void on_poll_timer(uv_timer_t *t)
{
    struct bench *b = t->data;
    Arbiter__V1__EnqueueTaskRequest req = ARBITER__V1__ENQUEUE_TASK_REQUEST__INIT;
    Arbiter__V1__Task task = ARBITER__V1__TASK__INIT;

    task.task_type = (char *)"poll";
    req.task = &task;
    b->poll_enqueued = uv_hrtime();
    start(b, b->aux, "EnqueueTask", &req.base, on_poll_enqueued, NULL, b, NULL);
}

static void poll_round(struct bench *b)
{
    Arbiter__V1__DequeueTasksRequest req = ARBITER__V1__DEQUEUE_TASKS_REQUEST__INIT;
    char *types[] = {(char *)"poll"};

    if (b->round++ == b->rounds || b->errors > 0) {
        uv_close((uv_handle_t *)&b->poll_timer, NULL);
        finish(b);
        return;
    }
    b->poll_enqueued = 0;
    req.worker_id = (char *)"poller";
    req.task_types = types;
    req.n_task_types = 1;
    req.wait_ms = 10000;
    start(b, b->workers[0].client, "DequeueTasks", &req.base, on_poll_answer, NULL, b, NULL);
    uv_timer_start(&b->poll_timer, on_poll_timer, 5, 0);
}

/* ---- main ------------------------------------------------------------------ */

static arbiter_client *connect_to(struct bench *b)
{
    arbiter_client *c;
    int rv = arbiter_client_new(&b->loop, b->socket, &c);

    if (rv < 0)
        die("connect", rv);
    return c;
}

static void run_cycle(struct bench *b, double seconds, bool watch)
{
    Arbiter__V1__WatchQueueRequest req = ARBITER__V1__WATCH_QUEUE_REQUEST__INIT;
    uint64_t began;

    b->table = calloc((size_t)1 << TABLE_BITS, sizeof(*b->table));
    if (b->table == NULL)
        die("out of memory", -ENOMEM);
    b->running = b->nworkers * b->inflight;
    b->end_ns = uv_hrtime() + (uint64_t)(seconds * 1e9);
    began = uv_hrtime();
    if (watch) {
        b->aux = connect_to(b);
        start(b, b->aux, "WatchQueue", &req.base, on_stream_done, on_event, b, &b->stream);
    } else {
        start_workers(b);
    }
    uv_run(&b->loop, UV_RUN_DEFAULT);
    uint64_t cycles = 0;
    for (int i = 0; i < b->nworkers; i++)
        for (int k = 0; k < b->inflight; k++)
            cycles += b->workers[i].lanes[k].cycles;
    printf("cycles %" PRIu64 "\ncycle_rate %.1f\n", cycles,
           (double)cycles / ((double)(uv_hrtime() - began) / 1e9));
    report("cycle", &b->cycle);
    if (watch) {
        watch_latencies(b);
        report("watch", &b->latency);
    }
    free(b->table);
}

static long number(const char *s, long min, long max)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || v < min || v > max)
        die("not a number in range", -EINVAL);
    return v;
}

int main(int argc, char **argv)
{
    static struct bench b; /* 1M-slot table pointer and 64 workers: not on the stack */
    bool cycle = argc > 3 && strcmp(argv[3], "cycle") == 0;

    if (argc < 5 || (!cycle && strcmp(argv[3], "poll") != 0) || (cycle && argc < 7)) {
        fprintf(stderr,
                "usage: %s SOCKET TENANT cycle SECONDS WORKERS INFLIGHT [watch]\n"
                "       %s SOCKET TENANT poll ROUNDS\n",
                argv[0], argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&b.loop);
    b.socket = argv[1];
    b.tenant = argv[2];
    b.nworkers = cycle ? (int)number(argv[5], 1, MAX_WORKERS) : 1;
    b.inflight = cycle ? (int)number(argv[6], 1, MAX_INFLIGHT) : 1;
    for (int i = 0; i < b.nworkers; i++) {
        b.workers[i].client = connect_to(&b);
        snprintf(b.workers[i].name, sizeof(b.workers[i].name), "w%d", i);
        for (int k = 0; k < MAX_INFLIGHT; k++) {
            b.workers[i].lanes[k].w = &b.workers[i];
            b.workers[i].lanes[k].b = &b;
        }
    }
    if (cycle) {
        run_cycle(&b, (double)number(argv[4], 1, 3600), argc > 7 && strcmp(argv[7], "watch") == 0);
    } else {
        b.aux = connect_to(&b);
        b.rounds = (int)number(argv[4], 1, 1000000);
        uv_timer_init(&b.loop, &b.poll_timer);
        b.poll_timer.data = &b;
        poll_round(&b);
        uv_run(&b.loop, UV_RUN_DEFAULT);
        report("poll", &b.latency);
    }
    printf("errors %d\n", b.errors);
    return b.errors > 0;
}
