"""WebNavigator traversals: CreateTraversal with its root node, AddNodes
(dedupe, max_depth and max_pages refusals, the 1,000 cap, parents),
ClaimNodes in each strategy's order with leases (four concurrent claimers
never share a node, expired leases are claimed again), UpdateNode,
UpdateTraversalStatus and GetTraversal's counts; with their errors."""
import threading
import time
import unittest

from webcommon import (ZERO_UUID, Code, WebCase, sql_value, start_server, stop_server, wn)

ALL_ZERO = {"PENDING": 0, "CLAIMED": 0, "DONE": 0, "FAILED": 0, "SKIPPED": 0}


def setUpModule():
    start_server(args=["--pool-max", "4"])


def tearDownModule():
    stop_server()


def counts(**kw):
    d = dict(ALL_ZERO)
    d.update(kw)
    return d


class Create(WebCase):
    def test_defaults_and_root(self):
        t = self.new_tenant()
        tr = self.traversal(t, "https://ex.org/start", session_id="sess-1")
        self.assertRegex(tr.id, r"^[0-9a-f-]{36}$")
        self.assertEqual((tr.session_id, tr.start_url, tr.max_depth, tr.max_pages),
                         ("sess-1", "https://ex.org/start", 3, 50))
        self.assertEqual((tr.strategy, tr.status), (wn.STRATEGY_BREADTH_FIRST,
                                                    wn.TRAVERSAL_STATUS_RUNNING))
        self.assertTrue(tr.HasField("created_at"))
        self.assertFalse(tr.HasField("completed_at"))
        self.assertEqual(dict(tr.nodes_by_status), counts(PENDING=1))
        self.assertEqual(self.call("GetTraversal", wn.GetTraversalRequest(id=tr.id), t), tr)
        root = self.claim(t, tr.id, 10)
        self.assertEqual(len(root), 1)
        self.assertEqual((root[0].url, root[0].depth, root[0].parent_id, root[0].traversal_id),
                         ("https://ex.org/start", 0, "", tr.id))

    def test_errors(self):
        t = self.new_tenant()
        C = wn.CreateTraversalRequest
        self.assertCode(Code.INVALID_ARGUMENT, "CreateTraversal", C(), t, "start_url")
        self.assertCode(Code.INVALID_ARGUMENT, "CreateTraversal",
                        C(start_url="https://ex.org", max_depth=101), t, "max_depth")
        self.assertCode(Code.INVALID_ARGUMENT, "CreateTraversal",
                        C(start_url="https://ex.org", max_pages=-1), t, "max_pages")
        self.assertCode(Code.INVALID_ARGUMENT, "CreateTraversal",
                        C(start_url="https://ex.org", strategy=9), t, "strategy")
        for method, req in (("GetTraversal", wn.GetTraversalRequest(id=ZERO_UUID)),
                            ("UpdateTraversalStatus", wn.UpdateTraversalStatusRequest(
                                id=ZERO_UUID, status=wn.TRAVERSAL_STATUS_FAILED)),
                            ("AddNodes", wn.AddNodesRequest(traversal_id=ZERO_UUID)),
                            ("ClaimNodes", wn.ClaimNodesRequest(traversal_id=ZERO_UUID, max=1)),
                            ("UpdateNode", wn.UpdateNodeRequest(node_id=ZERO_UUID,
                                                                status=wn.NODE_STATUS_DONE))):
            self.assertCode(Code.NOT_FOUND, method, req, t)
        self.assertCode(Code.INVALID_ARGUMENT, "GetTraversal", wn.GetTraversalRequest(id="x"), t,
                        "id")
        self.assertEqual(sql_value("SELECT count(*) FROM web_traversals WHERE tenant_id = '%s'"
                                   % t), "0")


