"""KnowledgeGraph: every method's happy path and the errors it documents,
through the real arbiterd and PostgreSQL, from the generated Python stubs;
then the isolation matrix (another tenant sees and changes nothing) and
arbiterctl calling the service."""
import json
import os
import subprocess
import time
import unittest
import uuid

from kgcommon import (SERVERS, Code, KgCase, dv, iv, kg, normalized, psql, start_server,
                      stop_servers)

import harness  # noqa: E402


def setUpModule():
    start_server()


def tearDownModule():
    stop_servers()


class Entities(KgCase):
    def test_upsert_get_by_id_and_by_name(self):
        t = self.new_tenant()
        before = time.time()
        e = self.entity(t, "alpha", content="first of all", embedding=[3, 4], confidence=0.25,
                        attributes_json='{"k": [1, 2]}', ref_id="agent-7")
        self.assertEqual(str(uuid.UUID(e.id)), e.id)
        self.assertEqual((e.name, e.content, e.ref_id), ("alpha", "first of all", "agent-7"))
        self.assertEqual(e.entity_type, kg.ENTITY_TYPE_CONCEPT)
        self.assertEqual(list(e.embedding), normalized([3, 4]))  # stored unit-normalised
        self.assertEqual(e.confidence, 0.25)
        self.assertEqual(json.loads(e.attributes_json), {"k": [1, 2]})
        self.assertGreater(e.created_at.ToSeconds(), before - 60)
        self.assertEqual(e.created_at, e.updated_at)

        got = self.call("GetEntity", kg.GetEntityRequest(id=e.id, include_embedding=True), t)
        self.assertEqual(got, e)
        bare = self.call("GetEntity", kg.GetEntityRequest(id=e.id.upper()), t)
        self.assertEqual(list(bare.embedding), [])
        self.assertEqual(bare.name, "alpha")

        # without an id: by (entity_type, name), so the same row
        again = self.entity(t, "alpha", content="second")
        self.assertEqual(again.id, e.id)
        self.assertEqual(again.content, "second")
        self.assertEqual(list(again.embedding), [])  # replaced: none given
        self.assertEqual(again.confidence, 1)  # 0 (unset) stores 1
        self.assertEqual(again.created_at, e.created_at)
        self.assertGreater(again.updated_at.ToNanoseconds(), e.updated_at.ToNanoseconds())
        # another type is another entity
        other = self.entity(t, "alpha", etype=kg.ENTITY_TYPE_DOCUMENT)
        self.assertNotEqual(other.id, e.id)

        # by id: type and name may change
        renamed = self.call("UpsertEntity", kg.UpsertEntityRequest(entity=kg.Entity(
            id=e.id, entity_type=kg.ENTITY_TYPE_AGENT, name="renamed")), t)
        self.assertEqual((renamed.id, renamed.name, renamed.entity_type),
                         (e.id, "renamed", kg.ENTITY_TYPE_AGENT))
        # a caller-chosen id
        cid = str(uuid.uuid4())
        chosen = self.call("UpsertEntity", kg.UpsertEntityRequest(entity=kg.Entity(
            id=cid, entity_type=kg.ENTITY_TYPE_OTHER, name="chosen")), t)
        self.assertEqual(chosen.id, cid)

    def test_upsert_conflict_and_errors(self):
        t = self.new_tenant()
        a = self.entity(t, "a")
        self.entity(t, "b")
        # an id-addressed rename onto another entity's (type, name)
        self.assertCode(Code.ALREADY_EXISTS, "UpsertEntity", kg.UpsertEntityRequest(
            entity=kg.Entity(id=a.id, entity_type=kg.ENTITY_TYPE_CONCEPT, name="b")), t,
            "entity.name")
        E = kg.ENTITY_TYPE_CONCEPT
        bad = [
            (kg.UpsertEntityRequest(), "entity"),
            (kg.UpsertEntityRequest(entity=kg.Entity(name="x")), "entity.entity_type"),
            (kg.UpsertEntityRequest(entity=kg.Entity(entity_type=99, name="x")),
             "entity.entity_type"),
            (kg.UpsertEntityRequest(entity=kg.Entity(entity_type=E)), "entity.name"),
            (kg.UpsertEntityRequest(entity=kg.Entity(entity_type=E, name="n" * 501)),
             "entity.name"),
            (kg.UpsertEntityRequest(entity=kg.Entity(entity_type=E, name="x", id="nope")),
             "entity.id"),
            (kg.UpsertEntityRequest(entity=kg.Entity(entity_type=E, name="x", confidence=1.5)),
             "entity.confidence"),
            (kg.UpsertEntityRequest(entity=kg.Entity(entity_type=E, name="x",
                                                     attributes_json="[1]")),
             "entity.attributes_json"),
            (kg.UpsertEntityRequest(entity=kg.Entity(entity_type=E, name="x", ref_id="r" * 256)),
             "entity.ref_id"),
        ]
        for req, field in bad:
            self.assertCode(Code.INVALID_ARGUMENT, "UpsertEntity", req, t, field)
        self.assertCode(Code.FAILED_PRECONDITION, "UpsertEntity", kg.UpsertEntityRequest(
            entity=kg.Entity(entity_type=E, name="x")), "no-such-tenant", "no-such-tenant")
        self.assertCode(Code.INVALID_ARGUMENT, "UpsertEntity", kg.UpsertEntityRequest(
            entity=kg.Entity(entity_type=E, name="x")), None, "x-tenant-id")

    def test_embedding_bad_input(self):
        t = self.new_tenant()
        E = kg.ENTITY_TYPE_CONCEPT
        for emb, what in (([float("nan"), 1], "finite"), ([1, float("inf")], "finite"),
                          ([float("-inf")], "finite"), ([0, 0, 0], "zero vector"),
                          ([0.5] * 2001, "1 to 2000 values")):
            msg = self.assertCode(Code.INVALID_ARGUMENT, "UpsertEntity", kg.UpsertEntityRequest(
                entity=kg.Entity(entity_type=E, name="x", embedding=emb)), t, "entity.embedding")
            self.assertIn(what, msg)
            msg = self.assertCode(Code.INVALID_ARGUMENT, "UpsertEntities", kg.UpsertEntitiesRequest(
                entities=[kg.Entity(entity_type=E, name="ok"),
                          kg.Entity(entity_type=E, name="x", embedding=emb)]), t,
                "entities[1].embedding")
        # 2,000 dimensions fit (stored out of line when the row needs it)
        big = self.entity(t, "big", embedding=[(i % 7) - 3.0 for i in range(2000)])
        self.assertEqual(len(big.embedding), 2000)
        # nothing half-written by the failed batches
        page = self.call("ListEntities", kg.ListEntitiesRequest(), t)
        self.assertEqual([e.name for e in page.entities], ["big"])

    def test_batch_upsert(self):
        t = self.new_tenant()
        E = kg.ENTITY_TYPE_DOCUMENT
        first = self.entity(t, "d0", etype=E)
        cid = str(uuid.uuid4())
        items = [kg.Entity(entity_type=E, name="d%d" % i, content="doc %d" % i,
                           embedding=[i + 1, 2, 3] if i % 2 else []) for i in range(5)]
        items.append(kg.Entity(id=cid, entity_type=E, name="by-id", embedding=[1, 1]))
        items.append(kg.Entity(entity_type=E, name="d4", content="last one wins"))
        ids = list(self.call("UpsertEntities", kg.UpsertEntitiesRequest(entities=items), t).ids)
        self.assertEqual(len(ids), 7)
        self.assertEqual(ids[0], first.id)  # by (type, name): the existing row
        self.assertEqual(ids[5], cid)
        self.assertEqual(ids[4], ids[6])  # the same key twice: one row, the last wins
        got = {i: self.call("GetEntity", kg.GetEntityRequest(id=i, include_embedding=True), t)
               for i in set(ids)}
        self.assertEqual(len(got), 6)
        self.assertEqual(got[ids[4]].content, "last one wins")
        self.assertEqual(list(got[ids[1]].embedding), normalized([2, 2, 3]))
        self.assertEqual(list(got[ids[3]].embedding), normalized([4, 2, 3]))
        self.assertEqual(list(got[ids[2]].embedding), [])
        self.assertEqual(list(got[cid].embedding), normalized([1, 1]))
        self.assertEqual(got[ids[3]].content, "doc 3")
        # empty batch
        self.assertEqual(list(self.call("UpsertEntities", kg.UpsertEntitiesRequest(), t).ids), [])
        # limits
        self.assertCode(Code.INVALID_ARGUMENT, "UpsertEntities", kg.UpsertEntitiesRequest(
            entities=[kg.Entity(entity_type=E, name="n%d" % i) for i in range(1001)]), t,
            "entities")
        # a value without a text form (a Timestamp beyond year 9999)
        from google.protobuf import timestamp_pb2
        far = timestamp_pb2.Timestamp(seconds=400000000000)
        self.assertCode(Code.INVALID_ARGUMENT, "UpsertEntities", kg.UpsertEntitiesRequest(
            entities=[kg.Entity(entity_type=E, name="late", created_at=far)]), t, "entities")
        self.assertCode(Code.INVALID_ARGUMENT, "UpsertEntity", kg.UpsertEntityRequest(
            entity=kg.Entity(entity_type=E, name="late", created_at=far)), t, "entity")
        # two ids for one (type, name): the whole batch fails
        self.assertCode(Code.ALREADY_EXISTS, "UpsertEntities", kg.UpsertEntitiesRequest(
            entities=[kg.Entity(entity_type=E, name="fresh"),
                      kg.Entity(id=str(uuid.uuid4()), entity_type=E, name="d1")]), t, "entities")
        names = [e.name for e in self.call("ListEntities", kg.ListEntitiesRequest(), t).entities]
        self.assertNotIn("fresh", names)

    def test_delete_list_and_pages(self):
        t = self.new_tenant()
        made = [self.entity(t, "e%d" % i, etype=(kg.ENTITY_TYPE_AGENT if i % 3 == 0
                                                 else kg.ENTITY_TYPE_CONCEPT)) for i in range(7)]
        ids = sorted(e.id for e in made)
        seen, token = [], ""
        while True:
            page = self.call("ListEntities", kg.ListEntitiesRequest(page_size=3, page_token=token),
                             t)
            seen += [e.id for e in page.entities]
            self.assertLessEqual(len(page.entities), 3)
            token = page.next_page_token
            if not token:
                break
        self.assertEqual(seen, ids)  # by id
        agents = self.call("ListEntities", kg.ListEntitiesRequest(
            entity_type=kg.ENTITY_TYPE_AGENT), t).entities
        self.assertEqual([e.id for e in agents],
                         sorted(e.id for e in made if e.name in ("e0", "e3", "e6")))
        self.assertCode(Code.INVALID_ARGUMENT, "ListEntities",
                        kg.ListEntitiesRequest(page_token="garbage"), t, "page_token")
        self.assertCode(Code.INVALID_ARGUMENT, "ListEntities",
                        kg.ListEntitiesRequest(page_size=1001), t, "page_size")

        # deleting an entity removes its relationships
        r = self.link(t, ids[0], ids[1])
        self.link(t, ids[2], ids[0])
        self.assertTrue(self.call("DeleteEntity", kg.DeleteEntityRequest(id=ids[0]), t).removed)
        self.assertFalse(self.call("DeleteEntity", kg.DeleteEntityRequest(id=ids[0]), t).removed)
        self.assertFalse(self.call("DeleteRelationship", kg.DeleteRelationshipRequest(id=r.id),
                                   t).removed)
        self.assertEqual(psql("SELECT count(*) FROM kg_relationships WHERE tenant_id = '%s'"
                              % t)[1], "0")
        self.assertCode(Code.NOT_FOUND, "GetEntity", kg.GetEntityRequest(id=ids[0]), t)
        for m, req in (("GetEntity", kg.GetEntityRequest(id="x")),
                       ("DeleteEntity", kg.DeleteEntityRequest())):
            self.assertCode(Code.INVALID_ARGUMENT, m, req, t, "id")


