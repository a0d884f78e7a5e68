/* arbiter.v1.Testing/DbProbe: small, harmless database probes for the test
 * suite (only with --enable-test-service), written against db.h like any
 * handler. Registered without RPC_NEEDS_TENANT so that a call without a
 * tenant can prove it sees none. */
#include <stdint.h>

#include "db/db.h"
#include "rpc/method.h"
#include "server.h"
#include "services/services.h"
#include "testing.pb-c.h"

static const db_stmt probe_settings = {
    .name = "probe_settings",
    .sql = "SELECT current_setting('app.current_tenant', true), "
           "current_setting('app.current_user', true), "
           "current_setting('app.current_session', true), current_setting('statement_timeout')",
    .nparams = 0,
    .flags = DB_STMT_ONE_ROW,
};
static const db_stmt probe_sleep = {
    .name = "probe_sleep",
    .sql = "SELECT pg_sleep($1::float8 / 1000.0)",
    .nparams = 1,
};
static const db_stmt probe_insert = {
    .name = "probe_insert",
    .sql = "INSERT INTO tenants (id, name) VALUES ($1, 'probe')",
    .nparams = 1,
};
static const db_stmt probe_fail = {
    .name = "probe_fail",
    .sql = "SELECT 1 / 0", /* 22012 division_by_zero */
    .nparams = 0,
};
static const db_stmt probe_count = {
    .name = "probe_count",
    .sql = "SELECT count(*) FROM tenants WHERE id = $1",
    .nparams = 1,
    .flags = DB_STMT_ONE_ROW,
};
static const db_stmt probe_pid = {
    .name = "probe_pid",
    .sql = "SELECT pg_backend_pid()",
    .nparams = 0,
    .flags = DB_STMT_ONE_ROW,
};

static void on_probe(rpc_call *call, db_txn *t, void *data)
{
    const Arbiter__V1__DbProbeRequest *req = data;
    Arbiter__V1__DbProbeResponse resp = ARBITER__V1__DB_PROBE_RESPONSE__INIT;

    if (db_txn_failed(call, t))
        return;
    switch (req->kind) {
    case ARBITER__V1__DB_PROBE_REQUEST__KIND__CURRENT_SETTINGS:
        resp.tenant = (char *)db_text(t, 0, 0, 0);
        resp.user = (char *)db_text(t, 0, 0, 1);
        resp.session = (char *)db_text(t, 0, 0, 2);
        resp.statement_timeout = (char *)db_text(t, 0, 0, 3);
        break;
    case ARBITER__V1__DB_PROBE_REQUEST__KIND__COUNT_MARKER:
        resp.count = db_int64(t, 0, 0, 0);
        break;
    case ARBITER__V1__DB_PROBE_REQUEST__KIND__BACKEND_PID:
        resp.backend_pid = (int32_t)db_int64(t, 0, 0, 0);
        break;
    default:
        break;
    }
    rpc_call_reply(call, &resp.base);
}

static void db_probe(rpc_call *call, const ProtobufCMessage *msg, void *data)
{
    const Arbiter__V1__DbProbeRequest *req = (const Arbiter__V1__DbProbeRequest *)msg;
    struct server *srv = data;
    db_txn *t = db_txn_new(srv->pool, call);

    switch (req->kind) {
    case ARBITER__V1__DB_PROBE_REQUEST__KIND__CURRENT_SETTINGS:
        db_txn_stmt(t, &probe_settings);
        break;
    case ARBITER__V1__DB_PROBE_REQUEST__KIND__SLEEP:
        db_txn_stmt(t, &probe_sleep);
        db_param_int64(t, req->sleep_ms);
        break;
    case ARBITER__V1__DB_PROBE_REQUEST__KIND__INSERT_THEN_FAIL:
        db_txn_stmt(t, &probe_insert);
        db_param_text(t, req->marker);
        db_txn_stmt(t, &probe_fail);
        break;
    case ARBITER__V1__DB_PROBE_REQUEST__KIND__COUNT_MARKER:
        db_txn_stmt(t, &probe_count);
        db_param_text(t, req->marker);
        break;
    case ARBITER__V1__DB_PROBE_REQUEST__KIND__BACKEND_PID:
        db_txn_stmt(t, &probe_pid);
        break;
    default:
        rpc_call_finish(call, RPC_INVALID_ARGUMENT, "unknown probe kind");
        return;
    }
    db_txn_run(t, on_probe, (void *)req);
}

int svc_testing_db_register(struct server *srv)
{
    if (!srv->cfg->enable_test_service)
        return 0;
    return rpc_methods_add(&srv->methods, &arbiter__v1__testing__descriptor, "DbProbe", db_probe,
                           RPC_UNARY, srv);
}
