"""What one peer can pin, and for how long (issue 14 §1).

The attack that motivated it: a peer advertises SETTINGS_INITIAL_WINDOW_SIZE
0, then sends 48 Health/Check calls on one connection, each padded with
600 KB of unknown fields (field 15, varint 0, repeated). Every answer then
waited for ever on the zero window, pinning its arena, and protobuf-c keeps
about 70 bytes per 2-byte unknown field: arbiterd grew by 1,319 MiB. Now a
request with more than 1,024 unknown fields is RESOURCE_EXHAUSTED before it
is decoded, arenas and queued answers are charged to per-connection and
global budgets, an answer the peer does not take is reset after
--write-timeout-ms, and a connection without calls is closed after
--idle-connection-timeout-ms. Other clients are served all along."""
import os
import socket
import time
import unittest

import grpc
import h2.settings

import harness
import h2raw
from arbiter.v1 import agent_registry_pb2 as ar, testing_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

PAD = b"\x78\x00"  # field 15, varint 0


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def health_ok(server):
    stub = health_pb2_grpc.HealthStub(server.channel())
    return stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status


def zero_window_client(server):
    return h2raw.RawClient(server.socket, settings={
        h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})


class Attack(unittest.TestCase):
    def test_padded_calls_on_a_zero_window_pin_almost_nothing(self):
        with harness.ArbiterServer(database=False) as s:
            health_ok(s)
            before = rss_kib(s.proc.pid)
            raw = zero_window_client(s)
            try:
                body = h2raw.grpc_frame(PAD * 300000)  # 600 KB
                sids = [raw.request(h2raw.grpc_headers("/grpc.health.v1.Health/Check"), body)
                        for _ in range(48)]
                codes = [raw.wait(sid, timeout=20).status() for sid in sids]
                self.assertEqual(codes, [8] * 48, "RESOURCE_EXHAUSTED, before decoding")
                grown = rss_kib(s.proc.pid) - before
                self.assertLess(grown, 64 * 1024, "RSS grew by %d KiB" % grown)
                self.assertEqual(health_ok(s), health_pb2.HealthCheckResponse.SERVING)
            finally:
                raw.close()

    def test_padding_over_the_arena_is_resource_exhausted_not_internal(self):
        """1.8 MB of padding overflowed the arena and was answered INTERNAL;
        a request too large to decode is RESOURCE_EXHAUSTED (and so is one
        that decodes into far more than twice its size)."""
        with harness.ArbiterServer(database=False) as s:
            raw = h2raw.RawClient(s.socket)
            raw.wait_settings()
            try:
                r = raw.call("/grpc.health.v1.Health/Check", h2raw.grpc_frame(PAD * 900000),
                             timeout=20)
                self.assertEqual(r.status(), 8, r.field("grpc-message"))
                many = ar.RegisterAgentRequest(agent=ar.Agent(
                    name="x", capabilities=ar.Capabilities(languages=["l"] * 1000000)))
                r = raw.call("/arbiter.v1.AgentRegistry/RegisterAgent",
                             h2raw.grpc_frame(many.SerializeToString()), timeout=20,
                             extra=[("x-tenant-id", "t")])
                self.assertEqual(r.status(), 8, r.field("grpc-message"))
                self.assertIn("too large to decode", r.field("grpc-message"))
            finally:
                raw.close()

    def test_answers_nobody_takes_are_reset_and_the_budget_holds(self):
        """Big echoes to a zero-window peer: the connection's budget turns
        away what it cannot hold, the answers pinned are reset after the
        write timeout, and the memory comes back."""
        args = ["--max-connection-memory", str(16 << 20), "--write-timeout-ms", "800"]
        with harness.ArbiterServer(args, database=False) as s:
            health_ok(s)
            before = rss_kib(s.proc.pid)
            raw = zero_window_client(s)
            try:
                body = h2raw.grpc_frame(testing_pb2.EchoRequest(
                    payload=b"p" * (1 << 20)).SerializeToString())
                sids = [raw.request(h2raw.grpc_headers("/arbiter.v1.Testing/Echo"), body)
                        for _ in range(40)]
                results = [raw.wait(sid, timeout=20, reset_too=True) for sid in sids]
                refused = [r for r in results if r.status() == 8]
                reset = [r for r in results if r.reset == 8]  # CANCEL
                self.assertGreater(len(refused), 20, "the budget turned calls away")
                self.assertGreater(len(reset), 0, "pinned answers were reset")
                self.assertEqual(len(refused) + len(reset), 40)
                self.assertEqual(health_ok(s), health_pb2.HealthCheckResponse.SERVING)
                self.assertLess(rss_kib(s.proc.pid) - before, 64 * 1024)
            finally:
                raw.close()


class Connections(unittest.TestCase):
    def test_idle_connection_gets_goaway_and_is_closed(self):
        with harness.ArbiterServer(["--idle-connection-timeout-ms", "300"], database=False) as s:
            raw = h2raw.RawClient(s.socket)
            try:
                t0 = time.monotonic()
                while not raw.closed and time.monotonic() - t0 < 5:
                    raw.pump(0.1)
                self.assertIsNotNone(raw.goaway, "a GOAWAY came first")
                self.assertTrue(raw.closed)
                self.assertGreater(time.monotonic() - t0, 0.25)
                self.assertEqual(health_ok(s), health_pb2.HealthCheckResponse.SERVING)
            finally:
                raw.close()

    def test_connections_over_the_cap_are_closed_at_accept(self):
        with harness.ArbiterServer(["--max-connections", "3"], database=False) as s:
            time.sleep(0.3)  # the start-up probe's connection is gone
            raws = [h2raw.RawClient(s.socket) for _ in range(3)]
            try:
                for r in raws:
                    self.assertEqual(r.call("/grpc.health.v1.Health/Check").status(), 0)
                extra = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                extra.settimeout(5)
                extra.connect(s.socket)
                self.assertEqual(extra.recv(100), b"", "closed at once")
                extra.close()
                raws[0].close()
                time.sleep(0.2)
                self.assertEqual(health_ok(s), health_pb2.HealthCheckResponse.SERVING)
            finally:
                for r in raws:
                    r.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
