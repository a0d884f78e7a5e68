#include "rpc/server.h"

#include <string.h>

void rpc_server_init(rpc_server *r, uv_loop_t *loop, uint32_t max_message_bytes, uid_t admin_uid,
                     alloc *mem)
{
    memset(r, 0, sizeof(*r));
    r->loop = loop;
    r->mem = mem;
    r->max_message_bytes = max_message_bytes;
    r->admin_uid = admin_uid;
    rpc_methods_init(&r->methods);
    list_init(&r->calls);
}

void rpc_server_start(rpc_server *r, uint64_t write_timeout_ms)
{
    uint64_t period = write_timeout_ms / 4 > 100 ? write_timeout_ms / 4 : 100;

    r->write_timeout_ms = write_timeout_ms;
    if (write_timeout_ms == 0 || r->sweeping)
        return;
    uv_timer_init(r->loop, &r->sweep);
    r->sweep.data = r;
    uv_timer_start(&r->sweep, rpc_server_sweep, period, period);
    uv_unref((uv_handle_t *)&r->sweep); /* never what keeps the loop alive */
    r->sweeping = true;
}

void rpc_server_stop(rpc_server *r)
{
    if (!r->sweeping)
        return;
    r->sweeping = false;
    uv_close((uv_handle_t *)&r->sweep, NULL);
}

void rpc_server_deinit(rpc_server *r)
{
    rpc_methods_deinit(&r->methods);
}
