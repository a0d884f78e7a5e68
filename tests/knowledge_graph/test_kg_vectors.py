"""The vector functions and VectorSearch, against both implementations.

Two servers on one cluster: SERVERS[0] on the test database, which the
migration gave the C extension arbiter_vector (when it is installed), and
SERVERS[1] on a second database migrated with arbiter.vector=sql, which
has the plain-SQL functions. The same fixtures run against both: the SQL
functions' values and SQLSTATEs, and the exact top-k against a brute-force
computation here (random vectors, fixed seed)."""
import os
import random
import re
import socket
import tempfile
import unittest
import uuid

from kgcommon import (EXTENSION, PLAIN_SQL, SERVERS, Code, KgCase, conninfo, dot, dv,
                      extension_installed, iv, kg, normalized, psql, sql_database, start_server,
                      stop_servers)

import harness  # noqa: E402

HAS_EXTENSION = False
LOG = None
METRICS_PORT = None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def setUpModule():
    global HAS_EXTENSION, LOG, METRICS_PORT
    harness.skip_without_database()
    HAS_EXTENSION = extension_installed()
    if not HAS_EXTENSION:
        print("NOTE: arbiter_vector is not installed (ext/arbiter_vector/install.sh needs root):"
              " the tests that compare it with the plain-SQL functions are skipped")
    LOG = tempfile.TemporaryFile("w+")
    METRICS_PORT = free_port()
    start_server(args=["--log-level", "info", "--metrics-listen",
                       "127.0.0.1:%d" % METRICS_PORT], stderr=LOG)
    start_server(sql_database())


def tearDownModule():
    stop_servers()


def databases():
    """(name, superuser conninfo) of the two databases, extension first."""
    return [("extension", harness.superuser_url()),
            ("plain SQL", conninfo(harness.superuser_url(), "kg_plain_sql"))]


class Implementations(KgCase):
    def test_reported_at_start_in_server_info_and_metrics(self):
        info = [kg_admin.GetServerInfo(admin_request(), timeout=5).vector_implementation
                for kg_admin in (admin_of(SERVERS[0]), admin_of(SERVERS[1]))]
        self.assertEqual(info[1], PLAIN_SQL)
        self.assertEqual(info[0], EXTENSION if HAS_EXTENSION else PLAIN_SQL)
        LOG.flush()
        LOG.seek(0)
        self.assertIn("knowledge graph: vector similarity by %s" % info[0], LOG.read())
        s = socket.create_connection(("127.0.0.1", METRICS_PORT), timeout=5)
        s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        body = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        s.close()
        self.assertIn('arbiterd_vector_implementation_info{implementation="%s"} 1\n' % info[0],
                      body.decode())

    def test_extension_is_trusted_and_functions_are_immutable_strict_parallel_safe(self):
        if not HAS_EXTENSION:
            self.skipTest("arbiter_vector is not installed")
        # created by the migration, as the non-superuser owner role
        self.assertEqual(psql("SELECT extowner::regrole FROM pg_extension"
                              " WHERE extname = 'arbiter_vector'")[1], "arbiter_owner")
        for name, url in databases():
            rows = psql("SELECT proname, provolatile, proisstrict, proparallel FROM pg_proc"
                        " WHERE proname IN ('arbiter_dot', 'arbiter_cosine_distance',"
                        " 'arbiter_norm', 'arbiter_normalize', 'arbiter_vector_unpack')"
                        " ORDER BY 1", url)[1].splitlines()
            self.assertEqual(rows, ["arbiter_cosine_distance|i|t|s", "arbiter_dot|i|t|s",
                                    "arbiter_norm|i|t|s", "arbiter_normalize|i|t|s",
                                    "arbiter_vector_unpack|i|t|s"], name)

    def test_sql_values_and_errors_are_the_same(self):
        if not HAS_EXTENSION:
            self.skipTest("arbiter_vector is not installed")
        values = [
            "arbiter_dot('{1,2,3}', '{4,5,6}')",
            "arbiter_dot('{0.1,0.2}', '{0.3,0.4}')",
            "arbiter_cosine_distance('{1,0}', '{0,1}')",
            "arbiter_cosine_distance('{1,1}', '{2,2}')",
            "arbiter_cosine_distance('{0,0}', '{1,1}')",  # no direction: NaN
            "arbiter_norm('{3,4}')",
            "arbiter_normalize('{3,4}')",
            "arbiter_normalize('[0:2]={1e-30,2e-30,2e-30}')",
            "arbiter_normalize('{-1e30,1e30}')",
            "arbiter_dot(NULL, '{1}')",  # strict
            "arbiter_vector_unpack('\\x0000803f000000c00000807fffffff7f01000000'::bytea)",
        ]
        errors = [
            ("arbiter_dot('{1,2}', '{1}')", "22000"),
            ("arbiter_dot('{}', '{}')", "2202E"),
            ("arbiter_dot('{{1,2},{3,4}}', '{1,2}')", "2202E"),
            ("arbiter_dot('{1,NULL}', '{1,2}')", "22004"),
            ("arbiter_cosine_distance('{1}', '{1,2}')", "22000"),
            ("arbiter_norm('{}')", "2202E"),
            ("arbiter_normalize('{0,0}')", "22000"),
            ("arbiter_normalize('{NaN,1}')", "22000"),
            ("arbiter_normalize('{1,Infinity}')", "22000"),
            ("arbiter_normalize('{1,-Infinity}')", "22000"),
            ("arbiter_normalize('{NULL}')", "22004"),
            ("arbiter_vector_unpack('\\x010203'::bytea)", "22000"),
            ("arbiter_vector_unpack(''::bytea)", "22000"),
        ]
        results = {}
        for name, url in databases():
            # one session each: the values as one row, the errors caught in a DO block
            out = psql("SELECT %s" % ", ".join("(%s)::text" % v for v in values),
                       url)[1].split("|")
            stmts = ", ".join("$q$SELECT %s$q$" % sql for sql, _ in errors)
            _, _, notices = psql("\\set VERBOSITY default\n SET client_min_messages = notice;"
                                 " DO $do$ DECLARE s text; BEGIN FOREACH s IN ARRAY ARRAY[%s]"
                                 " LOOP BEGIN EXECUTE s; RAISE NOTICE 'no error';"
                                 " EXCEPTION WHEN OTHERS THEN RAISE NOTICE '%%', SQLSTATE; END;"
                                 " END LOOP; END $do$" % stmts, url)
            errs = re.findall(r"NOTICE:\s+(\S+)", notices.replace("no error", "none"))
            self.assertEqual(errs, [c for _, c in errors], name)
            results[name] = out
        self.assertEqual(results["extension"][0], "32")
        self.assertEqual(results["extension"][6], "{0.6,0.8}")
        self.assertEqual(results["extension"][4], "NaN")
        self.assertEqual(results["extension"][9], "")
        self.assertEqual(results["extension"][10], "{1,-2,Infinity,NaN,1e-45}")
        self.assertEqual(results["extension"], results["plain SQL"])


