/* arbiter.v1.Testing/DbProbe: small, harmless database probes for the test
 * suite (only with --enable-test-service), a hand-written handler over
 * compiled statements like any other. Registered without SVC_TENANT so that
 * a call without a tenant can prove it sees none. */
#include "services/services.h"
#include "services/svc_table.h"
#include "testing.pb-c.h"

#define KIND(x) ARBITER__V1__DB_PROBE_REQUEST__KIND__##x

/* Statements by probe kind; INSERT_THEN_FAIL runs two. */
enum { ST_SETTINGS, ST_SLEEP, ST_INSERT, ST_FAIL, ST_COUNT, ST_PID };

static void on_probe(db_txn *t, void *data)
{
    rpc_call *call = data;
    const Arbiter__V1__DbProbeRequest *req = (const void *)rpc_call_request(call);
    Arbiter__V1__DbProbeResponse resp = ARBITER__V1__DB_PROBE_RESPONSE__INIT;
    int64_t v = 0;

    if (db_txn_status(t) != RPC_OK) {
        rpc_call_finish(call, db_txn_status(t), db_txn_message(t));
        return;
    }
    switch (req->kind) {
    case KIND(CURRENT_SETTINGS):
        resp.tenant = (char *)db_text(t, 0, 0, 0);
        resp.user = (char *)db_text(t, 0, 0, 1);
        resp.session = (char *)db_text(t, 0, 0, 2);
        resp.statement_timeout = (char *)db_text(t, 0, 0, 3);
        break;
    case KIND(COUNT_MARKER):
        (void)db_int64(t, 0, 0, 0, &v);
        resp.count = v;
        break;
    case KIND(BACKEND_PID):
        (void)db_int64(t, 0, 0, 0, &v);
        resp.backend_pid = (int32_t)v;
        break;
    default:
        break;
    }
    rpc_call_reply(call, &resp.base);
}

static int probe_stmt(int kind)
{
    switch (kind) {
    case KIND(CURRENT_SETTINGS):
        return ST_SETTINGS;
    case KIND(SLEEP):
        return ST_SLEEP;
    case KIND(INSERT_THEN_FAIL):
        return ST_INSERT;
    case KIND(COUNT_MARKER):
        return ST_COUNT;
    case KIND(BACKEND_PID):
        return ST_PID;
    default:
        return -1;
    }
}

static void db_probe(rpc_call *call, const ProtobufCMessage *msg, void *data)
{
    const Arbiter__V1__DbProbeRequest *req = (const void *)msg;
    int st = probe_stmt(req->kind);
    db_txn *t;

    if (st < 0) {
        rpc_call_finish(call, RPC_INVALID_ARGUMENT, "unknown probe kind");
        return;
    }
    t = svc_txn_new(call, svc_entry_env(data));
    if (!t || !svc_entry_add(call, data, st, t, msg, NULL) ||
        (st == ST_INSERT && !svc_entry_add(call, data, ST_FAIL, t, msg, NULL)))
        return;
    db_txn_run(t, on_probe, call);
}

static const svc_method methods[] = {{
    .name = "DbProbe",
    .handler = db_probe,
    .stmts =
        {
            [ST_SETTINGS] = {"SELECT current_setting('app.current_tenant', true),"
                             " current_setting('app.current_user', true),"
                             " current_setting('app.current_session', true),"
                             " current_setting('statement_timeout')"},
            [ST_SLEEP] = {"SELECT pg_sleep($1::float8 / 1000.0)", SVC_PARAMS("sleep_ms")},
            [ST_INSERT] = {"INSERT INTO tenants (id, name) VALUES ($1, 'probe')",
                           SVC_PARAMS("marker")},
            [ST_FAIL] = {"SELECT 1 / 0"}, /* 22012 division_by_zero */
            [ST_COUNT] = {"SELECT count(*) FROM tenants WHERE id = $1", SVC_PARAMS("marker")},
            [ST_PID] = {"SELECT pg_backend_pid()"},
        },
}};

int svc_testing_db_start(svc_env *env)
{
    return svc_table_register(env, &arbiter__v1__testing__descriptor, methods, 1);
}
