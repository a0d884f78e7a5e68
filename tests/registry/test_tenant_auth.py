"""Tenants bound to peers (--tenant-auth=peer, issue 14): the matrix of
peers (uid, primary gid, supplementary gids) against tenants granted to a
uid, to a gid and to nobody; revocation that applies before RevokeTenant
answers; a grant made by another server that arrives with the refresh;
PERMISSION_DENIED before any database work; UNAVAILABLE while the grants
cannot be read; the Admin methods' validation; and the default mode's
start-up warning.

The peers are this test's client run through setpriv with made-up uids and
gids (needs root; otherwise SKIP)."""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import grpc

from regcommon import harness  # noqa: E402 (regcommon puts it on sys.path)
from regcommon import RegistryCase, admin_pb2, psql, start_server, stop_server
from arbiter.v1 import admin_pb2_grpc  # noqa: E402
from google.protobuf import wrappers_pb2

HERE = os.path.dirname(os.path.abspath(__file__))
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"
CLIENT_DIR = None

# The peers: (uid, primary gid, supplementary gids).
P_UID = (4001, 4001, ())         # granted tenant A by uid
P_GROUP = (4002, 4002, (4100,))  # in group 4100 (supplementary), granted tenant B
P_PRIMARY = (4003, 4100, ())     # group 4100 as its primary gid
P_NONE = (4004, 4004, (4200,))   # granted nothing
GROUP = 4100


def setUpModule():
    global CLIENT_DIR
    if os.geteuid() != 0:
        print("SKIP: switching to other uids needs root")
        sys.exit(77)
    # The peers must read the client and the stubs, but the checkout may sit
    # under a home they cannot enter: use world-readable copies.
    CLIENT_DIR = tempfile.mkdtemp(prefix="tenant-auth-")
    shutil.copy2(os.path.join(HERE, "tenant_peer_client.py"), CLIENT_DIR)
    shutil.copytree(os.environ["ARBITER_PY_STUBS"], os.path.join(CLIENT_DIR, "stubs"))
    for dirpath, _, files in os.walk(CLIENT_DIR):
        os.chmod(dirpath, 0o755)
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o644)
    # Local changes apply at once; a long refresh keeps the server from
    # reading the table while a test counts database work.
    start_server(socket_mode="0666",
                 args=["--tenant-auth", "peer", "--tenant-grants-refresh-ms", "600000"])


def tearDownModule():
    stop_server()
    shutil.rmtree(CLIENT_DIR, True)


def as_peer(peer, target, *tenants):
    """{tenant: (status name, details)} of RegisterAgent calls made by
    |peer| = (uid, gid, groups)."""
    uid, gid, groups = peer
    groups_arg = ["--groups", ",".join(map(str, groups))] if groups else ["--clear-groups"]
    p = subprocess.run([SETPRIV, "--reuid", str(uid), "--regid", str(gid), *groups_arg, "--",
                        "/usr/bin/python3", os.path.join(CLIENT_DIR, "tenant_peer_client.py"),
                        target, *tenants],
                       capture_output=True, text=True, timeout=60,
                       env={"ARBITER_PY_STUBS": os.path.join(CLIENT_DIR, "stubs"),
                            "PATH": "/usr/bin:/bin"})
    if p.returncode != 0:
        raise AssertionError("peer %s failed: %s" % (peer, p.stderr))
    out = {}
    for line in p.stdout.splitlines():
        tenant, code, *details = line.split(" ", 2)
        out[tenant] = (code, details[0] if details else "")
    return out


def u32(v):
    return wrappers_pb2.UInt32Value(value=v)