class Relationships(KgCase):
    def test_upsert_delete_and_errors(self):
        t = self.new_tenant()
        a, b, c = (self.entity(t, n).id for n in "abc")
        r = self.link(t, a, b, "depends_on", confidence=0.75, strength=0.5, bidirectional=True)
        self.assertEqual((r.source_id, r.target_id, r.relationship_type), (a, b, "depends_on"))
        self.assertEqual((r.confidence, r.strength, r.bidirectional), (0.75, 0.5, True))
        # the same (source, target, type) again: the same row, updated
        again = self.link(t, a, b, "depends_on", confidence=0.5)
        self.assertEqual(again.id, r.id)
        self.assertEqual((again.confidence, again.strength, again.bidirectional), (0.5, 1, False))
        # another type is another relationship; by id the ends may change
        other = self.link(t, a, b, "uses")
        self.assertNotEqual(other.id, r.id)
        moved = self.call("UpsertRelationship", kg.UpsertRelationshipRequest(
            relationship=kg.Relationship(id=other.id, source_id=b, target_id=c,
                                         relationship_type="uses")), t)
        self.assertEqual((moved.id, moved.source_id, moved.target_id), (other.id, b, c))
        # an id-addressed change onto another relationship's key
        self.assertCode(Code.ALREADY_EXISTS, "UpsertRelationship", kg.UpsertRelationshipRequest(
            relationship=kg.Relationship(id=other.id, source_id=a, target_id=b,
                                         relationship_type="depends_on")), t, "relationship")

        ids = list(self.call("UpsertRelationships", kg.UpsertRelationshipsRequest(relationships=[
            kg.Relationship(source_id=c, target_id=a, relationship_type="x"),
            kg.Relationship(source_id=a, target_id=b, relationship_type="depends_on",
                            confidence=0.9),
            kg.Relationship(source_id=c, target_id=a, relationship_type="x", strength=0.2),
        ]), t).ids)
        self.assertEqual(ids[1], r.id)
        self.assertEqual(ids[0], ids[2])
        self.assertEqual(list(self.call("UpsertRelationships", kg.UpsertRelationshipsRequest(),
                                        t).ids), [])

        R = kg.Relationship
        bad = [
            (R(source_id=a, target_id=a, relationship_type="self"), "relationship.target_id"),
            (R(source_id=a, target_id=b, relationship_type="Bad-Type"),
             "relationship.relationship_type"),
            (R(source_id=a, target_id=b), "relationship.relationship_type"),
            (R(source_id=a, target_id=b, relationship_type="t" * 65),
             "relationship.relationship_type"),
            (R(source_id="x", target_id=b, relationship_type="t"), "relationship.source_id"),
            (R(source_id=a, target_id=b, relationship_type="t", confidence=2),
             "relationship.confidence"),
            (R(source_id=a, target_id=b, relationship_type="t", strength=-1),
             "relationship.strength"),
        ]
        for rel, field in bad:
            self.assertCode(Code.INVALID_ARGUMENT, "UpsertRelationship",
                            kg.UpsertRelationshipRequest(relationship=rel), t, field)
        self.assertCode(Code.INVALID_ARGUMENT, "UpsertRelationship",
                        kg.UpsertRelationshipRequest(), t, "relationship")
        self.assertCode(Code.INVALID_ARGUMENT, "UpsertRelationships",
                        kg.UpsertRelationshipsRequest(relationships=[
                            R(source_id=a, target_id=b, relationship_type="ok"),
                            R(source_id=b, target_id=b, relationship_type="loop")]), t,
                        "relationships")
        # unknown ends
        self.assertCode(Code.FAILED_PRECONDITION, "UpsertRelationship",
                        kg.UpsertRelationshipRequest(relationship=R(
                            source_id=a, target_id=str(uuid.uuid4()), relationship_type="t")), t)
        self.assertCode(Code.FAILED_PRECONDITION, "UpsertRelationships",
                        kg.UpsertRelationshipsRequest(relationships=[
                            R(source_id=a, target_id=b, relationship_type="fine"),
                            R(source_id=str(uuid.uuid4()), target_id=b, relationship_type="t")]),
                        t)
        # nothing of the failed batches was written
        self.assertEqual(psql("SELECT count(*) FROM kg_relationships WHERE tenant_id = '%s' AND"
                              " relationship_type IN ('ok', 'fine')" % t)[1], "0")

        self.assertTrue(self.call("DeleteRelationship", kg.DeleteRelationshipRequest(id=r.id),
                                  t).removed)
        self.assertFalse(self.call("DeleteRelationship", kg.DeleteRelationshipRequest(id=r.id),
                                   t).removed)
        self.assertCode(Code.INVALID_ARGUMENT, "DeleteRelationship",
                        kg.DeleteRelationshipRequest(id="1"), t, "id")


