"""clients/python/example.py, run as a user would, against the real arbiterd
and PostgreSQL: it must register, read back, list and unregister an agent
and exit 0; and fail with a status line and exit 1 when the server is gone.

Environment: ARBITERD, ARBITER_PY_STUBS, ARBITER_TEST_DATABASE_URL (else
exit 77 = SKIP).
"""
import os
import subprocess
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))

import harness  # noqa: E402

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python",
                       "example.py")


def run_example(socket, tenant):
    env = dict(os.environ, PYTHONPATH=os.environ["ARBITER_PY_STUBS"])
    return subprocess.run(["/usr/bin/python3", EXAMPLE, "--socket", socket, "--tenant", tenant],
                          capture_output=True, text=True, env=env, timeout=60)


def main():
    if not os.environ.get("ARBITERD"):
        print("SKIP: ARBITERD is not set")
        return 77
    harness.skip_without_database()
    from arbiter.v1 import admin_pb2, admin_pb2_grpc

    tenant = "py-" + uuid.uuid4().hex[:12]
    with harness.ArbiterServer() as srv:
        admin = admin_pb2_grpc.AdminStub(srv.channel())
        admin.CreateTenant(admin_pb2.CreateTenantRequest(id=tenant, name="py example"),
                           timeout=10)
        p = run_example(srv.socket, tenant)
        print(p.stdout, p.stderr)
        assert p.returncode == 0, p.returncode
        lines = p.stdout.splitlines()
        assert lines[0] == "health: SERVING", lines
        assert lines[1].startswith("registered: ") and "python-example-" in lines[1], lines
        assert lines[2].endswith("languages c,python"), lines
        assert lines[3].startswith("list: python-example-"), lines
        assert lines[4] == "unregistered: True", lines
        socket = srv.socket
    p = run_example(socket, tenant)
    assert p.returncode == 1, p.returncode
    assert p.stderr.startswith("ERROR: UNAVAILABLE (14): "), p.stderr
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
