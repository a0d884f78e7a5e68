"""Traverse and FindPath against a reference computed here (every simple
path, by depth-first search) on random graphs with cycles, bidirectional
edges, several relationship types and confidence pruning; HybridSearch on a
hand-made fixture whose answer follows from the documented formula,
including a 3-hop result that upstream's hybrid search would have dropped."""
import random
import unittest

from kgcommon import KgCase, dv, iv, kg, start_server, stop_servers


def setUpModule():
    start_server()


def tearDownModule():
    stop_servers()


def simple_paths(adj, start, max_hops, min_conf=0.0, types=()):
    """For every entity reachable from |start| on a cycle-free path of at
    most |max_hops| edges whose running confidence never falls below
    |min_conf|: (hop, confidence, path, types) of its shortest such path,
    the most confident among equal lengths."""
    best = {}

    def walk(node, path, rels, conf):
        hop = len(path) - 1
        if hop > 0:
            cur = best.get(node)
            if cur is None or hop < cur[0] or (hop == cur[0] and conf > cur[1]):
                best[node] = (hop, conf, list(path), list(rels))
        if hop == max_hops:
            return
        for to, rtype, c in adj.get(node, ()):
            if (types and rtype not in types) or to in path or conf * c < min_conf:
                continue
            path.append(to)
            rels.append(rtype)
            walk(to, path, rels, conf * c)
            path.pop()
            rels.pop()

    walk(start, [start], [], 1.0)
    return best


class RandomGraphs(KgCase):
    def make_graph(self, tenant, rnd, n, m):
        ids = list(self.call("UpsertEntities", kg.UpsertEntitiesRequest(entities=[
            kg.Entity(entity_type=kg.ENTITY_TYPE_CONCEPT, name="n%02d" % i) for i in range(n)]),
            tenant).ids)
        rels, adj, seen = [], {}, set()
        while len(rels) < m:
            s, t = rnd.sample(range(n), 2)
            rtype = rnd.choice(["a", "b", "c"])
            if (s, t, rtype) in seen:
                continue
            seen.add((s, t, rtype))
            conf = rnd.uniform(0.3, 1.0)
            bidi = rnd.random() < 0.25
            rels.append(kg.Relationship(source_id=ids[s], target_id=ids[t], relationship_type=rtype,
                                        confidence=conf, strength=rnd.uniform(0.1, 1),
                                        bidirectional=bidi))
            adj.setdefault(ids[s], []).append((ids[t], rtype, conf))
            if bidi:
                adj.setdefault(ids[t], []).append((ids[s], rtype, conf))
        self.call("UpsertRelationships", kg.UpsertRelationshipsRequest(relationships=rels), tenant)
        # what the server stored (confidence is a double: exact)
        return ids, adj

    def check_path(self, adj, path, rels, conf, start, end):
        self.assertEqual((path[0], path[-1]), (start, end))
        self.assertEqual(len(set(path)), len(path), "a path must not repeat an entity")
        product = 1.0
        for (u, v), rtype in zip(zip(path, path[1:]), rels):
            cs = [c for to, t, c in adj.get(u, ()) if to == v and t == rtype]
            self.assertTrue(cs, "no %s edge %s -> %s" % (rtype, u, v))
            product *= max(cs)
        self.assertAlmostEqual(product, conf, delta=1e-12)

    def test_traverse_matches_reference(self):
        rnd = random.Random(10)
        for g in range(3):
            t = self.new_tenant("walk")
            ids, adj = self.make_graph(t, rnd, 30, 75)
            for start in rnd.sample(ids, 4):
                for hops, min_conf, types in ((1, 0.5, ()), (2, 0.5, ()), (3, 0.3, ()),
                                              (4, 0.0, ()), (4, 0.4, ("a", "b")), (6, 0.6, ())):
                    want = simple_paths(adj, start, hops, min_conf, types)
                    nodes = self.call("Traverse", kg.TraverseRequest(
                        start_id=start, max_hops=hops, min_confidence=dv(min_conf),
                        relationship_types=list(types), limit=1000), t).nodes
                    got = {n.entity.id: n for n in nodes}
                    what = "graph %d from %s, %d hops, min %g, types %s" % (
                        g, start, hops, min_conf, types)
                    self.assertEqual(len(got), len(nodes), what)  # each entity once
                    self.assertEqual(set(got), set(want), what)
                    for node, (hop, conf, _, _) in want.items():
                        n = got[node]
                        self.assertEqual(n.hop_distance, hop, what)
                        self.assertAlmostEqual(n.cumulative_confidence, conf, delta=1e-12,
                                               msg=what)
                        self.assertEqual(len(n.path_ids), hop + 1)
                        self.check_path(adj, list(n.path_ids), list(n.relationship_path),
                                        n.cumulative_confidence, start, node)
                        self.assertTrue(not types or set(n.relationship_path) <= set(types))
                    # nearest first, then most confident
                    order = [(n.hop_distance, -n.cumulative_confidence) for n in nodes]
                    self.assertEqual(order, sorted(order), what)

    def test_find_path_matches_reference(self):
        rnd = random.Random(77)
        for g in range(2):
            t = self.new_tenant("path")
            ids, adj = self.make_graph(t, rnd, 25, 45)
            found = 0
            for _ in range(25):
                s, e = rnd.sample(ids, 2)
                want = simple_paths(adj, s, 5).get(e)
                p = self.call("FindPath", kg.FindPathRequest(source_id=s, target_id=e), t)
                if want is None:
                    self.assertFalse(p.found)
                    self.assertEqual((list(p.path_ids), p.hops), ([], 0))
                    continue
                found += 1
                self.assertTrue(p.found)
                self.assertEqual(p.hops, want[0])
                self.assertAlmostEqual(p.total_confidence, want[1], delta=1e-12)
                self.assertEqual(len(p.path_ids), p.hops + 1)
                self.check_path(adj, list(p.path_ids), list(p.relationship_types),
                                p.total_confidence, s, e)
            self.assertGreater(found, 5)

    def test_confidence_pruning_reroutes(self):
        """The shortest path is too weak; a longer, confident one counts, and
        its cycle-free walk passes an entity reached earlier."""
        t = self.new_tenant()
        s, x, a, y = (self.entity(t, n).id for n in ("s", "x", "a", "y"))
        self.link(t, s, x, confidence=0.5)
        self.link(t, s, a, confidence=0.9)
        self.link(t, a, x, confidence=0.9)
        self.link(t, x, y, confidence=0.9)
        nodes = {n.entity.id: n for n in self.call("Traverse", kg.TraverseRequest(
            start_id=s, max_hops=3, min_confidence=dv(0.5)), t).nodes}
        self.assertEqual(nodes[x].hop_distance, 1)  # 0.5 is not below 0.5
        self.assertEqual(list(nodes[y].path_ids), [s, a, x, y])  # 0.45 via s->x is pruned
        self.assertEqual(nodes[y].hop_distance, 3)
        self.assertAlmostEqual(nodes[y].cumulative_confidence, 0.729)