def admin_of(srv):
    from arbiter.v1 import admin_pb2_grpc
    return admin_pb2_grpc.AdminStub(srv.channel())


def admin_request():
    from arbiter.v1 import admin_pb2
    return admin_pb2.GetServerInfoRequest()


class TopK(KgCase):
    """Exact search: the server's top-k is the brute-force top-k, and both
    implementations answer the same. Both databases get the same entities
    under the same ids, so that even ties would be broken alike."""

    DIMS = 48

    def on(self, i):
        """Talk to SERVERS[i] from now on."""
        from arbiter.v1 import knowledge_graph_pb2_grpc as kg_grpc
        self.kg = kg_grpc.KnowledgeGraphStub(SERVERS[i].channel())

    def tenant_in_both(self, prefix):
        from arbiter.v1 import admin_pb2, admin_pb2_grpc
        t = self.new_tenant(prefix)
        admin_pb2_grpc.AdminStub(SERVERS[1].channel()).CreateTenant(
            admin_pb2.CreateTenantRequest(id=t, name=prefix))
        return t

    def upsert_in_both(self, tenant, ents):
        for i in range(2):
            self.on(i)
            self.assertEqual(list(self.call("UpsertEntities", kg.UpsertEntitiesRequest(
                entities=ents), tenant).ids), [e.id for e in ents])

    def search(self, i, tenant, q, k, only=(), min_sim=None):
        self.on(i)
        req = kg.VectorSearchRequest(embedding=q, limit=k, entity_types=list(only))
        if min_sim is not None:
            req.min_similarity.CopyFrom(dv(min_sim))
        return [(h.score, h.entity.id) for h in self.call("VectorSearch", req, tenant).hits]

    def test_top_k_is_brute_force_top_k_in_both_implementations(self):
        rnd = random.Random(20261129)
        tenant = self.tenant_in_both("topk")
        ents, stored = [], {}
        for i in range(300):
            v = [rnd.gauss(0, 1) for _ in range(self.DIMS)]
            ents.append(kg.Entity(id=str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
                                  entity_type=(kg.ENTITY_TYPE_DOCUMENT if i % 5 == 0
                                               else kg.ENTITY_TYPE_CONCEPT),
                                  name="v%03d" % i, embedding=v))
            stored[ents[-1].id] = (normalized(v), ents[-1].entity_type)
        # vectors of another dimension, and entities without one, are not compared
        ents += [kg.Entity(id=str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
                           entity_type=kg.ENTITY_TYPE_OTHER, name="other%d" % i,
                           embedding=[1, i + 1] if i % 2 else []) for i in range(10)]
        self.upsert_in_both(tenant, ents)
        # the same values stored by both (up to the last bit of a normalisation)
        for e in ents[:300:37]:
            got = []
            for i in range(2):
                self.on(i)
                got.append(list(self.call("GetEntity", kg.GetEntityRequest(
                    id=e.id, include_embedding=True), tenant).embedding))
            for a, b, c in zip(got[0], got[1], stored[e.id][0]):
                self.assertLessEqual(max(abs(a - b), abs(a - c)), 1e-7)

        for n in range(5):
            q = [rnd.gauss(0, 1) for _ in range(self.DIMS)]
            qn = normalized(q)
            for k, only, min_sim in ((10, (), None), (1, (), None), (100, (), None),
                                     (10, (kg.ENTITY_TYPE_DOCUMENT,), None), (100, (), 0.2)):
                want = sorted(((dot(v, qn), i) for i, (v, t) in stored.items()
                               if not only or t in only), key=lambda p: (-p[0], p[1]))
                want = [p for p in want if min_sim is None or p[0] >= min_sim][:k]
                what = "query %d, k %d, types %s, min %s" % (n, k, only, min_sim)
                if min_sim is None:
                    self.assertEqual(len(want), k, what)  # the fixture has enough of each
                else:
                    self.assertTrue(0 < len(want) < k, what)  # the minimum cuts
                for i, name in enumerate(("first server", "plain SQL")):
                    got = self.search(i, tenant, q, k, only, min_sim)
                    self.assertEqual([g[1] for g in got], [w[1] for w in want],
                                     "%s: %s" % (name, what))
                    for (s, _), (w, _) in zip(got, want):
                        self.assertAlmostEqual(s, w, delta=1e-9, msg="%s: %s" % (name, what))
        self.assertGreater(self.search(0, tenant, [1, 2], 10)[0][0], 0.999)

    def test_hybrid_is_the_same_in_both_implementations(self):
        tenant = self.tenant_in_both("hyb")
        r = random.Random(11)
        words = ["graph", "vector", "tenant", "search", "agent", "cache"]
        # a few vectors and a few text matches, so that the seeds leave room
        # for what the walks reach
        ents = [kg.Entity(id=str(uuid.UUID(int=r.getrandbits(128), version=4)),
                          entity_type=kg.ENTITY_TYPE_CONCEPT, name="h%02d" % j,
                          content=" ".join(r.choice(words) for _ in range(3)),
                          embedding=[r.gauss(0, 1) for _ in range(8)] if j % 6 == 0 else [])
                for j in range(60)]
        ids = [e.id for e in ents]
        rels = [kg.Relationship(source_id=s, target_id=t, relationship_type="rel",
                                confidence=r.uniform(0.5, 1), strength=r.uniform(0.1, 1),
                                bidirectional=r.random() < 0.3)
                for s, t in (r.sample(ids, 2) for _ in range(150))]
        self.upsert_in_both(tenant, ents)
        q = [r.gauss(0, 1) for _ in range(8)]
        answers = []
        for i in range(2):
            self.on(i)
            self.call("UpsertRelationships", kg.UpsertRelationshipsRequest(relationships=rels),
                      tenant)
            hits = self.call("HybridSearch", kg.HybridSearchRequest(
                embedding=q, query_text="graph search", limit=40, graph_hops=iv(2),
                min_confidence=dv(0.4)), tenant).hits
            answers.append([(h.entity.id, h.source, h.hop_distance, list(h.path_ids),
                             round(h.score, 12)) for h in hits])
        self.assertEqual(len(answers[0]), 40)
        self.assertIn(kg.HIT_SOURCE_GRAPH, {h[1] for h in answers[0]})
        self.assertEqual(answers[0], answers[1])


