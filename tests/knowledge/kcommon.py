"""Shared fixtures for the Knowledge integration tests.

One arbiterd per test file (started in setUpModule), a real PostgreSQL
from tests/pg/with-postgres.sh, the grpcio stubs generated at build time.
Every test creates its own tenants with fresh ids. The server and psql
helpers are the registry tests' (tests/registry/regcommon.py).
"""
import hashlib
import os
import sys
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "registry"))
from regcommon import (Code, harness, psql, sql_value, start_server,  # noqa: E402,F401
                       stop_server)

import grpc  # noqa: E402
from arbiter.v1 import admin_pb2, admin_pb2_grpc  # noqa: E402
from arbiter.v1 import knowledge_pb2 as kn  # noqa: E402
from arbiter.v1 import knowledge_pb2_grpc as kn_grpc  # noqa: E402


def sha256_hex(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def result(content, title=None, relevance=0.5, credibility=0.5, source=kn.SOURCE_TYPE_WEB,
           quality=kn.QUALITY_MEDIUM, **fields):
    """A SearchResult as a caller sends it."""
    title = "title of " + content[:20] if title is None else title
    return kn.SearchResult(title=title, content=content,
                           source_type=source, relevance_score=relevance,
                           credibility_score=credibility, quality=quality, **fields)


class KnowledgeCase(unittest.TestCase):
    """Stubs, tenants, and call and status helpers."""

    def setUp(self):
        self.channel = harness_server().channel()
        self.kn = kn_grpc.KnowledgeStub(self.channel)
        self.admin = admin_pb2_grpc.AdminStub(self.channel)

    def new_tenant(self, prefix="k"):
        tid = "%s-%s" % (prefix, uuid.uuid4().hex[:12])
        self.admin.CreateTenant(admin_pb2.CreateTenantRequest(id=tid, name="tenant " + tid))
        return tid

    def call(self, method, request, tenant, stub=None):
        """Calls |method| as |tenant| (None: no tenant)."""
        md = harness.tenant_md(tenant) if tenant is not None else []
        return getattr(stub or self.kn, method)(request, metadata=md, timeout=30)

    def assertCode(self, code, method, request, tenant, field=None):
        """Asserts that the call fails with |code|; with |field|, that the
        message starts with it. Returns the message."""
        with self.assertRaises(grpc.RpcError) as cm:
            self.call(method, request, tenant)
        err = cm.exception
        self.assertEqual(err.code(), code, "%s: %s" % (method, err.details()))
        if field is not None:
            self.assertTrue((err.details() or "").startswith(field),
                            "%s: %r does not start with %r" % (method, err.details(), field))
        return err.details()

    def store_query(self, tenant, text="what is row level security?",
                    query_type=kn.QUERY_TYPE_FACTUAL, **fields):
        q = kn.KnowledgeQuery(query_text=text, query_type=query_type, **fields)
        return self.call("StoreQuery", kn.StoreQueryRequest(query=q), tenant)

    def store_results(self, tenant, query_id, results):
        return self.call("StoreResults", kn.StoreResultsRequest(query_id=query_id,
                                                                results=results), tenant)

    def set_status(self, tenant, query_id, status, error_message=""):
        return self.call("UpdateQueryStatus", kn.UpdateQueryStatusRequest(
            id=query_id, status=status, error_message=error_message), tenant)

    def put(self, tenant, key, content='{"answer": 42}', ttl_ms=60000, **fields):
        entry = kn.CacheEntry(key=key, content_json=content, **fields)
        return self.call("PutCached", kn.PutCachedRequest(entry=entry, ttl_ms=ttl_ms), tenant)

    def get(self, tenant, key):
        return self.call("GetCached", kn.GetCachedRequest(key=key), tenant)

    def stats(self, tenant):
        return self.call("GetCacheStats", kn.GetCacheStatsRequest(), tenant)

    def record(self, tenant, name, success=True, latency_ms=100.0, error=""):
        return self.call("RecordProviderRequest", kn.RecordProviderRequestRequest(
            name=name, success=success, latency_ms=latency_ms, error=error), tenant)


def harness_server():
    import regcommon
    return regcommon.SERVER