class Hybrid(KgCase):
    def test_hand_made_ranking(self):
        t = self.new_tenant("hybrid")
        C = kg.ENTITY_TYPE_CONCEPT

        def ent(name, emb=(), content="", etype=C):
            return self.entity(t, name, etype=etype, embedding=list(emb), content=content).id

        s1 = ent("s1", [1, 0], "alpha")
        s2 = ent("s2", [0.8, 0.6], "beta")
        s3 = ent("s3", [0, 1], "zebra crossing. and again: zebra crossing.")
        t1 = ent("t1", (), "zebra crossing")
        g1 = ent("g1", (), "nothing here")
        h1 = ent("h1", (), "hop one")
        h2 = ent("h2", (), "hop two")
        g3 = ent("g3", (), "three hops out", etype=kg.ENTITY_TYPE_DOCUMENT)
        self.link(t, s2, g1, confidence=0.9, strength=0.5)
        self.link(t, s1, h1, confidence=0.9)
        self.link(t, h1, h2, confidence=0.9)
        self.link(t, h2, g3, confidence=0.9)
        self.link(t, g3, s1, confidence=0.4)  # too weak to matter at min_confidence 0.5

        # Vector list: s1 (1.0), s2 (0.8), s3 (0.0); text list: s3 (two
        # covers), t1 (one). RRF with k = 60, then the walks from the seeds.
        seed = {s1: 1 / 61, s2: 1 / 62, s3: 1 / 63 + 1 / 61, t1: 1 / 62}
        want = [  # id, score, source, hop, via, path
            (s3, seed[s3], kg.HIT_SOURCE_TEXT, 0, "", [s3]),
            (s1, seed[s1], kg.HIT_SOURCE_VECTOR, 0, "", [s1]),
            (s2, seed[s2], kg.HIT_SOURCE_VECTOR, 0, "", [s2]),
            (t1, seed[t1], kg.HIT_SOURCE_TEXT, 0, "", [t1]),
            (h1, seed[s1] * 0.9 / 2, kg.HIT_SOURCE_GRAPH, 1, s1, [s1, h1]),
            (h2, seed[s1] * 0.81 / 3, kg.HIT_SOURCE_GRAPH, 2, s1, [s1, h1, h2]),
            (g1, seed[s2] * 0.9 * 0.5 / 2, kg.HIT_SOURCE_GRAPH, 1, s2, [s2, g1]),
            # 3 hops out: upstream's graph step kept only direct edges of a seed
            (g3, seed[s1] * 0.729 / 4, kg.HIT_SOURCE_GRAPH, 3, s1, [s1, h1, h2, g3]),
        ]
        # s2 and t1 tie on score (and hop): the id decides
        want.sort(key=lambda w: (-round(w[1], 15), w[3], w[0]))
        hits = self.call("HybridSearch", kg.HybridSearchRequest(
            embedding=[1, 0], query_text="zebra crossing", graph_hops=iv(3),
            min_confidence=dv(0.5)), t).hits
        self.assertEqual([h.entity.id for h in hits], [w[0] for w in want])
        for h, (eid, score, source, hop, via, path) in zip(hits, want):
            self.assertAlmostEqual(h.score, score, delta=1e-12, msg=h.entity.name)
            self.assertEqual((h.source, h.hop_distance, h.via_id, list(h.path_ids)),
                             (source, hop, via, path), h.entity.name)
            if source == kg.HIT_SOURCE_GRAPH:
                self.assertAlmostEqual(h.graph_score, score, delta=1e-12)
        by = {h.entity.id: h for h in hits}
        self.assertAlmostEqual(by[s2].vector_score, 0.8, places=6)
        self.assertAlmostEqual(by[s1].vector_score, 1.0, places=6)
        self.assertEqual((by[t1].vector_score, by[g3].vector_score), (0, 0))
        self.assertGreater(by[s3].text_score, by[t1].text_score)
        self.assertEqual((by[s1].text_score, by[s1].graph_score), (0, 0))

        # graph_hops defaults to 2: g3 is out of reach; 0: seeds only
        two = [h.entity.id for h in self.call("HybridSearch", kg.HybridSearchRequest(
            embedding=[1, 0], query_text="zebra crossing", min_confidence=dv(0.5)), t).hits]
        self.assertEqual(two, [w[0] for w in want if w[0] != g3])
        seeds = [h.entity.id for h in self.call("HybridSearch", kg.HybridSearchRequest(
            embedding=[1, 0], query_text="zebra crossing", graph_hops=iv(0)), t).hits]
        self.assertEqual(set(seeds), {s1, s2, s3, t1})
        # min_confidence prunes the walks (0.9 < 0.95)
        strict = self.call("HybridSearch", kg.HybridSearchRequest(
            embedding=[1, 0], query_text="zebra crossing", graph_hops=iv(3),
            min_confidence=dv(0.95)), t).hits
        self.assertEqual({h.source for h in strict}, {kg.HIT_SOURCE_VECTOR, kg.HIT_SOURCE_TEXT})
        # entity_types filter seeds and answers; limit cuts
        concepts = [h.entity.id for h in self.call("HybridSearch", kg.HybridSearchRequest(
            embedding=[1, 0], query_text="zebra crossing", graph_hops=iv(3),
            entity_types=[kg.ENTITY_TYPE_CONCEPT], min_confidence=dv(0.5)), t).hits]
        self.assertEqual(concepts, [w[0] for w in want if w[0] != g3])
        self.assertEqual(len(self.call("HybridSearch", kg.HybridSearchRequest(
            embedding=[1, 0], query_text="zebra crossing", graph_hops=iv(3), limit=3), t).hits),
            3)
        # text only, and vector only
        text = self.call("HybridSearch", kg.HybridSearchRequest(
            query_text="zebra crossing", graph_hops=iv(0)), t).hits
        self.assertEqual([h.entity.id for h in text], [s3, t1])
        vec = self.call("HybridSearch", kg.HybridSearchRequest(
            embedding=[1, 0], graph_hops=iv(0)), t).hits
        self.assertEqual([h.entity.id for h in vec], [s1, s2, s3])


if __name__ == "__main__":
    unittest.main(verbosity=2)