class GraphCalls(KgCase):
    def test_traverse_and_find_path_basics(self):
        t = self.new_tenant()
        a, b, c, d = (self.entity(t, n).id for n in "abcd")
        self.link(t, a, b, "x", confidence=0.9)
        self.link(t, b, c, "y", confidence=0.8)
        self.link(t, d, c, "z", confidence=0.7, bidirectional=True)
        nodes = self.call("Traverse", kg.TraverseRequest(start_id=a, max_hops=3), t).nodes
        self.assertEqual([(n.entity.id, n.hop_distance) for n in nodes], [(b, 1), (c, 2), (d, 3)])
        self.assertAlmostEqual(nodes[2].cumulative_confidence, 0.9 * 0.8 * 0.7)
        self.assertEqual(list(nodes[2].path_ids), [a, b, c, d])
        self.assertEqual(list(nodes[2].relationship_path), ["x", "y", "z"])
        self.assertEqual(nodes[0].entity.name, "b")
        # defaults: 2 hops, minimum confidence 0.5
        self.assertEqual(len(self.call("Traverse", kg.TraverseRequest(start_id=a), t).nodes), 2)
        self.assertEqual(len(self.call("Traverse", kg.TraverseRequest(
            start_id=a, max_hops=3, min_confidence=dv(0.6)), t).nodes), 2)
        self.assertEqual(len(self.call("Traverse", kg.TraverseRequest(
            start_id=a, max_hops=3, limit=1), t).nodes), 1)
        self.assertEqual([n.entity.id for n in self.call("Traverse", kg.TraverseRequest(
            start_id=a, max_hops=3, relationship_types=["x"]), t).nodes], [b])
        self.assertEqual(len(self.call("Traverse", kg.TraverseRequest(start_id=c), t).nodes), 1)

        p = self.call("FindPath", kg.FindPathRequest(source_id=a, target_id=d), t)
        self.assertTrue(p.found)
        self.assertEqual((list(p.path_ids), list(p.relationship_types), p.hops),
                         ([a, b, c, d], ["x", "y", "z"], 3))
        self.assertAlmostEqual(p.total_confidence, 0.9 * 0.8 * 0.7)
        self.assertFalse(self.call("FindPath", kg.FindPathRequest(
            source_id=d, target_id=a), t).found)
        self.assertFalse(self.call("FindPath", kg.FindPathRequest(
            source_id=a, target_id=d, max_hops=2), t).found)
        same = self.call("FindPath", kg.FindPathRequest(source_id=a, target_id=a), t)
        self.assertEqual((same.found, list(same.path_ids), same.hops), (True, [a], 0))

        missing = str(uuid.uuid4())
        self.assertCode(Code.NOT_FOUND, "Traverse", kg.TraverseRequest(start_id=missing), t)
        self.assertCode(Code.NOT_FOUND, "FindPath",
                        kg.FindPathRequest(source_id=a, target_id=missing), t)
        for req, field in ((kg.TraverseRequest(start_id=a, max_hops=7), "max_hops"),
                           (kg.TraverseRequest(start_id=a, limit=10001), "limit"),
                           (kg.TraverseRequest(start_id=a, min_confidence=dv(1.5)),
                            "min_confidence"),
                           (kg.TraverseRequest(start_id=a, relationship_types=[""]),
                            "relationship_types[0]"),
                           (kg.TraverseRequest(), "start_id")):
            self.assertCode(Code.INVALID_ARGUMENT, "Traverse", req, t, field)
        self.assertCode(Code.INVALID_ARGUMENT, "FindPath",
                        kg.FindPathRequest(source_id=a, target_id=b, max_hops=11), t, "max_hops")


