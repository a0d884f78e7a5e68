"""Shared fixtures for the KnowledgeGraph integration tests.

Each test file gets its own throwaway PostgreSQL (tests/pg/with-postgres.sh,
migrated by the built arbiterd) and starts the real arbiterd on it; the
tests talk to it with the generated grpcio stubs.

Both implementations of the vector functions: the cluster's database
"arbiter" is migrated as usual (the arbiter_vector extension when it is
installed, see ext/arbiter_vector/install.sh), and sql_database() makes a
second database in the same cluster migrated with the setting
arbiter.vector=sql, which makes migration 0004 create its plain-SQL
functions instead, then serves it with a second arbiterd. The same
fixtures run against both servers.
"""
import hashlib
import math
import os
import struct
import subprocess
import sys
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402  (puts the stubs on sys.path)

import grpc  # noqa: E402
from arbiter.v1 import admin_pb2, admin_pb2_grpc  # noqa: E402
from arbiter.v1 import knowledge_graph_pb2 as kg  # noqa: E402
from arbiter.v1 import knowledge_graph_pb2_grpc as kg_grpc  # noqa: E402
from google.protobuf import wrappers_pb2  # noqa: E402

Code = grpc.StatusCode
PG_BIN = os.environ.get("ARBITER_TEST_PG_BIN", "/usr/lib/postgresql/15/bin")
EXTENSION = "arbiter_vector 1.0 (C extension)"
PLAIN_SQL = "plain SQL (arbiter_vector not installed)"
SERVERS = []


def start_server(url=None, **kwargs):
    """Starts an arbiterd on |url| (default: the test database) and waits
    until it knows the database's vector implementation."""
    harness.skip_without_database()
    srv = harness.ArbiterServer(test_service=False, database=url or True, **kwargs).start()
    SERVERS.append(srv)
    admin = admin_pb2_grpc.AdminStub(srv.channel())
    for _ in range(200):
        if admin.GetServerInfo(admin_pb2.GetServerInfoRequest(), timeout=5).vector_implementation:
            break
        import time
        time.sleep(0.02)
    return srv


def stop_servers():
    while SERVERS:
        code = SERVERS.pop().stop()
        if code != 0:
            raise RuntimeError("arbiterd exited with %r" % code)


def conninfo(url, dbname):
    return " ".join([p for p in url.split() if not p.startswith("dbname=")] + ["dbname=" + dbname])


def psql(sql, url=None, check=True):
    """Runs |sql| through psql (default: the superuser on the test
    database); returns (returncode, stdout, stderr), unaligned, tuples only,
    fields separated by '|', with the SQLSTATE of an error in stderr."""
    p = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-A", "-t",
                        "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=sqlstate",
                        url or harness.superuser_url()],
                       input=sql, capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError("psql failed: %s" % p.stderr)
    return p.returncode, p.stdout.strip(), p.stderr.strip()


def sql_database():
    """A second database of the cluster, migrated with arbiter.vector=sql:
    its vector functions are the plain-SQL ones. Returns the app role's
    conninfo."""
    name = "kg_plain_sql"
    psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
    psql("CREATE DATABASE %s OWNER arbiter_owner" % name)
    psql("ALTER SCHEMA public OWNER TO arbiter_owner", conninfo(harness.superuser_url(), name))
    env = dict(os.environ, PGOPTIONS="-c arbiter.vector=sql")
    for k in ("ARBITER_MIGRATE_DATABASE_URL", "ARBITER_DATABASE_URL"):
        env.pop(k, None)
    p = subprocess.run([harness.ARBITERD, "migrate", "--migrate-database-url",
                        conninfo(harness.owner_url(), name)],
                       env=env, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError("migrating %s failed: %s" % (name, p.stderr))
    return conninfo(harness.database_url(), name)


def extension_installed():
    """Whether the main test database uses the C extension. An installed
    module built from other source than this checkout's would test stale
    code: that fails instead of passing quietly."""
    impl = psql("SELECT arbiter_vector_impl()")[1]
    if impl != EXTENSION:
        return False
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "ext",
                       "arbiter_vector", "arbiter_vector.c")
    with open(src, "rb") as f:
        want = hashlib.sha256(f.read()).hexdigest()
    rc, got, _ = psql("SELECT arbiter_vector_source()", check=False)
    if rc != 0 or got != want:
        raise AssertionError("the arbiter_vector installed into PostgreSQL was not built from"
                             " this source: build, then run ext/arbiter_vector/install.sh (root)")
    return True


# ---- numbers as PostgreSQL stores them ------------------------------------

def f32(x):
    """|x| rounded to a float32, as a real[] stores it."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def normalized(v):
    """What the server stores for embedding |v|: float32 values divided by
    their norm in double, each rounded to float32 again."""
    v = [f32(x) for x in v]
    n = math.sqrt(sum(x * x for x in v))
    return [f32(x / n) for x in v]


def dot(a, b):
    return sum(x * y for x, y in zip(a, b))


# ---- the client side ----------------------------------------------------------

class KgCase(unittest.TestCase):
    """Stubs for SERVERS[0] (or |server|), tenants and status assertions."""

    server = None

    def setUp(self):
        srv = self.server or SERVERS[0]
        self.channel = srv.channel(**{"grpc.max_send_message_length": 16 << 20,
                                      "grpc.max_receive_message_length": 16 << 20})
        self.kg = kg_grpc.KnowledgeGraphStub(self.channel)
        self.admin = admin_pb2_grpc.AdminStub(self.channel)

    def new_tenant(self, prefix="kg"):
        tid = "%s-%s" % (prefix, uuid.uuid4().hex[:12])
        self.admin.CreateTenant(admin_pb2.CreateTenantRequest(id=tid, name="tenant " + tid))
        return tid

    def call(self, method, request, tenant):
        md = harness.tenant_md(tenant) if tenant is not None else []
        return getattr(self.kg, method)(request, metadata=md, timeout=60)

    def assertCode(self, code, method, request, tenant, field=None):
        """Asserts that the call fails with |code| (and names |field|)."""
        with self.assertRaises(grpc.RpcError) as cm:
            self.call(method, request, tenant)
        err = cm.exception
        self.assertEqual(err.code(), code, "%s: %s" % (method, err.details()))
        if field is not None:
            self.assertIn(field, err.details() or "")
        return err.details()

    def entity(self, tenant, name, etype=kg.ENTITY_TYPE_CONCEPT, **fields):
        return self.call("UpsertEntity", kg.UpsertEntityRequest(
            entity=kg.Entity(entity_type=etype, name=name, **fields)), tenant)

    def link(self, tenant, source, target, rtype="related_to", **fields):
        return self.call("UpsertRelationship", kg.UpsertRelationshipRequest(
            relationship=kg.Relationship(source_id=source, target_id=target,
                                         relationship_type=rtype, **fields)), tenant)


def dv(x):
    return wrappers_pb2.DoubleValue(value=x)


def iv(x):
    return wrappers_pb2.Int32Value(value=x)
