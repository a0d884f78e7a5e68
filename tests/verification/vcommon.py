"""Shared fixtures for the Verification integration tests.

One arbiterd per test file (start_server() in setUpModule), a real
PostgreSQL from tests/pg/with-postgres.sh, the grpcio stubs generated at
build time. Every test creates its own tenants, so tests never see each
other's rows. Also the documented cache-key encoding and the statistics,
computed here independently of the server.
"""
import hashlib
import os
import sys
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "registry"))
import harness  # noqa: E402  (puts the stubs on sys.path)
from regcommon import psql, sql_value  # noqa: E402,F401  (re-exported)

import grpc  # noqa: E402
from arbiter.v1 import admin_pb2, admin_pb2_grpc  # noqa: E402
from arbiter.v1 import verification_pb2 as vf  # noqa: E402
from arbiter.v1 import verification_pb2_grpc as vf_grpc  # noqa: E402

Code = grpc.StatusCode
SERVER = None

PENDING, PROCESSING, COMPLETED, FAILED, TIMED_OUT = (
    vf.REQUEST_STATUS_PENDING, vf.REQUEST_STATUS_PROCESSING, vf.REQUEST_STATUS_COMPLETED,
    vf.REQUEST_STATUS_FAILED, vf.REQUEST_STATUS_TIMED_OUT)
TRUE, FALSE = vf.VERDICT_VERIFIED_TRUE, vf.VERDICT_VERIFIED_FALSE

TABLES = ("verification_requests", "verification_results", "verification_evidence",
          "verification_method_results", "verification_cache", "verification_cache_counters")


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


def cache_key(content, source="", types=()):
    """The documented encoding: hex SHA-256 of lp(content) lp(source) lp(t)...
    with lp(x) = b"<UTF-8 byte length>:" + x's bytes and the types
    deduplicated and sorted by their bytes."""
    def lp(s):
        b = s.encode("utf-8")
        return str(len(b)).encode() + b":" + b
    enc = lp(content) + lp(source) + b"".join(
        lp(t) for t in sorted(set(types), key=lambda t: t.encode("utf-8")))
    return hashlib.sha256(enc).hexdigest()


def sha256_hex(s):
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


def percentile_cont(values, q):
    """PostgreSQL's percentile_cont: linear interpolation between the
    values around position q * (n - 1) of the sorted list."""
    v = sorted(values)
    pos = q * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def evidence(i=0, **fields):
    e = dict(source="source-%d" % (i % 3), content="evidence %d" % i, strength=0.5,
             credibility=0.75, relevance=0.25, supports=i % 2 == 0, method="fact-check")
    e.update(fields)
    return vf.Evidence(**e)


def method_result(method="fact-check", **fields):
    m = dict(method=method, verdict=TRUE, confidence=0.9, processing_time_ms=12,
             evidence_count=1)
    m.update(fields)
    return vf.MethodResult(**m)


class VerificationCase(unittest.TestCase):
    """Stubs, tenant creation, calls and status assertions."""

    def setUp(self):
        self.channel = SERVER.channel()
        self.stub = vf_grpc.VerificationStub(self.channel)
        self.admin = admin_pb2_grpc.AdminStub(self.channel)

    def new_tenant(self, prefix="v"):
        tid = "%s-%s" % (prefix, uuid.uuid4().hex[:12])
        self.admin.CreateTenant(admin_pb2.CreateTenantRequest(id=tid, name="tenant " + tid))
        return tid

    def call(self, method, request, tenant, timeout=30):
        """Calls |method| (a stub attribute name) as |tenant| (None: no tenant)."""
        md = harness.tenant_md(tenant) if tenant is not None else []
        return getattr(self.stub, method)(request, metadata=md, timeout=timeout)

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

    def save_request(self, tenant, content=None, **fields):
        req = vf.VerificationRequest(content=content or "claim " + uuid.uuid4().hex, **fields)
        return self.call("SaveRequest", vf.SaveRequestRequest(request=req), tenant)

    def save_result(self, tenant, request_id, verdict=TRUE, confidence=0.8, **fields):
        res = vf.VerificationResult(request_id=request_id, verdict=verdict,
                                    confidence=confidence, **fields)
        return self.call("SaveResult", vf.SaveResultRequest(result=res), tenant)

    def counts(self, tenant):
        """Rows of every table for |tenant|, read as superuser (bypasses RLS)."""
        counts = sql_value("SELECT " + ", ".join(
            "(SELECT count(*) FROM %s WHERE tenant_id = '%s')" % (t, tenant) for t in TABLES))
        return dict(zip(TABLES, map(int, counts.split("|"))))
