"""500 streams opened and reset at once, and a client that disconnects with
calls in flight: the server stays healthy and, run under valgrind, exits 0
after SIGTERM with no definite leak and no memory error (valgrind's
--error-exitcode would turn either into a non-zero exit)."""
import os
import shutil
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from h2raw import RawClient, grpc_frame, grpc_headers  # noqa: E402
from arbiter.v1 import testing_pb2  # noqa: E402

# ARBITER_TEST_VALGRIND=none runs the same test without valgrind (debugging).
VALGRIND = os.environ.get("ARBITER_TEST_VALGRIND") or shutil.which("valgrind")
WRAPPER = [VALGRIND, "-q", "--leak-check=full", "--errors-for-leak-kinds=definite",
           "--error-exitcode=99"] if VALGRIND and VALGRIND != "none" else []

CHECK = "/grpc.health.v1.Health/Check"


def request_kinds():
    """Every state a call can be in when its stream is reset."""
    stream = grpc_frame(testing_pb2.StreamRequest(count=100000, interval_ms=20).SerializeToString())
    return [
        # dispatched, cancel hook set, no timer
        (grpc_headers("/arbiter.v1.Testing/NeverAnswer"), grpc_frame(), True),
        # dispatched with a deadline timer
        (grpc_headers("/arbiter.v1.Testing/NeverAnswer", extra=[("grpc-timeout", "10S")]),
         grpc_frame(), True),
        # half a message buffered in the decoder
        (grpc_headers("/arbiter.v1.Testing/Echo"), grpc_frame(b"\x0a" * 10, length=5000), False),
        # streaming with a handler timer and queued output
        (grpc_headers("/arbiter.v1.Testing/StreamN"), stream, True),
        # metadata in the arena, headers only
        (grpc_headers("/arbiter.v1.Testing/Echo", extra=[("x-tenant-id", "t"),
                                                        ("x-test-bin", "AAEC")]), b"", False),
    ]


class Leak(unittest.TestCase):
    def test_500_resets_and_disconnects_leave_no_leak(self):
        srv = harness.ArbiterServer(database=False, wrapper=WRAPPER,
                                    args=["--max-concurrent-streams", "1000",
                                          "--shutdown-timeout-ms", "2000"])
        srv.start(wait=False)
        try:
            srv.wait_ready(timeout=60)
            self.exercise(srv)
        finally:
            code = srv.stop(timeout=60)
            srv.__exit__(None, None, None)
        self.assertEqual(code, 0, "arbiterd under valgrind exited %r (99 = leak/error)" % code)

    def exercise(self, srv):
        c = RawClient(srv.socket, timeout=30)
        c.pump(1.0)  # the server's SETTINGS (max concurrent streams)
        kinds = request_kinds()
        sids = []
        for i in range(500):
            headers, body, end = kinds[i % len(kinds)]
            sid = c.conn.get_next_available_stream_id()
            c.conn.send_headers(sid, headers, end_stream=end and not body)
            if body:
                c.conn.send_data(sid, body, end_stream=end)
            sids.append(sid)
        c.flush()
        time.sleep(0.5)  # let the server dispatch them (valgrind is slow)
        c.pump(0.2)
        for sid in sids:
            if sid in c.conn.streams:
                c.conn.reset_stream(sid, error_code=8)
        c.flush()  # all 500 RST_STREAM frames in one write
        self.assertIsNone(c.goaway)
        r = c.call(CHECK, grpc_frame(), timeout=30)
        self.assertEqual(r.status(), 0)

        # A client that vanishes with calls in flight.
        d = RawClient(srv.socket, timeout=30)
        d.pump(1.0)
        for i in range(100):
            headers, body, end = kinds[i % len(kinds)]
            d.request(headers, body, end_stream=end)
        time.sleep(0.3)
        d.sock.shutdown(socket.SHUT_RDWR)
        d.close()

        r = c.call(CHECK, grpc_frame(), timeout=30)
        self.assertEqual(r.status(), 0)
        c2 = RawClient(srv.socket, timeout=30)
        self.assertEqual(c2.call(CHECK, grpc_frame(), timeout=30).status(), 0)
        c2.close()
        c.close()


if __name__ == "__main__":
    if not VALGRIND:
        print("SKIP: valgrind not installed")
        sys.exit(77)
    unittest.main(verbosity=2)
