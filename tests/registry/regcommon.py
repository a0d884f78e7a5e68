"""Shared fixtures for the AgentRegistry and Admin integration tests.

One arbiterd per test file (started in setUpModule by start_server()), a
real PostgreSQL from tests/pg/with-postgres.sh, and the grpcio stubs
generated at build time. Every test creates its own tenants with fresh
ids, so tests never see each other's agents.
"""
import os
import subprocess
import sys
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402  (puts the stubs on sys.path)

import grpc  # noqa: E402
from arbiter.v1 import admin_pb2, admin_pb2_grpc  # noqa: E402
from arbiter.v1 import agent_registry_pb2 as ar  # noqa: E402
from arbiter.v1 import agent_registry_pb2_grpc as ar_grpc  # noqa: E402
from google.protobuf import wrappers_pb2  # noqa: E402

Code = grpc.StatusCode
SERVER = None


def start_server(**kwargs):
    """Starts the module's server (skips the whole file without a database)."""
    global SERVER
    harness.skip_without_database()
    SERVER = harness.ArbiterServer(test_service=False, **kwargs).start()
    return SERVER


def stop_server():
    global SERVER
    if SERVER is not None:
        code = SERVER.stop()
        SERVER = None
        if code != 0:
            raise RuntimeError("arbiterd exited with %r" % code)


def psql(sql, url=None, check=True):
    """Runs SQL through psql (default: as superuser, which bypasses RLS);
    returns (returncode, stdout, stderr) with unaligned, tuples-only output."""
    url = url or harness.superuser_url()
    pg_bin = os.environ.get("ARBITER_TEST_PG_BIN", "/usr/lib/postgresql/15/bin")
    psql_bin = os.path.join(pg_bin, "psql")
    if not os.path.exists(psql_bin):
        psql_bin = "psql"
    p = subprocess.run([psql_bin, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", url],
                       input=sql, capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError("psql failed: %s" % p.stderr)
    return p.returncode, p.stdout.strip(), p.stderr.strip()


def sql_value(sql, url=None):
    return psql(sql, url)[1]


class RegistryCase(unittest.TestCase):
    """Stubs, tenant creation and status assertions."""

    def setUp(self):
        self.channel = SERVER.channel()
        self.reg = ar_grpc.AgentRegistryStub(self.channel)
        self.admin = admin_pb2_grpc.AdminStub(self.channel)

    def new_tenant(self, prefix="t"):
        tid = "%s-%s" % (prefix, uuid.uuid4().hex[:12])
        self.admin.CreateTenant(admin_pb2.CreateTenantRequest(id=tid, name="tenant " + tid))
        return tid

    def call(self, method, request, tenant):
        """Calls |method| (a stub attribute name) as |tenant| (None: no tenant)."""
        md = harness.tenant_md(tenant) if tenant is not None else []
        return getattr(self.reg, method)(request, metadata=md, timeout=30)

    def register(self, tenant, name=None, **fields):
        agent = ar.Agent(name=name or "agent-" + uuid.uuid4().hex[:8], **fields)
        return self.call("RegisterAgent", ar.RegisterAgentRequest(agent=agent), tenant)

    def assertCode(self, code, method, request, tenant, field=None):
        """Asserts that the call fails with |code|; with |field|, that the
        message names it. Returns the message."""
        with self.assertRaises(grpc.RpcError) as cm:
            self.call(method, request, tenant)
        err = cm.exception
        self.assertEqual(err.code(), code, "%s: %s" % (method, err.details()))
        if field is not None:
            self.assertIn(field, err.details() or "")
        return err.details()

    def server_stats(self):
        """calls_by_status of Admin.GetServerInfo as {name: count}."""
        info = self.admin.GetServerInfo(admin_pb2.GetServerInfoRequest())
        return {s.name: s.count for s in info.calls_by_status}


def caps(task_types=(), languages=(), specializations=()):
    return ar.Capabilities(task_types=list(task_types), languages=list(languages),
                           specializations=list(specializations))


def dv(x):
    return wrappers_pb2.DoubleValue(value=x)