class Searches(KgCase):
    def test_vector_and_hybrid_basics_and_stats(self):
        t = self.new_tenant()
        x = self.entity(t, "x", embedding=[1, 0, 0], content="red apples")
        y = self.entity(t, "y", etype=kg.ENTITY_TYPE_DOCUMENT, embedding=[1, 1, 0],
                        content="green apples, apples")
        self.entity(t, "z", embedding=[-1, 0, 0], content="bananas")
        self.entity(t, "w", embedding=[1, 0], content="other dimension")

        hits = self.call("VectorSearch", kg.VectorSearchRequest(embedding=[2, 0, 0]), t).hits
        self.assertEqual([h.entity.name for h in hits], ["x", "y", "z"])
        self.assertAlmostEqual(hits[0].score, 1.0, places=6)
        self.assertAlmostEqual(hits[1].score, 2 ** -0.5, places=6)
        self.assertAlmostEqual(hits[2].score, -1.0, places=6)
        self.assertEqual([h.score for h in hits], [h.vector_score for h in hits])
        self.assertEqual({h.source for h in hits}, {kg.HIT_SOURCE_VECTOR})
        self.assertEqual(list(hits[0].entity.embedding), [])  # not unless asked
        self.assertEqual(list(hits[0].path_ids), [x.id])
        with_emb = self.call("VectorSearch", kg.VectorSearchRequest(
            embedding=[2, 0, 0], limit=1, include_embeddings=True), t).hits
        self.assertEqual([(h.entity.id, list(h.entity.embedding)) for h in with_emb],
                         [(x.id, [1, 0, 0])])
        self.assertEqual([h.entity.id for h in self.call("VectorSearch", kg.VectorSearchRequest(
            embedding=[2, 0, 0], min_similarity=dv(0.5)), t).hits], [x.id, y.id])
        self.assertEqual([h.entity.id for h in self.call("VectorSearch", kg.VectorSearchRequest(
            embedding=[2, 0, 0], entity_types=[kg.ENTITY_TYPE_DOCUMENT]), t).hits], [y.id])

        hyb = self.call("HybridSearch", kg.HybridSearchRequest(query_text="apples"), t).hits
        self.assertEqual({h.entity.id for h in hyb}, {x.id, y.id})
        self.assertEqual({h.source for h in hyb}, {kg.HIT_SOURCE_TEXT})
        self.assertTrue(all(h.text_score > 0 and h.vector_score == 0 for h in hyb))
        hyb = self.call("HybridSearch", kg.HybridSearchRequest(
            embedding=[0, 1, 0], query_text="apples", graph_hops=iv(0)), t).hits
        self.assertEqual(hyb[0].entity.id, y.id)  # first in both lists
        self.assertAlmostEqual(hyb[0].score, 2 / 61)

        bad = [
            ("VectorSearch", kg.VectorSearchRequest(), "embedding"),
            ("VectorSearch", kg.VectorSearchRequest(embedding=[0, 0, 0]), "embedding"),
            ("VectorSearch", kg.VectorSearchRequest(embedding=[float("nan"), 1, 1]), "embedding"),
            ("VectorSearch", kg.VectorSearchRequest(embedding=[1] * 2001), "embedding"),
            ("VectorSearch", kg.VectorSearchRequest(embedding=[1, 1, 1], limit=101), "limit"),
            ("VectorSearch", kg.VectorSearchRequest(embedding=[1, 1, 1],
                                                    min_similarity=dv(2)), "min_similarity"),
            # a dimension no stored vector has
            ("VectorSearch", kg.VectorSearchRequest(embedding=[1, 1, 1, 1]), "embedding"),
            ("HybridSearch", kg.HybridSearchRequest(embedding=[1, 1, 1, 1]), "embedding"),
            ("HybridSearch", kg.HybridSearchRequest(), "query_text"),
            ("HybridSearch", kg.HybridSearchRequest(query_text="  "), "query_text"),
            ("HybridSearch", kg.HybridSearchRequest(query_text="a", graph_hops=iv(4)),
             "graph_hops"),
            ("HybridSearch", kg.HybridSearchRequest(query_text="a", min_confidence=dv(-1)),
             "min_confidence"),
            ("HybridSearch", kg.HybridSearchRequest(query_text="q" * 1001), "query_text"),
        ]
        for method, req, field in bad:
            self.assertCode(Code.INVALID_ARGUMENT, method, req, t, field)

        # a tenant without vectors: no mismatch, nothing found
        empty = self.new_tenant()
        self.assertEqual(list(self.call("VectorSearch", kg.VectorSearchRequest(
            embedding=[1, 2]), empty).hits), [])

        stats = {s.search_type: s for s in self.call("GetSearchStats",
                                                     kg.GetSearchStatsRequest(), t).stats}
        self.assertEqual(list(stats), [kg.GRAPH_SEARCH_TYPE_VECTOR, kg.GRAPH_SEARCH_TYPE_HYBRID,
                                       kg.GRAPH_SEARCH_TYPE_TRAVERSE,
                                       kg.GRAPH_SEARCH_TYPE_FIND_PATH])
        v = stats[kg.GRAPH_SEARCH_TYPE_VECTOR]
        self.assertEqual(v.count, 4)  # failed searches are not logged: they rolled back
        self.assertEqual(stats[kg.GRAPH_SEARCH_TYPE_HYBRID].count, 2)
        self.assertEqual(stats[kg.GRAPH_SEARCH_TYPE_TRAVERSE].count, 0)
        self.assertTrue(0 < v.p50_ms <= v.p95_ms <= v.p99_ms)
        self.assertEqual(v.slow_count, 0)
        self.assertAlmostEqual(v.avg_results, (3 + 1 + 2 + 1) / 4)
        self.assertAlmostEqual(v.avg_nodes_visited, 3)  # the 3-dimensional vectors
        self.assertEqual(psql("SELECT count(*) FROM kg_search_log WHERE tenant_id = '%s'"
                              " AND query_hash = encode(sha256('apples'), 'hex')" % t)[1], "2")


