"""Run by test_admin_peer.py as an unprivileged user: calls Admin and
AgentRegistry and prints one line per call, "<method> <status name>"."""
import os
import sys

sys.path.insert(0, os.environ["ARBITER_PY_STUBS"])
import grpc  # noqa: E402
from arbiter.v1 import admin_pb2, admin_pb2_grpc  # noqa: E402
from arbiter.v1 import agent_registry_pb2 as ar, agent_registry_pb2_grpc as ar_grpc  # noqa: E402

target, tenant = sys.argv[1], sys.argv[2]
ch = grpc.insecure_channel(target)
admin = admin_pb2_grpc.AdminStub(ch)
reg = ar_grpc.AgentRegistryStub(ch)
md = [("x-tenant-id", tenant)]
calls = [
    ("GetServerInfo", lambda: admin.GetServerInfo(admin_pb2.GetServerInfoRequest())),
    ("GetPoolStats", lambda: admin.GetPoolStats(admin_pb2.GetPoolStatsRequest())),
    ("CreateTenant", lambda: admin.CreateTenant(admin_pb2.CreateTenantRequest(id="peer-made"))),
    ("GetTenant", lambda: admin.GetTenant(admin_pb2.GetTenantRequest(id=tenant))),
    ("ListTenants", lambda: admin.ListTenants(admin_pb2.ListTenantsRequest())),
    ("GrantTenant", lambda: admin.GrantTenant(admin_pb2.GrantTenantRequest(tenant_id=tenant))),
    ("RevokeTenant", lambda: admin.RevokeTenant(admin_pb2.RevokeTenantRequest(tenant_id=tenant))),
    ("ListTenantGrants", lambda: admin.ListTenantGrants(admin_pb2.ListTenantGrantsRequest())),
    ("RegisterAgent", lambda: reg.RegisterAgent(ar.RegisterAgentRequest(
        agent=ar.Agent(name="from-peer")), metadata=md)),
    ("ListAgents", lambda: reg.ListAgents(ar.ListAgentsRequest(), metadata=md)),
]
for name, fn in calls:
    try:
        fn()
        print(name, "OK")
    except grpc.RpcError as e:
        print(name, e.code().name, e.details())
    sys.stdout.flush()