class TenantAuth(RegistryCase):
    def grant(self, tenant, uid=None, gid=None):
        return self.admin.GrantTenant(admin_pb2.GrantTenantRequest(
            tenant_id=tenant, uid=u32(uid) if uid is not None else None,
            gid=u32(gid) if gid is not None else None), timeout=10)

    def revoke(self, tenant, uid=None, gid=None):
        return self.admin.RevokeTenant(admin_pb2.RevokeTenantRequest(
            tenant_id=tenant, uid=u32(uid) if uid is not None else None,
            gid=u32(gid) if gid is not None else None), timeout=10).revoked

    def codes(self, peer, *tenants):
        from regcommon import SERVER
        return {t: c for t, (c, _) in as_peer(peer, SERVER.target(), *tenants).items()}

    def test_matrix_of_peers_and_tenants(self):
        a, b, c = self.new_tenant("a"), self.new_tenant("b"), self.new_tenant("c")
        self.grant(a, uid=P_UID[0])
        self.grant(b, gid=GROUP)
        ok, no = "OK", "PERMISSION_DENIED"
        want = {
            P_UID: {a: ok, b: no, c: no},
            P_GROUP: {a: no, b: ok, c: no},
            P_PRIMARY: {a: no, b: ok, c: no},
            P_NONE: {a: no, b: no, c: no},
        }
        for peer, expected in want.items():
            self.assertEqual(self.codes(peer, a, b, c), expected, "peer %s" % (peer,))
        # the server's own uid (root here) may act for any tenant
        for t in (a, b, c):
            self.register(t)
        # what the denied peers tried left nothing behind
        out = psql("SELECT tenant_id, name FROM agents WHERE tenant_id IN ('%s', '%s', '%s') "
                   "AND name LIKE 'uid-%%' ORDER BY 1, 2" % (a, b, c))[1]
        self.assertEqual(sorted(tuple(line.split("|")) for line in out.splitlines()),
                         sorted([(a, "uid-4001"), (b, "uid-4002"), (b, "uid-4003")]))

    def test_denied_message_names_uid_and_tenant(self):
        t = self.new_tenant()
        from regcommon import SERVER
        code, details = as_peer(P_NONE, SERVER.target(), t)[t]
        self.assertEqual(code, "PERMISSION_DENIED")
        self.assertIn("uid 4004", details)
        self.assertIn(t, details)
        self.assertIn("GrantTenant", details)

    def test_revoke_applies_before_it_answers(self):
        t = self.new_tenant()
        self.grant(t, uid=P_UID[0])
        self.grant(t, gid=GROUP)
        self.assertEqual(self.codes(P_UID, t), {t: "OK"})
        self.assertTrue(self.revoke(t, uid=P_UID[0]))
        self.assertEqual(self.codes(P_UID, t), {t: "PERMISSION_DENIED"})
        self.assertEqual(self.codes(P_GROUP, t), {t: "OK"})
        self.assertTrue(self.revoke(t, gid=GROUP))
        self.assertEqual(self.codes(P_GROUP, t), {t: "PERMISSION_DENIED"})
        self.assertFalse(self.revoke(t, gid=GROUP), "a second revoke finds nothing")

    def test_denied_calls_do_no_database_work(self):
        t = self.new_tenant()
        before = self.admin.GetPoolStats(admin_pb2.GetPoolStatsRequest()).acquired
        from regcommon import SERVER
        got = as_peer(P_NONE, SERVER.target(), *([t] * 20))
        self.assertEqual(set(c for c, _ in got.values()), {"PERMISSION_DENIED"})
        after = self.admin.GetPoolStats(admin_pb2.GetPoolStatsRequest()).acquired
        self.assertEqual(after, before, "denied calls took pool connections")

    def test_grant_validation(self):
        t = self.new_tenant()
        g = self.grant(t, uid=4001)
        self.assertEqual((g.tenant_id, g.uid.value, g.HasField("gid")), (t, 4001, False))
        again = self.grant(t, uid=4001)
        self.assertEqual(again.created_at, g.created_at, "granting twice answers the grant")
        cases = [
            (dict(tenant=t), grpc.StatusCode.INVALID_ARGUMENT, "exactly one of uid and gid"),
            (dict(tenant=t, uid=1, gid=2), grpc.StatusCode.INVALID_ARGUMENT, "exactly one"),
            (dict(tenant=t, uid=4294967295), grpc.StatusCode.INVALID_ARGUMENT, "uid"),
            (dict(tenant="no-such-tenant", uid=1), grpc.StatusCode.FAILED_PRECONDITION,
             "no such tenant"),
            (dict(tenant="bad tenant!", uid=1), grpc.StatusCode.INVALID_ARGUMENT, "tenant_id"),
        ]
        for kw, code, text in cases:
            with self.assertRaises(grpc.RpcError) as cm:
                self.grant(kw["tenant"], kw.get("uid"), kw.get("gid"))
            self.assertEqual(cm.exception.code(), code, kw)
            self.assertIn(text, cm.exception.details(), kw)
        with self.assertRaises(grpc.RpcError) as cm:
            self.revoke(t)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("exactly one of uid and gid", cm.exception.details())

    def test_list_grants_by_tenant_and_in_pages(self):
        t, other = self.new_tenant(), self.new_tenant()
        for uid in (11, 12, 13):
            self.grant(t, uid=uid)
        self.grant(t, gid=21)
        self.grant(other, uid=11)
        seen, token = [], ""
        while True:
            page = self.admin.ListTenantGrants(admin_pb2.ListTenantGrantsRequest(
                tenant_id=t, page_size=3, page_token=token), timeout=10)
            self.assertLessEqual(len(page.grants), 3)
            seen += [(g.tenant_id, g.uid.value if g.HasField("uid") else None,
                      g.gid.value if g.HasField("gid") else None) for g in page.grants]
            token = page.next_page_token
            if not token:
                break
        self.assertEqual(seen, [(t, 11, None), (t, 12, None), (t, 13, None), (t, None, 21)])
        everyone = self.admin.ListTenantGrants(admin_pb2.ListTenantGrantsRequest(
            page_size=1000), timeout=10)
        self.assertIn(other, {g.tenant_id for g in everyone.grants})


