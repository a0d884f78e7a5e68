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

/* Health at shutdown start: reports NOT_SERVING to every Watch stream, then
 * ends them with UNAVAILABLE so clients see the stream end. */
void svc_health_shutdown(struct server *srv);

/* Frees the health state (srv->health); call after the loop ran out. */
void svc_health_free(struct server *srv);

#endif
