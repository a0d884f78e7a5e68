"""Run by test_tenant_auth.py under other uids and gids (setpriv): for each
tenant on the command line, registers an agent as that tenant and prints
"<tenant> <status name>"."""
import os
import sys

sys.path.insert(0, os.environ["ARBITER_PY_STUBS"])
import grpc  # noqa: E402
from arbiter.v1 import agent_registry_pb2 as ar, agent_registry_pb2_grpc as ar_grpc  # noqa: E402

target, tenants = sys.argv[1], sys.argv[2:]
reg = ar_grpc.AgentRegistryStub(grpc.insecure_channel(target))
for tenant in tenants:
    try:
        reg.RegisterAgent(ar.RegisterAgentRequest(agent=ar.Agent(name="uid-%d" % os.getuid())),
                          metadata=[("x-tenant-id", tenant)], timeout=10)
        print(tenant, "OK")
    except grpc.RpcError as e:
        print(tenant, e.code().name, e.details())
    sys.stdout.flush()