class Isolation(KgCase):
    """Tenant B can neither see nor change A's rows, and searches never
    cross: A's entities are never B's seeds, never reached, never counted."""

    def test_matrix(self):
        a, b = self.new_tenant("iso-a"), self.new_tenant("iso-b")
        a1 = self.entity(a, "a1", embedding=[1, 0], content="secret plans")
        a2 = self.entity(a, "a2", embedding=[0, 1], content="secret plans too")
        ra = self.link(a, a1.id, a2.id, "knows", bidirectional=True)
        b1 = self.entity(b, "b1", embedding=[1, 0, 0], content="public notes")

        # reading
        self.assertCode(Code.NOT_FOUND, "GetEntity", kg.GetEntityRequest(id=a1.id), b)
        self.assertEqual([e.id for e in self.call("ListEntities", kg.ListEntitiesRequest(),
                                                  b).entities], [b1.id])
        self.assertCode(Code.NOT_FOUND, "Traverse", kg.TraverseRequest(start_id=a1.id), b)
        self.assertCode(Code.NOT_FOUND, "FindPath",
                        kg.FindPathRequest(source_id=b1.id, target_id=a1.id), b)
        # B's search in B's dimension: only B; in A's dimension: B has none
        self.assertEqual([h.entity.id for h in self.call("VectorSearch", kg.VectorSearchRequest(
            embedding=[1, 0, 0]), b).hits], [b1.id])
        self.assertCode(Code.INVALID_ARGUMENT, "VectorSearch",
                        kg.VectorSearchRequest(embedding=[1, 0]), b, "embedding")
        self.assertEqual(list(self.call("HybridSearch", kg.HybridSearchRequest(
            query_text="secret plans"), b).hits), [])

        # changing
        self.assertFalse(self.call("DeleteEntity", kg.DeleteEntityRequest(id=a1.id), b).removed)
        self.assertFalse(self.call("DeleteRelationship", kg.DeleteRelationshipRequest(id=ra.id),
                                   b).removed)
        # an upsert with A's id makes B's own entity; A's stays as it was
        mine = self.call("UpsertEntity", kg.UpsertEntityRequest(entity=kg.Entity(
            id=a1.id, entity_type=kg.ENTITY_TYPE_CONCEPT, name="b-owned")), b)
        self.assertEqual(mine.id, a1.id)
        self.assertEqual(self.call("GetEntity", kg.GetEntityRequest(id=a1.id), a).name, "a1")
        # relationships never cross tenants
        self.assertCode(Code.FAILED_PRECONDITION, "UpsertRelationship",
                        kg.UpsertRelationshipRequest(relationship=kg.Relationship(
                            source_id=b1.id, target_id=a2.id, relationship_type="x")), b)
        self.assertCode(Code.FAILED_PRECONDITION, "UpsertRelationships",
                        kg.UpsertRelationshipsRequest(relationships=[kg.Relationship(
                            source_id=a2.id, target_id=b1.id, relationship_type="x")]), a)
        # not even the table owner can write one (the foreign keys carry tenant_id)
        rc, _, err = psql("SET app.current_tenant = '%s';"
                          " INSERT INTO kg_relationships (source_id, target_id, relationship_type)"
                          " VALUES ('%s', '%s', 'x')" % (a, a1.id, b1.id),
                          url=harness.owner_url(), check=False)
        self.assertNotEqual(rc, 0)
        self.assertIn("23503", err)

        # A's graph, from A: B's same-id entity is not reached, nothing of B counted
        nodes = self.call("Traverse", kg.TraverseRequest(start_id=a1.id), a).nodes
        self.assertEqual([n.entity.id for n in nodes], [a2.id])
        hyb = self.call("HybridSearch", kg.HybridSearchRequest(
            embedding=[1, 0], query_text="secret or public"), a).hits
        self.assertEqual({h.entity.id for h in hyb}, {a1.id, a2.id})
        self.assertTrue(all(h.entity.name in ("a1", "a2") for h in hyb))

        # statistics: each tenant counts its own searches only
        def counts(t):
            return {s.search_type: s.count for s in self.call(
                "GetSearchStats", kg.GetSearchStatsRequest(), t).stats}
        self.assertEqual(counts(a)[kg.GRAPH_SEARCH_TYPE_TRAVERSE], 1)
        self.assertEqual(counts(a)[kg.GRAPH_SEARCH_TYPE_HYBRID], 1)
        self.assertEqual(counts(b)[kg.GRAPH_SEARCH_TYPE_VECTOR], 1)
        self.assertEqual(counts(b)[kg.GRAPH_SEARCH_TYPE_HYBRID], 1)
        self.assertEqual(counts(b)[kg.GRAPH_SEARCH_TYPE_TRAVERSE], 0)
        fresh = self.new_tenant("iso-c")
        self.assertEqual(set(counts(fresh).values()), {0})


