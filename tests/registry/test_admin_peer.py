"""Admin from another uid is PERMISSION_DENIED while the same client's
AgentRegistry calls work: the server listens with --socket-mode 0666 and
the client runs as the unprivileged user nobody (needs root to switch
users; otherwise SKIP)."""
import os
import shutil
import subprocess
import tempfile
import sys
import unittest

from regcommon import harness  # noqa: E402 (regcommon puts it on sys.path)
from regcommon import RegistryCase, admin_pb2, ar, start_server, stop_server

HERE = os.path.dirname(os.path.abspath(__file__))
RUNUSER = shutil.which("runuser") or "/usr/sbin/runuser"


def setUpModule():
    if os.geteuid() != 0:
        print("SKIP: switching to another uid needs root")
        sys.exit(77)
    start_server(socket_mode="0666")


def tearDownModule():
    stop_server()


class PeerUid(RegistryCase):
    def test_other_uid(self):
        t = self.new_tenant()
        # nobody must read the client and the stubs, but the checkout may sit
        # under a home it cannot enter (CI clones anywhere): use copies in a
        # world-readable temp dir.
        tmp = tempfile.mkdtemp(prefix="admin-peer-")
        self.addCleanup(shutil.rmtree, tmp, True)
        os.chmod(tmp, 0o755)
        client = os.path.join(tmp, "peer_client.py")
        shutil.copy2(os.path.join(HERE, "peer_client.py"), client)
        stubs = os.path.join(tmp, "stubs")
        shutil.copytree(os.environ["ARBITER_PY_STUBS"], stubs)
        for dirpath, _, files in os.walk(tmp):
            os.chmod(dirpath, 0o755)
            for f in files:
                os.chmod(os.path.join(dirpath, f), 0o644)
        from regcommon import SERVER
        p = subprocess.run([RUNUSER, "-u", "nobody", "--", "/usr/bin/python3", client,
                            SERVER.target(), t],
                           capture_output=True, text=True, timeout=60,
                           env={"ARBITER_PY_STUBS": stubs, "PATH": "/usr/bin:/bin"})
        self.assertEqual(p.returncode, 0, p.stderr)
        got = {line.split()[0]: line.split()[1] for line in p.stdout.splitlines()}
        for m in ("GetServerInfo", "GetPoolStats", "CreateTenant", "GetTenant", "ListTenants",
                  "GrantTenant", "RevokeTenant", "ListTenantGrants"):
            self.assertEqual(got.get(m), "PERMISSION_DENIED", p.stdout)
        self.assertEqual(got.get("RegisterAgent"), "OK", p.stdout)
        self.assertEqual(got.get("ListAgents"), "OK", p.stdout)
        # the tenant the peer tried to create does not exist
        with self.assertRaises(Exception):
            self.admin.GetTenant(admin_pb2.GetTenantRequest(id="peer-made"))
        names = [a.name for a in self.call("ListAgents", ar.ListAgentsRequest(), t).agents]
        self.assertEqual(names, ["from-peer"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
