#include "services/services.h"

/* Placeholder until the service lands; registers nothing. */
int svc_admin_register(struct server *srv)
{
    (void)srv;
    return 0;
}
