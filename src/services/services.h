/* Every service registers its methods in the server's method table here.
 * Each returns 0 or a negative errno-style code. */
#ifndef ARBITER_SERVICES_SERVICES_H
#define ARBITER_SERVICES_SERVICES_H

struct server;

int svc_health_register(struct server *srv);
int svc_testing_register(struct server *srv);    /* only with --enable-test-service */
int svc_testing_db_register(struct server *srv); /* only with --enable-test-service */
int svc_agent_registry_register(struct server *srv);
int svc_admin_register(struct server *srv);

/* Health: sets the overall status (service "") from the pool's state. */
void svc_health_set_serving(struct server *srv, int serving);

#endif
