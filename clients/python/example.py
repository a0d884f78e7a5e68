#!/usr/bin/python3
"""Calling arbiterd from Python with grpcio: register an agent, read it
back, list the tenant's agents, unregister it.

    PYTHONPATH=build/clients/python/gen python3 clients/python/example.py \
        [--socket ./arbiterd.sock] [--tenant demo]

The stubs (agent_registry_pb2, ...) are generated from proto/ by the build
(or by gen-stubs.sh, see README.md); set ARBITER_PY_STUBS or PYTHONPATH to
their directory.
"""
import argparse
import os
import sys

if os.environ.get("ARBITER_PY_STUBS"):
    sys.path.insert(0, os.environ["ARBITER_PY_STUBS"])

import grpc  # noqa: E402
from arbiter.v1 import agent_registry_pb2 as registry  # noqa: E402
from arbiter.v1 import agent_registry_pb2_grpc as registry_grpc  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402


def register_get_list_unregister(channel, tenant, name):
    """Runs the flow; returns (agent, got, listed, removed)."""
    stub = registry_grpc.AgentRegistryStub(channel)
    md = [("x-tenant-id", tenant)]  # every arbiter.v1 call names its tenant
    agent = stub.RegisterAgent(
        registry.RegisterAgentRequest(agent=registry.Agent(
            name=name,
            model_family="claude",
            capabilities=registry.Capabilities(task_types=["code"],
                                               languages=["c", "python"]))),
        metadata=md, timeout=5)
    got = stub.GetAgent(registry.GetAgentRequest(id=agent.id), metadata=md, timeout=5)
    listed = stub.ListAgents(registry.ListAgentsRequest(page_size=100), metadata=md,
                             timeout=5)
    removed = stub.UnregisterAgent(registry.UnregisterAgentRequest(id=agent.id),
                                   metadata=md, timeout=5)
    return agent, got, listed, removed


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--socket", default=os.environ.get("ARBITER_SOCKET", "./arbiterd.sock"))
    p.add_argument("--tenant", default="demo")
    args = p.parse_args()

    # grpc-core sends the socket path as :authority; arbiterd accepts it, but
    # "localhost" is the convention for Unix sockets.
    target = "unix://" + os.path.abspath(args.socket)
    with grpc.insecure_channel(target, options=[("grpc.default_authority", "localhost")]) as ch:
        try:
            health = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=5)
            print("health:", health_pb2.HealthCheckResponse.ServingStatus.Name(health.status))
            agent, got, listed, removed = register_get_list_unregister(
                ch, args.tenant, "python-example-%d" % os.getpid())
        except grpc.RpcError as e:
            print("ERROR: %s (%d): %s" % (e.code().name, e.code().value[0], e.details()),
                  file=sys.stderr)
            return 1
    print("registered:", agent.id, agent.name)
    print("get:", got.name, "languages", ",".join(got.capabilities.languages))
    print("list:", ", ".join(a.name for a in listed.agents))
    print("unregistered:", removed.removed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