class Add(WebCase):
    def test_dedupe_depth_and_pages(self):
        t = self.new_tenant()
        tr = self.traversal(t, "https://ex.org/", max_depth=2, max_pages=6)
        r = self.add(t, tr.id, [("https://ex.org/a", 1), ("https://ex.org/b", 2),
                                ("https://ex.org/a", 1),  # repeated in the request
                                ("https://ex.org/", 1),   # the root
                                ("https://ex.org/deep", 3)])  # beyond max_depth
        self.assertEqual((r.added, r.duplicates, r.refused), (2, 2, 1))
        r = self.add(t, tr.id, [("https://ex.org/b", 1), ("https://ex.org/c", 1),
                                ("https://ex.org/d", 1), ("https://ex.org/e", 2),
                                ("https://ex.org/f", 1)])
        # 3 nodes so far, room for 3 more of the 4 new ones, in request order
        self.assertEqual((r.added, r.duplicates, r.refused), (3, 1, 1))
        urls = sql_value("SELECT string_agg(url, ' ' ORDER BY seq) FROM web_crawl_nodes"
                         " WHERE traversal_id = '%s'" % tr.id).split()
        self.assertEqual(urls, ["https://ex.org/", "https://ex.org/a", "https://ex.org/b",
                                "https://ex.org/c", "https://ex.org/d", "https://ex.org/e"])
        self.assertEqual(dict(self.call("GetTraversal", wn.GetTraversalRequest(id=tr.id),
                                        t).nodes_by_status), counts(PENDING=6))
        r = self.add(t, tr.id, [("https://ex.org/g", 1)])
        self.assertEqual((r.added, r.duplicates, r.refused), (0, 0, 1))
        r = self.add(t, tr.id, [])
        self.assertEqual((r.added, r.duplicates, r.refused), (0, 0, 0))

    def test_fields_and_parent(self):
        t = self.new_tenant()
        tr = self.traversal(t, "https://ex.org/", strategy=wn.STRATEGY_BEST_FIRST)
        root = self.claim(t, tr.id, 1)[0]
        r = self.add(t, tr.id, [wn.CrawlNode(url="https://ex.org/child", depth=1,
                                             parent_id=root.id, link_text="Child",
                                             priority=0.25)])
        self.assertEqual(r.added, 1)
        child = self.claim(t, tr.id, 1)[0]
        self.assertEqual((child.url, child.depth, child.parent_id, child.link_text,
                          child.priority), ("https://ex.org/child", 1, root.id, "Child", 0.25))
        other = self.traversal(t, "https://other.org/")
        self.assertCode(Code.FAILED_PRECONDITION, "AddNodes", wn.AddNodesRequest(
            traversal_id=other.id, nodes=[wn.CrawlNode(url="https://other.org/x", depth=1,
                                                       parent_id=root.id)]), t,
            "nodes.parent_id")
        self.assertCode(Code.FAILED_PRECONDITION, "AddNodes", wn.AddNodesRequest(
            traversal_id=other.id, nodes=[wn.CrawlNode(url="https://other.org/y", depth=1),
                                          wn.CrawlNode(url="https://other.org/z", depth=1,
                                                       parent_id=ZERO_UUID)]), t,
            "nodes.parent_id")
        # all or nothing: the valid node of the failed call is not there
        self.assertEqual(dict(self.call("GetTraversal", wn.GetTraversalRequest(id=other.id),
                                        t).nodes_by_status), counts(PENDING=1))

    def test_errors(self):
        t = self.new_tenant()
        tr = self.traversal(t, max_pages=1000000)
        A = wn.AddNodesRequest
        N = wn.CrawlNode
        self.assertCode(Code.INVALID_ARGUMENT, "AddNodes", A(traversal_id="x"), t,
                        "traversal_id")
        self.assertCode(Code.INVALID_ARGUMENT, "AddNodes", A(
            traversal_id=tr.id, nodes=[N(url="https://ex.org/%d" % i, depth=1)
                                       for i in range(1001)]), t, "nodes")
        self.assertCode(Code.INVALID_ARGUMENT, "AddNodes", A(
            traversal_id=tr.id, nodes=[N(url="https://ex.org/a", depth=1), N(depth=1)]), t,
            "nodes[1].url")
        self.assertCode(Code.INVALID_ARGUMENT, "AddNodes", A(
            traversal_id=tr.id, nodes=[N(url="https://ex.org/a")]), t, "nodes[0].depth")
        self.assertCode(Code.INVALID_ARGUMENT, "AddNodes", A(
            traversal_id=tr.id, nodes=[N(url="https://ex.org/a", depth=1, parent_id="p")]), t,
            "nodes[0].parent_id")
        self.assertCode(Code.INVALID_ARGUMENT, "AddNodes", A(
            traversal_id=tr.id, nodes=[N(url="https://ex.org/a", depth=1,
                                         priority=float("inf"))]), t, "nodes[0].priority")
        r = self.add(t, tr.id, [N(url="https://ex.org/%d" % i, depth=1) for i in range(1000)])
        self.assertEqual(r.added, 1000)

    def test_concurrent_adds_never_exceed_max_pages(self):
        t = self.new_tenant()
        tr = self.traversal(t, "https://ex.org/", max_pages=50)
        stubs = [self.web] + [self.extra_stub() for _ in range(3)]
        md = [("x-tenant-id", t)]
        # four callers, 60 URLs each, overlapping: 150 distinct
        futures = [stubs[k].AddNodes.future(wn.AddNodesRequest(traversal_id=tr.id, nodes=[
            wn.CrawlNode(url="https://ex.org/%d" % (k * 30 + i), depth=1) for i in range(60)]),
            metadata=md, timeout=60) for k in range(4)]
        results = [f.result() for f in futures]
        self.assertEqual(sum(r.added for r in results), 49)
        self.assertEqual(sum(r.added + r.duplicates + r.refused for r in results), 240)
        self.assertEqual(sql_value("SELECT count(*), count(DISTINCT url), max(t.node_count)"
                                   " FROM web_crawl_nodes n JOIN web_traversals t"
                                   " ON t.tenant_id = n.tenant_id AND t.id = n.traversal_id"
                                   " WHERE n.traversal_id = '%s'" % tr.id), "50|50|50")


