"""Shared fixtures for the WebNavigator integration tests.

One arbiterd per test file (started in setUpModule by start_server()), a
real PostgreSQL from tests/pg/with-postgres.sh (migrated by the built
arbiterd), and the grpcio stubs generated at build time. Every test makes
its own tenants with fresh ids, so tests never see each other's rows.
"""
import datetime
import os
import subprocess
import sys
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402  (puts the stubs on sys.path)

import grpc  # noqa: E402
from arbiter.v1 import admin_pb2, admin_pb2_grpc  # noqa: E402
from arbiter.v1 import web_navigator_pb2 as wn  # noqa: E402
from arbiter.v1 import web_navigator_pb2_grpc as wn_grpc  # noqa: E402

Code = grpc.StatusCode
SERVER = None
ZERO_UUID = "00000000-0000-0000-0000-000000000000"


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
    returns (returncode, stdout, stderr), unaligned and tuples only."""
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


def ts_of(dt):
    """A protobuf Timestamp from an aware datetime."""
    from google.protobuf import timestamp_pb2
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(dt)
    return t


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def seconds_between(later, earlier):
    """Seconds from Timestamp |earlier| to Timestamp |later|."""
    return (later.ToNanoseconds() - earlier.ToNanoseconds()) / 1e9


class WebCase(unittest.TestCase):
    """Stubs, tenant creation and status assertions."""

    def setUp(self):
        self.channel = SERVER.channel()
        self.web = wn_grpc.WebNavigatorStub(self.channel)
        self.admin = admin_pb2_grpc.AdminStub(self.channel)

    def new_tenant(self, prefix="w"):
        tid = "%s-%s" % (prefix, uuid.uuid4().hex[:12])
        self.admin.CreateTenant(admin_pb2.CreateTenantRequest(id=tid, name="tenant " + tid))
        return tid

    def call(self, method, request, tenant, stub=None):
        """Calls |method| as |tenant| (None: no tenant)."""
        md = harness.tenant_md(tenant) if tenant is not None else []
        return getattr(stub or self.web, method)(request, metadata=md, timeout=30)

    def assertCode(self, code, method, request, tenant, field=None):
        """Asserts that the call fails with |code|; with |field|, that the
        message starts with it. Returns the message."""
        with self.assertRaises(grpc.RpcError) as cm:
            self.call(method, request, tenant)
        err = cm.exception
        self.assertEqual(err.code(), code, "%s: %s" % (method, err.details()))
        if field is not None:
            self.assertTrue((err.details() or "").startswith(field), err.details())
        return err.details()

    def store(self, tenant, url, content, ttl_ms=0, **fields):
        c = wn.WebContent(url=url, content=content, **fields)
        return self.call("StoreContent", wn.StoreContentRequest(content=c, ttl_ms=ttl_ms), tenant)

    def lookup(self, tenant, url):
        return self.call("GetContentByUrl", wn.GetContentByUrlRequest(url=url), tenant)

    def acquire(self, tenant, domain, max_requests, window_ms=0):
        return self.call("AcquireRateLimit", wn.AcquireRateLimitRequest(
            domain=domain, max_requests=max_requests, window_ms=window_ms), tenant)

    def traversal(self, tenant, start_url="https://example.org/", **fields):
        return self.call("CreateTraversal", wn.CreateTraversalRequest(start_url=start_url,
                                                                      **fields), tenant)

    def add(self, tenant, traversal_id, nodes):
        """Adds |nodes|, (url, depth[, priority]) tuples or CrawlNodes."""
        msgs = [n if isinstance(n, wn.CrawlNode) else
                wn.CrawlNode(url=n[0], depth=n[1], priority=n[2] if len(n) > 2 else 0)
                for n in nodes]
        return self.call("AddNodes", wn.AddNodesRequest(traversal_id=traversal_id, nodes=msgs),
                         tenant)

    def claim(self, tenant, traversal_id, n, lease_ms=0, stub=None):
        return list(self.call("ClaimNodes", wn.ClaimNodesRequest(
            traversal_id=traversal_id, max=n, lease_ms=lease_ms), tenant, stub=stub).nodes)

    def extra_stub(self):
        """A stub on another connection (a local subchannel pool)."""
        return wn_grpc.WebNavigatorStub(SERVER.channel(**{"grpc.use_local_subchannel_pool": 1}))
