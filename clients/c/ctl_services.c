/* arbiterctl: the compiled-in services and method name resolution. */
#include <errno.h>
#include <string.h>

#include "admin.pb-c.h"
#include "agent_registry.pb-c.h"
#include "ctl.h"
#include "health.pb-c.h"
#include "knowledge.pb-c.h"
#include "knowledge_graph.pb-c.h"
#include "orchestrator.pb-c.h"
#include "testing.pb-c.h"
#include "verification.pb-c.h"
#include "web_navigator.pb-c.h"

const ProtobufCServiceDescriptor *const ctl_services[] = {
    &grpc__health__v1__health__descriptor,
    &arbiter__v1__agent_registry__descriptor,
    &arbiter__v1__admin__descriptor,
    &arbiter__v1__web_navigator__descriptor,
    &arbiter__v1__knowledge__descriptor,
    &arbiter__v1__knowledge_graph__descriptor,
    &arbiter__v1__orchestrator__descriptor,
    &arbiter__v1__testing__descriptor,
    &arbiter__v1__verification__descriptor,
    NULL,
};

int ctl_service_hidden(const ProtobufCServiceDescriptor *s)
{
    return s == &arbiter__v1__testing__descriptor;
}

/* True when (|name|, |len|) names |s| by its full or short name. */
static int service_matches(const ProtobufCServiceDescriptor *s, const char *name, size_t len)
{
    return (strlen(s->name) == len && memcmp(s->name, name, len) == 0) ||
           (strlen(s->short_name) == len && memcmp(s->short_name, name, len) == 0);
}

int ctl_resolve_method(const char *name, const ProtobufCServiceDescriptor **service,
                       const ProtobufCMethodDescriptor **method)
{
    const char *sep;
    size_t svc_len;

    if (name[0] == '/')
        name++;
    sep = strchr(name, '/');
    if (!sep)
        sep = strrchr(name, '.');
    if (!sep || sep == name || sep[1] == '\0')
        return -EINVAL;
    svc_len = (size_t)(sep - name);
    for (size_t i = 0; ctl_services[i]; i++) {
        const ProtobufCServiceDescriptor *s = ctl_services[i];
        const ProtobufCMethodDescriptor *m;

        if (!service_matches(s, name, svc_len))
            continue;
        m = protobuf_c_service_descriptor_get_method_by_name(s, sep + 1);
        if (!m)
            return -ESRCH;
        *service = s;
        *method = m;
        return 0;
    }
    return -ENOENT;
}
