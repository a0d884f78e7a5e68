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

void rpc_server_deinit(rpc_server *r)
{
    rpc_methods_deinit(&r->methods);
}
