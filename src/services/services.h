/* The services the server offers, in registration order (svc.c lists them;
 * server.c walks the list). */
#ifndef ARBITER_SERVICES_SERVICES_H
#define ARBITER_SERVICES_SERVICES_H

#include "services/svc.h"

extern const struct svc_service svc_health;         /* grpc.health.v1.Health */
extern const struct svc_service svc_agent_registry; /* arbiter.v1.AgentRegistry */
extern const struct svc_service svc_admin;          /* arbiter.v1.Admin */
extern const struct svc_service svc_verification;   /* arbiter.v1.Verification */
extern const struct svc_service svc_web_navigator;  /* arbiter.v1.WebNavigator */
extern const struct svc_service svc_knowledge;      /* arbiter.v1.Knowledge */
extern const struct svc_service svc_knowledge_graph; /* arbiter.v1.KnowledgeGraph */
extern const struct svc_service svc_orchestrator;   /* arbiter.v1.Orchestrator */
extern const struct svc_service svc_testing;        /* --enable-test-service only */

/* Testing's DbProbe (testing_db.c), registered by svc_testing. */
int svc_testing_db_start(svc_env *env);

#endif