class Claim(WebCase):
    def order_of(self, strategy, nodes):
        t = self.new_tenant()
        tr = self.traversal(t, "https://ex.org/", strategy=strategy, max_depth=5)
        self.claim(t, tr.id, 1)  # the root
        self.add(t, tr.id, nodes)
        return [n.url for n in self.claim(t, tr.id, 100)]

    NODES = [("d2a", 2, 0.5), ("d1a", 1, 0.1), ("d3", 3, 0.9), ("d1b", 1, 0.7), ("d2b", 2, 0.7)]

    def test_breadth_first(self):
        self.assertEqual(self.order_of(wn.STRATEGY_BREADTH_FIRST, self.NODES),
                         ["d1a", "d1b", "d2a", "d2b", "d3"])

    def test_depth_first(self):
        self.assertEqual(self.order_of(wn.STRATEGY_DEPTH_FIRST, self.NODES),
                         ["d3", "d2a", "d2b", "d1a", "d1b"])

    def test_best_first(self):
        self.assertEqual(self.order_of(wn.STRATEGY_BEST_FIRST, self.NODES),
                         ["d3", "d1b", "d2b", "d2a", "d1a"])

    def test_max_and_lease(self):
        t = self.new_tenant()
        tr = self.traversal(t, "https://ex.org/")
        self.add(t, tr.id, [("https://ex.org/%d" % i, 1) for i in range(5)])
        first = self.claim(t, tr.id, 2, lease_ms=30000)
        self.assertEqual(len(first), 2)
        for n in first:
            self.assertEqual(n.status, wn.NODE_STATUS_CLAIMED)
            self.assertTrue(n.HasField("claimed_until"))
        rest = self.claim(t, tr.id, 100)
        self.assertEqual(len(rest), 4)
        self.assertFalse({n.id for n in first} & {n.id for n in rest})
        self.assertEqual(self.claim(t, tr.id, 100), [])
        self.assertEqual(dict(self.call("GetTraversal", wn.GetTraversalRequest(id=tr.id),
                                        t).nodes_by_status), counts(CLAIMED=6))
        self.assertCode(Code.INVALID_ARGUMENT, "ClaimNodes", wn.ClaimNodesRequest(
            traversal_id=tr.id, max=0), t, "max")
        self.assertCode(Code.INVALID_ARGUMENT, "ClaimNodes", wn.ClaimNodesRequest(
            traversal_id=tr.id, max=101), t, "max")
        self.assertCode(Code.INVALID_ARGUMENT, "ClaimNodes", wn.ClaimNodesRequest(
            traversal_id=tr.id, max=1, lease_ms=-1), t, "lease_ms")

    def test_expired_leases_are_claimed_again(self):
        t = self.new_tenant()
        tr = self.traversal(t, "https://ex.org/")
        self.add(t, tr.id, [("https://ex.org/%d" % i, 1) for i in range(3)])
        first = self.claim(t, tr.id, 10, lease_ms=300)
        self.assertEqual(len(first), 4)
        self.assertEqual(self.claim(t, tr.id, 10), [])  # the leases hold
        time.sleep(0.35)
        again = self.claim(t, tr.id, 10, lease_ms=60000)
        self.assertEqual([n.id for n in again], [n.id for n in first])
        self.assertTrue(all(b.claimed_until.ToNanoseconds() > a.claimed_until.ToNanoseconds()
                            for a, b in zip(first, again)))
        self.assertEqual(sql_value("SELECT min(claims) || ',' || max(claims) FROM web_crawl_nodes"
                                   " WHERE traversal_id = '%s'" % tr.id), "2,2")

    def test_four_concurrent_claimers(self):
        t = self.new_tenant()
        tr = self.traversal(t, "https://ex.org/", max_pages=1000)
        self.add(t, tr.id, [("https://ex.org/%d" % i, 1 + i % 3) for i in range(399)])
        stubs = [self.web] + [self.extra_stub() for _ in range(3)]
        got = [[] for _ in stubs]
        calls = [0] * len(stubs)

        def crawler(k):
            while True:
                nodes = self.claim(t, tr.id, 7, lease_ms=60000, stub=stubs[k])
                calls[k] += 1
                if not nodes:
                    return
                got[k].extend(n.id for n in nodes)

        threads = [threading.Thread(target=crawler, args=(k,)) for k in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        every = [i for g in got for i in g]
        self.assertEqual(len(every), 400)
        self.assertEqual(len(set(every)), 400)  # no node handed out twice
        self.assertTrue(all(len(g) > 0 for g in got), [len(g) for g in got])
        self.assertEqual(sql_value("SELECT count(*) FILTER (WHERE status = 'CLAIMED' AND claims = 1)"
                                   " FROM web_crawl_nodes WHERE traversal_id = '%s'" % tr.id),
                         "400")

    def test_concurrent_claimers_with_expiring_leases(self):
        """Leases of 150 ms, four claimers for 1.5 s: whenever a node is
        handed out again, its previous lease had expired."""
        t = self.new_tenant()
        tr = self.traversal(t, "https://ex.org/", max_pages=1000)
        self.add(t, tr.id, [("https://ex.org/%d" % i, 1) for i in range(39)])
        stubs = [self.web] + [self.extra_stub() for _ in range(3)]
        grants = []  # (node id, claimed_until in ns, server time of the grant is before it)
        lock = threading.Lock()
        end = time.monotonic() + 1.5

        def crawler(k):
            while time.monotonic() < end:
                nodes = self.claim(t, tr.id, 5, lease_ms=150, stub=stubs[k])
                with lock:
                    grants.extend((n.id, n.claimed_until.ToNanoseconds()) for n in nodes)
                time.sleep(0.01)

        threads = [threading.Thread(target=crawler, args=(k,)) for k in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        by_node = {}
        for node, until in grants:
            by_node.setdefault(node, []).append(until)
        self.assertEqual(len(by_node), 40)
        regranted = 0
        for untils in by_node.values():
            untils.sort()
            for a, b in zip(untils, untils[1:]):
                # the next lease starts (b - 150 ms) no earlier than the last one ended (a)
                self.assertGreaterEqual(b - 150_000_000, a)
                regranted += 1
        self.assertGreater(regranted, 0)


class Update(WebCase):
    def test_update_node(self):
        t = self.new_tenant()
        c = self.store(t, "https://ex.org/", "root body")
        tr = self.traversal(t, "https://ex.org/")
        self.add(t, tr.id, [("https://ex.org/a", 1), ("https://ex.org/b", 1),
                            ("https://ex.org/c", 1)])
        root, a, b, cc = self.claim(t, tr.id, 10)
        U = wn.UpdateNodeRequest
        done = self.call("UpdateNode", U(node_id=root.id, status=wn.NODE_STATUS_DONE,
                                         content_id=c.id), t).node
        self.assertEqual((done.id, done.status, done.content_id), (root.id, wn.NODE_STATUS_DONE,
                                                                  c.id))
        self.assertFalse(done.HasField("claimed_until"))
        failed = self.call("UpdateNode", U(node_id=a.id, status=wn.NODE_STATUS_FAILED,
                                           error_message="timeout"), t).node
        self.assertEqual((failed.status, failed.error_message), (wn.NODE_STATUS_FAILED, "timeout"))
        self.call("UpdateNode", U(node_id=b.id, status=wn.NODE_STATUS_SKIPPED), t)
        # PENDING gives a node back before its lease ends
        back = self.call("UpdateNode", U(node_id=cc.id, status=wn.NODE_STATUS_PENDING), t).node
        self.assertEqual(back.status, wn.NODE_STATUS_PENDING)
        self.assertEqual([n.id for n in self.claim(t, tr.id, 10)], [cc.id])
        # an empty content_id keeps the node's
        again = self.call("UpdateNode", U(node_id=root.id, status=wn.NODE_STATUS_DONE), t).node
        self.assertEqual(again.content_id, c.id)
        g = self.call("GetTraversal", wn.GetTraversalRequest(id=tr.id), t)
        self.assertEqual(dict(g.nodes_by_status), counts(DONE=1, FAILED=1, SKIPPED=1, CLAIMED=1))

    def test_update_node_errors(self):
        t = self.new_tenant()
        tr = self.traversal(t, "https://ex.org/")
        root = self.claim(t, tr.id, 1)[0]
        U = wn.UpdateNodeRequest
        self.assertCode(Code.INVALID_ARGUMENT, "UpdateNode",
                        U(node_id=root.id, status=wn.NODE_STATUS_CLAIMED), t, "status")
        self.assertCode(Code.INVALID_ARGUMENT, "UpdateNode", U(node_id=root.id), t, "status")
        self.assertCode(Code.FAILED_PRECONDITION, "UpdateNode",
                        U(node_id=root.id, status=wn.NODE_STATUS_DONE, content_id=ZERO_UUID), t,
                        "content_id")
        self.assertCode(Code.INVALID_ARGUMENT, "UpdateNode",
                        U(node_id="nope", status=wn.NODE_STATUS_DONE), t, "node_id")
        # nothing changed: the node is still claimed
        self.assertEqual(sql_value("SELECT status FROM web_crawl_nodes WHERE id = '%s'"
                                   % root.id), "CLAIMED")

    def test_update_traversal_status(self):
        t = self.new_tenant()
        tr = self.traversal(t, "https://ex.org/")
        S = wn.UpdateTraversalStatusRequest
        for status in (wn.TRAVERSAL_STATUS_COMPLETED, wn.TRAVERSAL_STATUS_FAILED,
                       wn.TRAVERSAL_STATUS_CANCELLED):
            r = self.call("UpdateTraversalStatus", S(id=tr.id, status=status,
                                                     error_message="why"), t).traversal
            self.assertEqual((r.status, r.error_message), (status, "why"))
            self.assertTrue(r.HasField("completed_at"))
            self.assertEqual(dict(r.nodes_by_status), counts(PENDING=1))
        # a finished traversal hands out nothing and takes no nodes
        self.assertEqual(self.claim(t, tr.id, 10), [])
        r = self.add(t, tr.id, [("https://ex.org/late", 1)])
        self.assertEqual((r.added, r.refused), (0, 1))
        back = self.call("UpdateTraversalStatus", S(id=tr.id, status=wn.TRAVERSAL_STATUS_RUNNING),
                         t).traversal
        self.assertFalse(back.HasField("completed_at"))
        self.assertEqual(back.error_message, "")
        self.assertEqual(len(self.claim(t, tr.id, 10)), 1)
        self.assertCode(Code.INVALID_ARGUMENT, "UpdateTraversalStatus", S(id=tr.id), t, "status")


if __name__ == "__main__":
    unittest.main(verbosity=2)
