"""Shared fixtures for the Orchestrator integration tests.

One arbiterd per test file (start_server() in setUpModule), a real
PostgreSQL from tests/pg/with-postgres.sh, the grpcio stubs generated at
build time. Every test makes its own tenants, so tests never see each
other's tasks.
"""
import os
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "registry"))
from regcommon import harness, psql, sql_value  # noqa: E402,F401  (stubs on sys.path)

import grpc  # noqa: E402
from arbiter.v1 import admin_pb2, admin_pb2_grpc  # noqa: E402
from arbiter.v1 import agent_registry_pb2 as ar  # noqa: E402
from arbiter.v1 import agent_registry_pb2_grpc as ar_grpc  # noqa: E402
from arbiter.v1 import orchestrator_pb2 as pb  # noqa: E402
from arbiter.v1 import orchestrator_pb2_grpc as pb_grpc  # noqa: E402

Code = grpc.StatusCode
S = pb.TaskStatus
SERVER = None


def start_server(**kwargs):
    """Starts the module's server (skips the whole file without a database)."""
    global SERVER
    harness.skip_without_database()
    SERVER = harness.ArbiterServer(test_service=False, **kwargs).start()
    return SERVER


def stop_server():
    global SERVER
    if SERVER is not None:
        code = SERVER.stop()
        SERVER = None
        if code != 0:
            raise RuntimeError("arbiterd exited with %r" % code)


def status_name(s):
    return pb.TaskStatus.Name(s).replace("TASK_STATUS_", "")


class Client:
    """The Orchestrator, AgentRegistry and Admin stubs over one channel."""

    def __init__(self, server):
        self.channel = server.channel()
        self.orch = pb_grpc.OrchestratorStub(self.channel)
        self.reg = ar_grpc.AgentRegistryStub(self.channel)
        self.admin = admin_pb2_grpc.AdminStub(self.channel)

    def new_tenant(self, prefix="t"):
        tid = "%s-%s" % (prefix, uuid.uuid4().hex[:12])
        self.admin.CreateTenant(admin_pb2.CreateTenantRequest(id=tid, name="tenant " + tid))
        return tid

    def call(self, method, request, tenant, timeout=30):
        md = harness.tenant_md(tenant) if tenant is not None else []
        return getattr(self.orch, method)(request, metadata=md, timeout=timeout)

    def enqueue(self, tenant, task_type="work", **fields):
        return self.call("EnqueueTask",
                         pb.EnqueueTaskRequest(task=pb.Task(task_type=task_type, **fields)), tenant)

    def dequeue(self, tenant, worker="w1", max=1, timeout=30, **fields):
        return self.call("DequeueTasks", pb.DequeueTasksRequest(worker_id=worker, max=max,
                                                                **fields), tenant,
                         timeout=timeout).tasks

    def watch(self, tenant, task_types=(), timeout=60):
        """Opens WatchQueue and waits for its opening resync; returns the
        stream (an iterator of QueueEvent)."""
        stream = self.orch.WatchQueue(pb.WatchQueueRequest(task_types=list(task_types)),
                                      metadata=harness.tenant_md(tenant), timeout=timeout)
        first = next(stream)
        assert first.resync, first
        return stream


class Collector:
    """Reads a WatchQueue stream on a thread into a list."""

    def __init__(self, stream):
        self.stream = stream
        self.events = []
        self.error = None
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for ev in self.stream:
                with self.cond:
                    self.events.append(ev)
                    self.cond.notify_all()
        except grpc.RpcError as e:
            with self.cond:
                self.error = e
                self.cond.notify_all()

    def wait_for(self, pred, timeout=10.0):
        """Waits until pred(events) is true; returns the events."""
        end = time.monotonic() + timeout
        with self.cond:
            while not pred(self.events):
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out; events so far: %r" % (self.events,))
                self.cond.wait(left)
            return list(self.events)

    def close(self):
        self.stream.cancel()
        self.thread.join(5)


class OrchCase(unittest.TestCase):
    def setUp(self):
        self.c = Client(SERVER)

    def assertCode(self, code, method, request, tenant, contains=None):
        with self.assertRaises(grpc.RpcError) as cm:
            self.c.call(method, request, tenant)
        err = cm.exception
        self.assertEqual(err.code(), code, "%s: %s" % (method, err.details()))
        if contains is not None:
            self.assertIn(contains, err.details() or "")
        return err.details()
