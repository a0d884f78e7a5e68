"""WebNavigator through arbiterctl, the real C client: content with links
round-trips as JSON, a rate limit denies, a traversal hands out its nodes,
and the exit codes follow the gRPC status (15 = NOT_FOUND)."""
import json
import os
import subprocess
import sys
import unittest
import uuid

from webcommon import harness, start_server, stop_server

ARBITERCTL = os.environ.get("ARBITERCTL")
NOT_FOUND, INVALID_ARGUMENT = 5, 3


def setUpModule():
    if not ARBITERCTL:
        print("SKIP: ARBITERCTL is not set")
        sys.exit(77)
    start_server()


def tearDownModule():
    stop_server()


class Ctl(unittest.TestCase):
    def run_ctl(self, *args):
        from webcommon import SERVER
        p = subprocess.run([ARBITERCTL, "--socket", SERVER.socket, "--compact"] + list(args),
                           capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout, p.stderr

    def ok(self, *args):
        rc, out, err = self.run_ctl(*args)
        self.assertEqual(rc, 0, "arbiterctl %s: %s" % (args, err))
        return json.loads(out)

    def web(self, method, *fields):
        return self.ok("--tenant", self.tenant, "call", "WebNavigator." + method, *fields)

    def setUp(self):
        self.tenant = "ctl-" + uuid.uuid4().hex[:12]
        self.ok("call", "Admin.CreateTenant", "id=" + self.tenant, "name=ctl")

    def test_content(self):
        c = self.web("StoreContent", "content.url=https://ctl.example/", "content.content=hi",
                     "content.links[0].url=https://ctl.example/a", "content.links[0].text=A",
                     "content.images[0].url=i.png", "ttl_ms=60000")
        self.assertEqual(c["content_hash"],
                         "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4")
        self.assertEqual(c["links"], [{"url": "https://ctl.example/a", "text": "A"}])
        got = self.web("GetContentByUrl", "url=https://ctl.example/")
        self.assertTrue(got["hit"])
        self.assertEqual(got["content"]["id"], c["id"])
        self.assertEqual(got["content"]["images"], [{"url": "i.png", "alt": ""}])
        self.assertFalse(self.web("GetContentByUrl", "url=https://ctl.example/none")["hit"])
        stats = self.web("GetContentCacheStats")
        self.assertEqual((stats["hits"], stats["misses"], stats["hit_rate"]), ("1", "1", 0.5))

    def test_rate_limit(self):
        self.assertTrue(self.web("AcquireRateLimit", "domain=ctl.example",
                                 "max_requests=1")["allowed"])
        denied = self.web("AcquireRateLimit", "domain=ctl.example", "max_requests=1")
        self.assertFalse(denied["allowed"])
        self.assertEqual(denied["rate_limit"]["requests_in_window"], 1)
        rc, out, err = self.run_ctl("--tenant", self.tenant, "call", "WebNavigator.GetRateLimit",
                                    "domain=unknown.example")
        self.assertEqual(rc, 10 + NOT_FOUND, err)
        self.assertTrue(err.startswith("ERROR: NOT_FOUND (5): "), err)
        rc, out, err = self.run_ctl("--tenant", self.tenant, "call",
                                    "WebNavigator.AcquireRateLimit", "domain=x")
        self.assertEqual(rc, 10 + INVALID_ARGUMENT, err)

    def test_traversal(self):
        tr = self.web("CreateTraversal", "start_url=https://ctl.example/", "strategy=STRATEGY_BEST_FIRST",
                      "max_depth=2")
        self.assertEqual((tr["strategy"], tr["status"]), ("STRATEGY_BEST_FIRST",
                                                          "TRAVERSAL_STATUS_RUNNING"))
        added = self.web("AddNodes", "traversal_id=" + tr["id"],
                         "nodes[0].url=https://ctl.example/low", "nodes[0].depth=1",
                         "nodes[0].priority=-1", "nodes[1].url=https://ctl.example/high",
                         "nodes[1].depth=1", "nodes[1].priority=5")
        self.assertEqual(added, {"added": 2, "duplicates": 0, "refused": 0})
        nodes = self.web("ClaimNodes", "traversal_id=" + tr["id"], "max=10")["nodes"]
        self.assertEqual([n["url"] for n in nodes], ["https://ctl.example/high",
                                                     "https://ctl.example/",
                                                     "https://ctl.example/low"])
        self.web("UpdateNode", "node_id=" + nodes[0]["id"], "status=NODE_STATUS_DONE")
        got = self.web("GetTraversal", "id=" + tr["id"])
        # arbiterctl prints a map as its entries (not yet as a JSON object)
        by_status = got["nodes_by_status"]
        if isinstance(by_status, list):
            by_status = {e["key"]: e["value"] for e in by_status}
        self.assertEqual(by_status, {"PENDING": "0", "CLAIMED": "2", "DONE": "1",
                                                  "FAILED": "0", "SKIPPED": "0"})

    def test_list(self):
        rc, out, _ = self.run_ctl("list", "WebNavigator")
        self.assertEqual(rc, 0)
        for m in ("StoreContent", "AcquireRateLimit", "ClaimNodes", "GetTraversal"):
            self.assertIn("  %s(arbiter.v1.%sRequest)" % (m, m), out)


if __name__ == "__main__":
    if not harness.database_url():
        print("SKIP: no ARBITER_TEST_DATABASE_URL")
        sys.exit(77)
    unittest.main(verbosity=2)
