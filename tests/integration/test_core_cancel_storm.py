"""Calls cancelled right after they start must not cost the other calls on
the connection. grpc-core clients (grpcio here) may send RST_STREAM for a
stream whose HEADERS never left (grpc/grpc#19655); RFC 9113 calls that a
connection error, and nghttp2 alone would answer GOAWAY(PROTOCOL_ERROR), so
every other call on the channel failed UNAVAILABLE "Broken pipe". The
server drops such frames before nghttp2 sees them (src/h2/filter.h)."""
import os
import random
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import grpc  # noqa: E402
from h2raw import RawClient, grpc_frame  # noqa: E402
from arbiter.v1 import testing_pb2, testing_pb2_grpc  # noqa: E402

CHECK = "/grpc.health.v1.Health/Check"


def raw_frame(ftype, stream_id, payload, flags=0):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream_id) + payload


class CancelStorm(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.ArbiterServer(database=False).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def test_grpcio_cancel_and_deadline_storm_keeps_the_connection(self):
        stub = testing_pb2_grpc.TestingStub(self.srv.channel())
        rnd = random.Random(7)
        futures = []
        for i in range(300):
            if i % 2:
                f = stub.Echo.future(testing_pb2.EchoRequest(text="x"),
                                     timeout=rnd.choice([0.01, 0.03, 0.08, 5]))
            else:
                f = stub.NeverAnswer.future(testing_pb2.Empty(),
                                            timeout=rnd.choice([0.01, 0.03, 0.08]))
            if i % 7 == 0:
                f.cancel()
            futures.append(f)
        outcomes = {}
        for f in futures:
            if f.cancelled():
                key = "CANCELLED"
            else:
                try:
                    f.result()
                    key = "OK"
                except grpc.RpcError as e:
                    key = e.code().name
            outcomes[key] = outcomes.get(key, 0) + 1
        self.assertNotIn("UNAVAILABLE", outcomes, outcomes)
        self.assertEqual(set(outcomes) - {"OK", "CANCELLED", "DEADLINE_EXCEEDED"}, set(),
                         outcomes)
        self.assertGreater(outcomes.get("OK", 0), 0, outcomes)
        # The same channel still serves.
        r = stub.Echo(testing_pb2.EchoRequest(text="after"), timeout=5)
        self.assertEqual(r.text, "after")

    def test_rst_stream_and_window_update_on_idle_streams_are_ignored(self):
        c = RawClient(self.srv.socket)
        try:
            self.assertEqual(c.call(CHECK, grpc_frame()).status(), 0)
            # Streams 101 and 103 were never opened.
            c.sock.sendall(raw_frame(0x3, 101, struct.pack(">I", 8)) +
                           raw_frame(0x8, 103, struct.pack(">I", 1000)))
            r = c.call(CHECK, grpc_frame())
            self.assertIsNone(c.goaway)
            self.assertEqual(r.status(), 0)
        finally:
            c.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
