#include "services/services.h"

/* Placeholder until the service lands; registers nothing. */
int svc_testing_db_register(struct server *srv)
{
    (void)srv;
    return 0;
}