class Dimensions(KgCase):
    def test_mismatch_and_mixed_dimensions(self):
        t = self.new_tenant()
        a = self.call("UpsertEntity", kg.UpsertEntityRequest(entity=kg.Entity(
            entity_type=kg.ENTITY_TYPE_CONCEPT, name="two", embedding=[1, 0])), t)
        b = self.call("UpsertEntity", kg.UpsertEntityRequest(entity=kg.Entity(
            entity_type=kg.ENTITY_TYPE_CONCEPT, name="three", embedding=[0, 0, 1])), t)
        self.assertEqual([h.entity.id for h in self.call("VectorSearch", kg.VectorSearchRequest(
            embedding=[1, 1]), t).hits], [a.id])
        self.assertEqual([h.entity.id for h in self.call("VectorSearch", kg.VectorSearchRequest(
            embedding=[1, 1, 1]), t).hits], [b.id])
        msg = self.assertCode(Code.INVALID_ARGUMENT, "VectorSearch",
                              kg.VectorSearchRequest(embedding=[1] * 5), t, "embedding")
        self.assertIn("dimensions", msg)
        # a filter that leaves nothing is not a mismatch
        self.assertEqual(list(self.call("VectorSearch", kg.VectorSearchRequest(
            embedding=[1, 1], entity_types=[kg.ENTITY_TYPE_AGENT]), t).hits), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