class OtherServers(unittest.TestCase):
    def test_grant_made_elsewhere_arrives_with_the_refresh(self):
        with harness.ArbiterServer(["--tenant-auth", "peer", "--tenant-grants-refresh-ms", "300"],
                                   socket_mode="0666", test_service=False) as s:
            admin = admin_pb2_grpc.AdminStub(s.channel())
            admin.CreateTenant(admin_pb2.CreateTenantRequest(id="elsewhere", name="e"))
            time.sleep(0.5)  # the first read is done
            self.assertEqual(as_peer(P_NONE, s.target(), "elsewhere")["elsewhere"][0],
                             "PERMISSION_DENIED")
            psql("INSERT INTO tenant_grants (tenant_id, uid) VALUES ('elsewhere', %d)"
                 % P_NONE[0])
            time.sleep(1.0)
            self.assertEqual(as_peer(P_NONE, s.target(), "elsewhere")["elsewhere"][0], "OK")
            psql("DELETE FROM tenant_grants WHERE tenant_id = 'elsewhere'")
            time.sleep(1.0)
            self.assertEqual(as_peer(P_NONE, s.target(), "elsewhere")["elsewhere"][0],
                             "PERMISSION_DENIED")

    def test_grants_not_readable_yet_is_unavailable(self):
        # A database that does not answer: nothing was ever read.
        with harness.ArbiterServer(["--tenant-auth", "peer"], socket_mode="0666",
                                   database="host=127.0.0.1 port=1 dbname=x connect_timeout=1",
                                   test_service=False) as s:
            code, details = as_peer(P_UID, s.target(), "any")["any"]
            self.assertEqual(code, "UNAVAILABLE")
            self.assertIn("tenant grants are not loaded", details)

    def test_default_mode_warns_at_start(self):
        with tempfile.TemporaryFile("w+") as err:
            with harness.ArbiterServer(test_service=False, stderr=err):
                time.sleep(0.3)
            err.seek(0)
            log = err.read()
        self.assertIn("tenant auth: none", log)
        self.assertIn("--tenant-auth=peer", log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
