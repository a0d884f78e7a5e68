"""arbiterctl, the real binary, against the real arbiterd and PostgreSQL:
the register -> get -> list -> unregister flow with its JSON output, and the
exit codes scripts rely on (0, 1 usage, 2 connection, 10 + gRPC status).

Environment: ARBITERD, ARBITERCTL (else exit 77 = SKIP),
ARBITER_TEST_DATABASE_URL (the registry tests skip without it).
"""
import json
import os
import shutil
import subprocess
import tempfile
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))

import harness  # noqa: E402

ARBITERCTL = os.environ.get("ARBITERCTL")

EXIT_USAGE, EXIT_CONNECT = 1, 2
OK, INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND, ALREADY_EXISTS = 0, 3, 4, 5, 6
PERMISSION_DENIED = 7


def status_exit(code):
    return 10 + code


def documents(text):
    """Every JSON document in |text| (pretty or one per line)."""
    dec, out, i = json.JSONDecoder(), [], 0
    text = text.strip()
    while i < len(text):
        obj, end = dec.raw_decode(text, i)
        out.append(obj)
        i = end
        while i < len(text) and text[i].isspace():
            i += 1
    return out


class Ctl:
    def __init__(self, socket):
        self.socket = socket

    def run(self, *args, socket=True, env=None, timeout=30):
        argv = [ARBITERCTL] + (["--socket", self.socket] if socket else []) + list(args)
        e = dict(os.environ)
        e.pop("ARBITER_SOCKET", None)
        e.update(env or {})
        p = subprocess.run(argv, capture_output=True, text=True, env=e, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def ok(self, *args, **kw):
        rc, out, err = self.run(*args, **kw)
        if rc != 0:
            raise AssertionError("arbiterctl %s: exit %d, stderr %r" % (args, rc, err))
        docs = documents(out)
        return docs[0] if len(docs) == 1 else docs


class ArbiterctlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.ArbiterServer().start()
        cls.ctl = Ctl(cls.server.socket)
        # Health follows the pool: wait until it is SERVING.
        for _ in range(100):
            rc, out, _ = cls.ctl.run("call", "grpc.health.v1.Health.Check")
            if rc == 0 and documents(out)[0].get("status") == "SERVING":
                break
            time.sleep(0.05)

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        assert rc == 0, "arbiterd exited %r" % rc

    def need_database(self):
        if not harness.database_url():
            self.skipTest("no ARBITER_TEST_DATABASE_URL")

    def new_tenant(self):
        tid = "ctl-" + uuid.uuid4().hex[:12]
        t = self.ctl.ok("call", "Admin.CreateTenant", "id=" + tid, "name=ctl test")
        self.assertEqual(t["id"], tid)
        self.assertRegex(t["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        return tid

    def test_health(self):
        for name in ("grpc.health.v1.Health.Check", "Health.Check",
                     "/grpc.health.v1.Health/Check"):
            self.assertEqual(self.ctl.ok("call", name), {"status": "SERVING"})
        rc, out, err = self.ctl.run("call", "Health.Check", "service=no.such.Service")
        self.assertEqual(rc, status_exit(NOT_FOUND))
        self.assertTrue(err.startswith("ERROR: NOT_FOUND (5): "), err)
        self.assertEqual(out, "")

    def test_default_socket_from_environment(self):
        self.assertEqual(self.ctl.ok("call", "Health.Check", socket=False,
                                     env={"ARBITER_SOCKET": self.server.socket}),
                         {"status": "SERVING"})

    def test_register_get_list_unregister(self):
        self.need_database()
        tenant = self.new_tenant()
        agent = self.ctl.ok("call", "AgentRegistry.RegisterAgent", "agent.name=a1",
                            "agent.model_family=claude",
                            "agent.capabilities.languages=c",
                            "agent.capabilities.languages=python",
                            "agent.capabilities.task_types=code", "--tenant", tenant)
        self.assertRegex(agent["id"], r"^[0-9a-f-]{36}$")
        self.assertEqual(agent["name"], "a1")
        self.assertEqual(agent["capabilities"]["languages"], ["c", "python"])
        self.assertEqual(agent["load"]["capacity"], 10)
        self.assertEqual(agent["performance"]["task_count"], "0")  # int64 as a string
        self.assertAlmostEqual(agent["performance"]["success_rate"], 0.8)
        self.assertRegex(agent["registered_at"], r"^\d{4}-\d\d-\d\dT[\d:.]+Z$")

        got = self.ctl.ok("call", "arbiter.v1.AgentRegistry.GetAgent", "id=" + agent["id"],
                          "--tenant", tenant)
        self.assertEqual(got["id"], agent["id"])
        self.assertEqual(got["model_family"], "claude")

        listed = self.ctl.ok("--compact", "--tenant", tenant, "call",
                             "AgentRegistry.ListAgents", "page_size=10")
        self.assertEqual([a["id"] for a in listed["agents"]], [agent["id"]])

        found = self.ctl.ok("call", "AgentRegistry.QueryAgentsByCapability",
                            "languages=python", "min_success_rate=0.5", "--tenant", tenant)
        self.assertEqual([a["id"] for a in found["agents"]], [agent["id"]])

        removed = self.ctl.ok("call", "AgentRegistry.UnregisterAgent", "id=" + agent["id"],
                              "--tenant", tenant)
        self.assertEqual(removed, {"removed": True})

        rc, out, err = self.ctl.run("call", "AgentRegistry.GetAgent", "id=" + agent["id"],
                                    "--tenant", tenant)
        self.assertEqual(rc, status_exit(NOT_FOUND), err)
        self.assertTrue(err.startswith("ERROR: NOT_FOUND (5): "), err)
        self.assertEqual(out, "")

    def test_status_exit_codes(self):
        self.need_database()
        tenant = self.new_tenant()
        self.ctl.ok("call", "AgentRegistry.RegisterAgent", "agent.name=dup", "--tenant", tenant)
        rc, _, err = self.ctl.run("call", "AgentRegistry.RegisterAgent", "agent.name=dup",
                                  "--tenant", tenant)
        self.assertEqual(rc, status_exit(ALREADY_EXISTS), err)
        self.assertIn("ERROR: ALREADY_EXISTS (6)", err)
        rc, _, err = self.ctl.run("call", "AgentRegistry.ListAgents")  # no tenant
        self.assertEqual(rc, status_exit(INVALID_ARGUMENT), err)
        self.assertIn("ERROR: INVALID_ARGUMENT (3)", err)

    def test_usage_errors(self):
        cases = [
            ("call", "AgentRegistry.RegisterAgent", "agent.nmae=x"),   # unknown field
            ("call", "AgentRegistry.UpdateLoad", "active_tasks_delta=many"),  # bad value
            ("call", "AgentRegistry.UpdateLoad", "active_tasks_delta=99999999999"),
            ("call", "AgentRegistry.NoSuchMethod"),
            ("call", "NoSuchService.Check"),
            ("call", "AgentRegistry.GetAgent", "id"),                 # not field=value
            ("--no-such-option", "list"),
            ("frobnicate",),
        ]
        for args in cases:
            rc, out, err = self.ctl.run(*args)
            self.assertEqual(rc, EXIT_USAGE, "%s: %d %s" % (args, rc, err))
            self.assertEqual(out, "")
            self.assertNotEqual(err, "")
        rc, _, err = self.ctl.run("call", "AgentRegistry.RegisterAgent", "agent.nmae=x")
        self.assertIn("unknown field 'nmae'", err)

    def test_connection_failure(self):
        rc, out, err = self.ctl.run("--socket", self.server.tmpdir + "/nobody.sock", "call",
                                    "Health.Check", socket=False)
        self.assertEqual(rc, EXIT_CONNECT, err)
        self.assertIn("UNAVAILABLE", err)

    def test_deadline(self):
        start = time.monotonic()
        rc, _, err = self.ctl.run("--timeout-ms", "100", "call", "Testing.NeverAnswer")
        self.assertEqual(rc, status_exit(DEADLINE_EXCEEDED), err)
        self.assertLess(time.monotonic() - start, 5)

    def test_server_streaming(self):
        rc, out, err = self.ctl.run("--compact", "--timeout-ms", "5000", "call",
                                    "Testing.StreamN", "count=3", "interval_ms=10")
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(out.splitlines()), 3)
        # Watch streams until its deadline: at least the current status.
        rc, out, err = self.ctl.run("--compact", "--timeout-ms", "300", "call",
                                    "Health.Watch")
        self.assertEqual(rc, status_exit(DEADLINE_EXCEEDED), err)
        self.assertEqual(json.loads(out.splitlines()[0]), {"status": "SERVING"})

    def test_echo_metadata_and_bytes(self):
        doc = self.ctl.ok("call", "Testing.Echo", "text=héllo", "payload=AAEC/w==",
                          "--tenant", "acme", "--user", "u1", "--session", "s1",
                          "--header", "x-test-bin=raw")
        self.assertEqual(doc["text"], "héllo")
        self.assertEqual(doc["payload"], "AAEC/w==")
        self.assertEqual((doc["tenant_id"], doc["user_id"], doc["session_id"]),
                         ("acme", "u1", "s1"))
        self.assertEqual(doc["bin_value"], "cmF3")  # base64 of b"raw"

    def test_admin_from_another_uid(self):
        """As nobody: Admin is PERMISSION_DENIED (exit 17), Health still works."""
        if os.geteuid() != 0:
            self.skipTest("needs root to run arbiterctl as nobody")
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        # The checkout may sit under a home that nobody cannot enter (CI
        # clones anywhere): run a copy from a world-readable temp dir.
        tmp = tempfile.mkdtemp(prefix="arbiterctl-peer-")
        self.addCleanup(shutil.rmtree, tmp, True)
        os.chmod(tmp, 0o755)
        ctl = os.path.join(tmp, "arbiterctl")
        shutil.copy2(ARBITERCTL, ctl)
        with harness.ArbiterServer(socket_mode="0666") as srv:
            def as_nobody(*args):
                return subprocess.run([runuser, "-u", "nobody", "--", ctl, "--socket",
                                       srv.socket] + list(args),
                                      capture_output=True, text=True, timeout=30)
            p = as_nobody("call", "Admin.ListTenants")
            self.assertEqual(p.returncode, status_exit(PERMISSION_DENIED), p.stderr)
            self.assertTrue(p.stderr.startswith("ERROR: PERMISSION_DENIED (7): "), p.stderr)
            p = as_nobody("call", "Health.Check")
            self.assertEqual(p.returncode, 0, p.stderr)

    def test_list(self):
        rc, out, _ = self.ctl.run("list")
        self.assertEqual(rc, 0)
        for name in ("grpc.health.v1.Health", "arbiter.v1.AgentRegistry", "arbiter.v1.Admin",
                     "  RegisterAgent(arbiter.v1.RegisterAgentRequest)"):
            self.assertIn(name, out)
        self.assertNotIn("Testing", out)
        rc, out, _ = self.ctl.run("list", "AgentRegistry.RegisterAgent")
        self.assertEqual(rc, 0)
        self.assertIn("agent.capabilities.languages", out)


if __name__ == "__main__":
    if not os.environ.get("ARBITERD") or not ARBITERCTL:
        print("SKIP: ARBITERD or ARBITERCTL is not set")
        sys.exit(77)
    unittest.main(verbosity=2)