class Arbiterctl(KgCase):
    """arbiterctl knows the service: it builds the requests from the
    descriptors and prints the answers as JSON."""

    def ctl(self, *args):
        p = subprocess.run([os.environ["ARBITERCTL"], "--socket", SERVERS[0].socket, *args],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def test_calls(self):
        if not os.environ.get("ARBITERCTL"):
            self.skipTest("no ARBITERCTL")
        t = self.new_tenant("ctl")
        e = self.ctl("--tenant", t, "call", "KnowledgeGraph.UpsertEntity",
                     "entity.entity_type=ENTITY_TYPE_DOCUMENT", "entity.name=readme",
                     "entity.content=how to search", "entity.embedding=3", "entity.embedding=4")
        self.assertEqual(e["name"], "readme")
        self.assertEqual(e["entity_type"], "ENTITY_TYPE_DOCUMENT")
        self.assertAlmostEqual(e["embedding"][0], 0.6, places=6)
        hits = self.ctl("--tenant", t, "call", "KnowledgeGraph.VectorSearch", "embedding=1",
                        "embedding=1", "limit=5")["hits"]
        self.assertEqual([h["entity"]["id"] for h in hits], [e["id"]])
        self.assertEqual(hits[0]["source"], "HIT_SOURCE_VECTOR")
        hyb = self.ctl("--tenant", t, "call", "KnowledgeGraph.HybridSearch",
                       "query_text=search", "graph_hops=1", "min_confidence=0.2")["hits"]
        self.assertEqual([h["entity"]["name"] for h in hyb], ["readme"])
        stats = self.ctl("--tenant", t, "call", "KnowledgeGraph.GetSearchStats")["stats"]
        self.assertEqual([s["count"] for s in stats[:2]], ["1", "1"])  # int64 as strings
        info = self.ctl("call", "Admin.GetServerInfo")
        self.assertTrue(info["vector_implementation"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
