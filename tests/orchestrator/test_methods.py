"""Orchestrator: every method's happy path and each error it documents,
through the real arbiterd and PostgreSQL, from the generated Python stubs;
the capacity set through Admin; the rescue of expired leases; and a few
calls through build/clients/c/arbiterctl."""
import json
import os
import re
import socket
import subprocess
import time
import unittest
import uuid

from google.protobuf import timestamp_pb2

from orchcommon import (Code, OrchCase, S, admin_pb2, ar, harness, pb, sql_value, start_server,
                        stop_server)

ARBITERCTL = os.environ.get("ARBITERCTL")
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python",
                      "orchestrator_worker.py")


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


METRICS_PORT = free_port()


def setUpModule():
    # the only server on this database: its housekeeping does every rescue
    start_server(args=["--metrics-listen", "127.0.0.1:%d" % METRICS_PORT])


def metrics():
    s = socket.create_connection(("127.0.0.1", METRICS_PORT), timeout=5)
    s.sendall(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    body = data.decode().partition("\r\n\r\n")[2]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+) (\d+)$", body, re.M)}


def tearDownModule():
    stop_server()


def ts(seconds_from_now):
    t = timestamp_pb2.Timestamp()
    t.FromNanoseconds(int((time.time() + seconds_from_now) * 1e9))
    return t


class Enqueue(OrchCase):
    def test_defaults(self):
        t = self.c.new_tenant()
        before = time.time()
        task = self.c.enqueue(t, "code-review")
        self.assertEqual(str(uuid.UUID(task.id)), task.id)
        self.assertEqual(task.task_type, "code-review")
        self.assertEqual(task.status, S.TASK_STATUS_QUEUED)
        self.assertEqual((task.priority, task.attempts, task.max_attempts, task.timeout_ms),
                         (5, 0, 3, 30000))
        self.assertEqual((task.budget_max_files, task.budget_max_loc), (40, 1500))
        self.assertEqual(json.loads(task.payload_json), {})
        self.assertEqual((task.lease_token, task.leased_by, task.idempotency_key), ("", "", ""))
        self.assertFalse(task.HasField("lease_expires_at"))
        self.assertGreater(task.created_at.ToSeconds(), before - 60)
        self.assertEqual(task.run_after, task.created_at)

    def test_fields(self):
        t = self.c.new_tenant()
        task = self.c.enqueue(t, "analysis", priority=9, payload_json='{"a": [1, 2]}',
                              max_attempts=7, timeout_ms=1234, run_after=ts(3600),
                              idempotency_key="k-1", budget_max_files=3, budget_max_loc=4)
        self.assertEqual((task.priority, task.max_attempts, task.timeout_ms), (9, 7, 1234))
        self.assertEqual(json.loads(task.payload_json), {"a": [1, 2]})
        self.assertEqual(task.idempotency_key, "k-1")
        self.assertEqual((task.budget_max_files, task.budget_max_loc), (3, 4))
        self.assertGreater(task.run_after.ToSeconds(), time.time() + 3500)
        got = self.c.call("GetTask", pb.GetTaskRequest(id=task.id), t).task
        self.assertEqual(got, task)

    def test_idempotency_key_returns_the_existing_task(self):
        t = self.c.new_tenant()
        first = self.c.enqueue(t, "x", idempotency_key="same", priority=2)
        again = self.c.enqueue(t, "y", idempotency_key="same", priority=8)
        self.assertEqual(again, first)
        self.assertEqual(sql_value("SELECT count(*) FROM tasks WHERE tenant_id = '%s'" % t), "1")
        # the same key in another tenant is another task
        other = self.c.new_tenant()
        self.assertNotEqual(self.c.enqueue(other, "x", idempotency_key="same").id, first.id)

    def test_batch(self):
        t = self.c.new_tenant()
        existing = self.c.enqueue(t, "a", idempotency_key="old")
        tasks = [pb.Task(task_type="b", priority=p) for p in range(1, 11)]
        tasks += [pb.Task(task_type="c", idempotency_key="old"),
                  pb.Task(task_type="d", idempotency_key="new"),
                  pb.Task(task_type="e", idempotency_key="new")]
        got = self.c.call("EnqueueTasks", pb.EnqueueTasksRequest(tasks=tasks), t).tasks
        self.assertEqual(len(got), 13)
        self.assertEqual([x.priority for x in got[:10]], list(range(1, 11)))  # request order
        self.assertEqual(got[10], existing)
        self.assertEqual(got[11], got[12])
        self.assertEqual(got[11].task_type, "d")
        self.assertEqual(len({x.id for x in got}), 12)
        empty = self.c.call("EnqueueTasks", pb.EnqueueTasksRequest(), t).tasks
        self.assertEqual(len(empty), 0)

    def test_batch_limit_and_rules(self):
        t = self.c.new_tenant()
        too_many = pb.EnqueueTasksRequest(tasks=[pb.Task(task_type="x")] * 1001)
        self.assertCode(Code.INVALID_ARGUMENT, "EnqueueTasks", too_many, t, "tasks")
        bad = pb.EnqueueTasksRequest(tasks=[pb.Task(task_type="x"), pb.Task(task_type="")])
        self.assertCode(Code.INVALID_ARGUMENT, "EnqueueTasks", bad, t, "tasks[1].task_type")
        self.assertEqual(sql_value("SELECT count(*) FROM tasks WHERE tenant_id = '%s'" % t), "0")

    def test_invalid(self):
        t = self.c.new_tenant()
        cases = [
            (pb.EnqueueTaskRequest(), "task"),
            (pb.EnqueueTaskRequest(task=pb.Task()), "task.task_type"),
            (pb.EnqueueTaskRequest(task=pb.Task(task_type="x" * 256)), "task.task_type"),
            (pb.EnqueueTaskRequest(task=pb.Task(task_type="x", priority=11)), "task.priority"),
            (pb.EnqueueTaskRequest(task=pb.Task(task_type="x", priority=-1)), "task.priority"),
            (pb.EnqueueTaskRequest(task=pb.Task(task_type="x", payload_json="[1]")),
             "task.payload_json"),
            (pb.EnqueueTaskRequest(task=pb.Task(task_type="x", payload_json="{")),
             "task.payload_json"),
            (pb.EnqueueTaskRequest(task=pb.Task(task_type="x", max_attempts=101)),
             "task.max_attempts"),
            (pb.EnqueueTaskRequest(task=pb.Task(task_type="x", timeout_ms=-5)), "task.timeout_ms"),
        ]
        for req, field in cases:
            self.assertCode(Code.INVALID_ARGUMENT, "EnqueueTask", req, t, field)
        self.assertCode(Code.INVALID_ARGUMENT, "EnqueueTask",
                        pb.EnqueueTaskRequest(task=pb.Task(task_type="x")), None, "x-tenant-id")

    def test_unknown_tenant(self):
        msg = self.assertCode(Code.FAILED_PRECONDITION, "EnqueueTask",
                              pb.EnqueueTaskRequest(task=pb.Task(task_type="x")),
                              "no-such-tenant-" + uuid.uuid4().hex[:8])
        self.assertIn("Admin.CreateTenant", msg)


class Capacity(OrchCase):
    def test_capacity_through_admin(self):
        t = self.c.new_tenant()
        cap = self.c.admin.SetQueueCapacity(admin_pb2.SetQueueCapacityRequest(tenant_id=t,
                                                                              capacity=3))
        self.assertEqual((cap.tenant_id, cap.capacity), (t, 3))
        stats = self.c.call("GetQueueStats", pb.GetQueueStatsRequest(), t)
        self.assertEqual(stats.capacity, 3)
        keep = [self.c.enqueue(t, "x", idempotency_key="k%d" % i) for i in range(3)]
        msg = self.assertCode(Code.RESOURCE_EXHAUSTED, "EnqueueTask",
                              pb.EnqueueTaskRequest(task=pb.Task(task_type="x")), t)
        self.assertIn("capacity", msg)
        # a batch that does not fit is refused whole
        self.assertCode(Code.RESOURCE_EXHAUSTED, "EnqueueTasks",
                        pb.EnqueueTasksRequest(tasks=[pb.Task(task_type="x")] * 2), t)
        # an existing key is not a new task: still answered
        self.assertEqual(self.c.enqueue(t, "x", idempotency_key="k1").id, keep[1].id)
        # leased tasks are not QUEUED: room again
        self.c.dequeue(t)
        self.c.enqueue(t, "x")
        self.assertEqual(sql_value("SELECT count(*) FROM tasks WHERE tenant_id = '%s'" % t), "4")
        # raised again
        self.c.admin.SetQueueCapacity(admin_pb2.SetQueueCapacityRequest(tenant_id=t, capacity=10))
        self.c.enqueue(t, "x")

    def test_default_capacity_is_1000(self):
        t = self.c.new_tenant()
        tasks = [pb.Task(task_type="x")] * 1000
        self.c.call("EnqueueTasks", pb.EnqueueTasksRequest(tasks=tasks), t)
        self.assertCode(Code.RESOURCE_EXHAUSTED, "EnqueueTask",
                        pb.EnqueueTaskRequest(task=pb.Task(task_type="x")), t)
        self.assertEqual(self.c.call("GetQueueStats", pb.GetQueueStatsRequest(), t).queued, 1000)

    def test_admin_errors(self):
        with self.assertRaises(Exception) as cm:
            self.c.admin.SetQueueCapacity(admin_pb2.SetQueueCapacityRequest(
                tenant_id="missing-" + uuid.uuid4().hex[:8], capacity=3))
        self.assertEqual(cm.exception.code(), Code.FAILED_PRECONDITION)
        t = self.c.new_tenant()
        for req in (admin_pb2.SetQueueCapacityRequest(tenant_id=t, capacity=-1),
                    admin_pb2.SetQueueCapacityRequest(tenant_id="bad id", capacity=1)):
            with self.assertRaises(Exception) as cm:
                self.c.admin.SetQueueCapacity(req)
            self.assertEqual(cm.exception.code(), Code.INVALID_ARGUMENT)


class Dequeue(OrchCase):
    def test_order_lease_and_attempts(self):
        t = self.c.new_tenant()
        low = self.c.enqueue(t, "x", priority=1)
        high = self.c.enqueue(t, "x", priority=10)
        mid1 = self.c.enqueue(t, "x", priority=5, run_after=ts(-20))
        mid2 = self.c.enqueue(t, "x", priority=5, run_after=ts(-10))
        later = self.c.enqueue(t, "x", priority=10, run_after=ts(3600))
        got = self.c.dequeue(t, worker="w9", max=10, lease_ms=5000)
        self.assertEqual([x.id for x in got], [high.id, mid1.id, mid2.id, low.id])
        for x in got:
            self.assertEqual(x.status, S.TASK_STATUS_LEASED)
            self.assertEqual(x.attempts, 1)
            self.assertEqual(x.leased_by, "w9")
            self.assertEqual(str(uuid.UUID(x.lease_token)), x.lease_token)
            left = x.lease_expires_at.ToMilliseconds() - x.updated_at.ToMilliseconds()
            self.assertAlmostEqual(left, 5000, delta=5)
        self.assertEqual(len({x.lease_token for x in got}), 4)
        self.assertEqual(list(self.c.dequeue(t, max=10)), [])  # `later` is not due
        self.assertEqual(self.c.call("GetTask", pb.GetTaskRequest(id=later.id), t).task.status,
                         S.TASK_STATUS_QUEUED)

    def test_task_types_max_and_default_lease(self):
        t = self.c.new_tenant()
        for i in range(3):
            self.c.enqueue(t, "a", timeout_ms=777)
        b = self.c.enqueue(t, "b")
        got = self.c.dequeue(t, task_types=["b", "c"], max=5)
        self.assertEqual([x.id for x in got], [b.id])
        got = self.c.dequeue(t, max=2)
        self.assertEqual(len(got), 2)
        left = got[0].lease_expires_at.ToMilliseconds() - got[0].updated_at.ToMilliseconds()
        self.assertAlmostEqual(left, 777, delta=5)  # lease_ms 0: the task's timeout_ms
        self.assertEqual(len(self.c.dequeue(t)), 1)  # max 0 means 1

    def test_invalid(self):
        t = self.c.new_tenant()
        for req, field in [(pb.DequeueTasksRequest(), "worker_id"),
                           (pb.DequeueTasksRequest(worker_id="w", max=101), "max"),
                           (pb.DequeueTasksRequest(worker_id="w", wait_ms=30001), "wait_ms"),
                           (pb.DequeueTasksRequest(worker_id="w", lease_ms=-1), "lease_ms")]:
            self.assertCode(Code.INVALID_ARGUMENT, "DequeueTasks", req, t, field)


class Lease(OrchCase):
    def leased(self, t, **kw):
        self.c.enqueue(t, "x", **kw)
        return self.c.dequeue(t, lease_ms=60000)[0]

    def test_heartbeat(self):
        t = self.c.new_tenant()
        x = self.leased(t)
        hb = self.c.call("Heartbeat", pb.HeartbeatRequest(task_id=x.id, lease_token=x.lease_token,
                                                          extend_ms=120000), t)
        self.assertEqual(hb.status, S.TASK_STATUS_LEASED)
        self.assertEqual(hb.lease_token, x.lease_token)
        left = hb.lease_expires_at.ToMilliseconds() - hb.updated_at.ToMilliseconds()
        self.assertAlmostEqual(left, 120000, delta=5)
        self.assertCode(Code.FAILED_PRECONDITION, "Heartbeat", pb.HeartbeatRequest(
            task_id=x.id, lease_token=str(uuid.uuid4())), t, "lease lost")
        self.assertCode(Code.NOT_FOUND, "Heartbeat", pb.HeartbeatRequest(
            task_id=str(uuid.uuid4()), lease_token=x.lease_token), t)
        self.assertCode(Code.INVALID_ARGUMENT, "Heartbeat", pb.HeartbeatRequest(
            task_id=x.id, lease_token="nope"), t, "lease_token")

    def test_expired_lease_is_lost(self):
        t = self.c.new_tenant()
        self.c.enqueue(t, "x")
        x = self.c.dequeue(t, lease_ms=1)[0]
        time.sleep(0.01)
        for method, req in [("Heartbeat", pb.HeartbeatRequest(task_id=x.id,
                                                              lease_token=x.lease_token)),
                            ("CompleteTask", pb.CompleteTaskRequest(task_id=x.id,
                                                                    lease_token=x.lease_token)),
                            ("FailTask", pb.FailTaskRequest(task_id=x.id,
                                                            lease_token=x.lease_token))]:
            self.assertCode(Code.FAILED_PRECONDITION, method, req, t, "lease lost")

    def test_complete(self):
        t = self.c.new_tenant()
        x = self.leased(t)
        done = self.c.call("CompleteTask", pb.CompleteTaskRequest(
            task_id=x.id, lease_token=x.lease_token, result_json='{"ok": true}'), t).task
        self.assertEqual(done.status, S.TASK_STATUS_COMPLETED)
        self.assertEqual(json.loads(done.result_json), {"ok": True})
        self.assertEqual(done.lease_token, "")
        self.assertFalse(done.HasField("lease_expires_at"))
        self.assertCode(Code.FAILED_PRECONDITION, "CompleteTask", pb.CompleteTaskRequest(
            task_id=x.id, lease_token=x.lease_token), t, "lease lost")
        self.assertCode(Code.NOT_FOUND, "CompleteTask", pb.CompleteTaskRequest(
            task_id=str(uuid.uuid4()), lease_token=x.lease_token), t)
        y = self.leased(t)
        self.assertCode(Code.INVALID_ARGUMENT, "CompleteTask", pb.CompleteTaskRequest(
            task_id=y.id, lease_token=y.lease_token, result_json="[]"), t, "result_json")

    def test_fail_retries_with_backoff_then_dead(self):
        t = self.c.new_tenant()
        x = self.leased(t, max_attempts=2)
        before = time.time()
        f = self.c.call("FailTask", pb.FailTaskRequest(task_id=x.id, lease_token=x.lease_token,
                                                       error="boom", retryable=True), t).task
        self.assertEqual(f.status, S.TASK_STATUS_QUEUED)
        self.assertEqual(f.last_error, "boom")
        self.assertEqual(f.lease_token, "")
        # first retry: 1 s * 2^0 with jitter in [0.5, 1]
        delay = f.run_after.ToNanoseconds() / 1e9 - f.updated_at.ToNanoseconds() / 1e9
        self.assertGreaterEqual(delay, 0.5 - 0.01)
        self.assertLessEqual(delay, 1.0 + 0.01)
        self.assertEqual(list(self.c.dequeue(t)), [])  # not before run_after
        while time.time() < before + delay + 0.05:
            time.sleep(0.05)
        again = self.c.dequeue(t)[0]
        self.assertEqual((again.id, again.attempts), (x.id, 2))
        dead = self.c.call("FailTask", pb.FailTaskRequest(task_id=x.id,
                                                          lease_token=again.lease_token,
                                                          error="boom2", retryable=True), t).task
        self.assertEqual(dead.status, S.TASK_STATUS_DEAD)  # out of attempts
        self.assertEqual(dead.last_error, "boom2")

    def test_not_retryable_is_dead(self):
        t = self.c.new_tenant()
        x = self.leased(t, max_attempts=5)
        f = self.c.call("FailTask", pb.FailTaskRequest(task_id=x.id, lease_token=x.lease_token,
                                                       error="fatal"), t).task
        self.assertEqual((f.status, f.attempts), (S.TASK_STATUS_DEAD, 1))

    def test_retry_dead(self):
        t = self.c.new_tenant()
        x = self.leased(t, max_attempts=1)
        self.c.call("FailTask", pb.FailTaskRequest(task_id=x.id, lease_token=x.lease_token,
                                                   retryable=True), t)
        back = self.c.call("RetryDeadTask", pb.RetryDeadTaskRequest(id=x.id), t).task
        self.assertEqual((back.status, back.attempts), (S.TASK_STATUS_QUEUED, 0))
        self.assertCode(Code.FAILED_PRECONDITION, "RetryDeadTask",
                        pb.RetryDeadTaskRequest(id=x.id), t, "not DEAD")
        self.assertCode(Code.NOT_FOUND, "RetryDeadTask",
                        pb.RetryDeadTaskRequest(id=str(uuid.uuid4())), t)
        self.assertEqual(self.c.dequeue(t)[0].id, x.id)

    def test_cancel(self):
        t = self.c.new_tenant()
        q = self.c.enqueue(t, "x", priority=1)
        x = self.leased(t, priority=10)
        c1 = self.c.call("CancelTask", pb.CancelTaskRequest(id=q.id), t).task
        self.assertEqual(c1.status, S.TASK_STATUS_CANCELLED)
        c2 = self.c.call("CancelTask", pb.CancelTaskRequest(id=x.id), t).task
        self.assertEqual((c2.status, c2.lease_token), (S.TASK_STATUS_CANCELLED, ""))
        # the worker's lease ended with it
        self.assertCode(Code.FAILED_PRECONDITION, "CompleteTask", pb.CompleteTaskRequest(
            task_id=x.id, lease_token=x.lease_token), t, "lease lost")
        # cancelling again answers the cancelled task
        self.assertEqual(self.c.call("CancelTask", pb.CancelTaskRequest(id=x.id), t).task, c2)
        y = self.leased(t)
        self.c.call("CompleteTask", pb.CompleteTaskRequest(task_id=y.id,
                                                           lease_token=y.lease_token), t)
        self.assertCode(Code.FAILED_PRECONDITION, "CancelTask", pb.CancelTaskRequest(id=y.id), t,
                        "completed")
        self.assertCode(Code.NOT_FOUND, "CancelTask", pb.CancelTaskRequest(id=str(uuid.uuid4())),
                        t)
        self.assertEqual(list(self.c.dequeue(t)), [])


class Rescue(OrchCase):
    def test_expired_leases_come_back_then_dead(self):
        name = 'arbiterd_orchestrator_leases_rescued_total{status="%s"}'
        before = metrics()
        t = self.c.new_tenant()
        x = self.c.enqueue(t, "x", max_attempts=2)
        self.c.dequeue(t, lease_ms=100)
        # the housekeeping takes the lease back within about half a second
        deadline = time.time() + 5
        while True:
            got = self.c.dequeue(t, lease_ms=100)
            if got:
                break
            self.assertLess(time.time(), deadline, "never re-delivered")
            time.sleep(0.05)
        self.assertEqual((got[0].id, got[0].attempts), (x.id, 2))
        deadline = time.time() + 5
        while self.c.call("GetTask", pb.GetTaskRequest(id=x.id), t).task.status != \
                S.TASK_STATUS_DEAD:
            self.assertLess(time.time(), deadline, "never DEAD")
            time.sleep(0.05)
        task = self.c.call("GetTask", pb.GetTaskRequest(id=x.id), t).task
        self.assertEqual(task.last_error, "lease expired")
        stats = self.c.call("GetQueueStats", pb.GetQueueStatsRequest(), t)
        self.assertEqual((stats.rescued_total, stats.rescued_last_minute, stats.dead), (2, 1, 1))
        self.assertEqual(stats.failed_last_minute, 1)
        after = metrics()
        # at least these two (earlier tests' short leases may expire meanwhile)
        for s in ("QUEUED", "DEAD"):
            self.assertGreaterEqual(after[name % s] - before[name % s], 1, s)
        self.assertEqual(after["arbiterd_orchestrator_listening"], 1)


class ListAndStats(OrchCase):
    def test_list_pages_and_filters(self):
        t = self.c.new_tenant()
        made = [self.c.enqueue(t, "a" if i % 2 else "b") for i in range(7)]
        self.c.call("CancelTask", pb.CancelTaskRequest(id=made[0].id), t)
        seen, token = [], ""
        while True:
            page = self.c.call("ListTasks", pb.ListTasksRequest(page_size=3, page_token=token), t)
            seen += page.tasks
            token = page.next_page_token
            if not token:
                break
        self.assertEqual([x.id for x in seen], [x.id for x in reversed(made)])  # newest first
        a = self.c.call("ListTasks", pb.ListTasksRequest(task_type="a"), t).tasks
        self.assertEqual({x.id for x in a}, {x.id for x in made if x.task_type == "a"})
        c = self.c.call("ListTasks", pb.ListTasksRequest(status=S.TASK_STATUS_CANCELLED), t).tasks
        self.assertEqual([x.id for x in c], [made[0].id])
        other = self.c.new_tenant()
        self.assertCode(Code.INVALID_ARGUMENT, "ListTasks",
                        pb.ListTasksRequest(page_size=1, page_token=token or page.next_page_token
                                            or "x"), other)

    def test_stats(self):
        t = self.c.new_tenant()
        for _ in range(4):
            self.c.enqueue(t, "x")
        a, b, c = self.c.dequeue(t, max=3)
        self.c.call("CompleteTask", pb.CompleteTaskRequest(task_id=a.id,
                                                           lease_token=a.lease_token), t)
        self.c.call("FailTask", pb.FailTaskRequest(task_id=b.id, lease_token=b.lease_token), t)
        s = self.c.call("GetQueueStats", pb.GetQueueStatsRequest(), t)
        self.assertEqual((s.queued, s.leased, s.completed, s.failed, s.dead, s.cancelled),
                         (1, 1, 1, 0, 1, 0))
        self.assertEqual((s.completed_last_minute, s.failed_last_minute), (1, 1))
        self.assertGreater(s.oldest_queued_age_ms, 0)
        self.assertGreaterEqual(s.average_wait_ms, 0)
        self.assertGreaterEqual(s.average_run_ms, 0)
        self.assertEqual((s.rescued_total, s.capacity), (0, 1000))
        empty = self.c.call("GetQueueStats", pb.GetQueueStatsRequest(), self.c.new_tenant())
        self.assertEqual((empty.queued, empty.oldest_queued_age_ms, empty.capacity), (0, 0, 1000))


class Assignments(OrchCase):
    def agent(self, t):
        return self.c.reg.RegisterAgent(ar.RegisterAgentRequest(agent=ar.Agent(
            name="agent-" + uuid.uuid4().hex[:8])), metadata=harness.tenant_md(t), timeout=10)

    def load(self, t, agent_id):
        return self.c.reg.GetAgent(ar.GetAgentRequest(id=agent_id), metadata=harness.tenant_md(t),
                                   timeout=10).load.active_tasks

    def test_assign_and_move_forward(self):
        t = self.c.new_tenant()
        ag = self.agent(t)
        x, y = self.c.enqueue(t, "x"), self.c.enqueue(t, "x")
        a = self.c.call("AssignTask", pb.AssignTaskRequest(
            task_id=x.id, agent_id=ag.id,
            routing_strategy=pb.ROUTING_STRATEGY_CAPABILITY_MATCH), t)
        self.assertEqual((a.task_id, a.agent_id, a.status, a.routing_strategy),
                         (x.id, ag.id, pb.ASSIGNMENT_STATUS_ASSIGNED,
                          pb.ROUTING_STRATEGY_CAPABILITY_MATCH))
        self.assertEqual(self.load(t, ag.id), 1)
        b = self.c.call("AssignTask", pb.AssignTaskRequest(
            task_id=y.id, agent_id=ag.id, routing_strategy=pb.ROUTING_STRATEGY_UCB), t)
        self.assertEqual(self.load(t, ag.id), 2)
        # one assignment in progress per task
        self.assertCode(Code.ALREADY_EXISTS, "AssignTask", pb.AssignTaskRequest(
            task_id=x.id, agent_id=ag.id, routing_strategy=pb.ROUTING_STRATEGY_UCB), t)
        self.assertEqual(self.load(t, ag.id), 2)
        for st in (pb.ASSIGNMENT_STATUS_ACKNOWLEDGED, pb.ASSIGNMENT_STATUS_EXECUTING):
            u = self.c.call("UpdateAssignment", pb.UpdateAssignmentRequest(id=a.id, status=st),
                            t).assignment
            self.assertEqual(u.status, st)
            self.assertEqual(self.load(t, ag.id), 2)
        self.assertCode(Code.FAILED_PRECONDITION, "UpdateAssignment", pb.UpdateAssignmentRequest(
            id=a.id, status=pb.ASSIGNMENT_STATUS_ASSIGNED), t, "forward")
        done = self.c.call("UpdateAssignment", pb.UpdateAssignmentRequest(
            id=a.id, status=pb.ASSIGNMENT_STATUS_COMPLETED), t).assignment
        self.assertEqual(done.status, pb.ASSIGNMENT_STATUS_COMPLETED)
        self.assertEqual(self.load(t, ag.id), 1)
        self.assertCode(Code.FAILED_PRECONDITION, "UpdateAssignment", pb.UpdateAssignmentRequest(
            id=a.id, status=pb.ASSIGNMENT_STATUS_FAILED), t)
        self.assertEqual(self.load(t, ag.id), 1)
        # straight from ASSIGNED to CANCELLED
        self.c.call("UpdateAssignment", pb.UpdateAssignmentRequest(
            id=b.id, status=pb.ASSIGNMENT_STATUS_CANCELLED), t)
        self.assertEqual(self.load(t, ag.id), 0)
        # the task may be assigned again now
        self.c.call("AssignTask", pb.AssignTaskRequest(
            task_id=x.id, agent_id=ag.id, routing_strategy=pb.ROUTING_STRATEGY_LOAD_BALANCE), t)
        self.assertEqual(self.load(t, ag.id), 1)

    def test_errors(self):
        t = self.c.new_tenant()
        ag = self.agent(t)
        x = self.c.enqueue(t, "x")
        for req in (pb.AssignTaskRequest(task_id=str(uuid.uuid4()), agent_id=ag.id,
                                         routing_strategy=pb.ROUTING_STRATEGY_UCB),
                    pb.AssignTaskRequest(task_id=x.id, agent_id=str(uuid.uuid4()),
                                         routing_strategy=pb.ROUTING_STRATEGY_UCB)):
            self.assertCode(Code.FAILED_PRECONDITION, "AssignTask", req, t)
        self.assertEqual(self.load(t, ag.id), 0)  # nothing half-written
        self.assertCode(Code.INVALID_ARGUMENT, "AssignTask", pb.AssignTaskRequest(
            task_id=x.id, agent_id=ag.id), t, "routing_strategy")
        self.assertCode(Code.NOT_FOUND, "UpdateAssignment", pb.UpdateAssignmentRequest(
            id=str(uuid.uuid4()), status=pb.ASSIGNMENT_STATUS_COMPLETED), t)
        self.assertCode(Code.INVALID_ARGUMENT, "UpdateAssignment", pb.UpdateAssignmentRequest(
            id=str(uuid.uuid4())), t, "status")


@unittest.skipUnless(ARBITERCTL, "ARBITERCTL not set")
class Arbiterctl(OrchCase):
    def ctl(self, *args):
        p = subprocess.run([ARBITERCTL, "--socket", self.socket] + list(args),
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def setUp(self):
        super().setUp()
        from orchcommon import SERVER
        self.socket = SERVER.socket

    def test_enqueue_dequeue_complete(self):
        t = self.c.new_tenant()
        task = self.ctl("--tenant", t, "call", "Orchestrator.EnqueueTask", "task.task_type=ctl",
                        "task.priority=7", 'task.payload_json={"n":1}')
        self.assertEqual((task["task_type"], task["priority"], task["status"]),
                         ("ctl", 7, "TASK_STATUS_QUEUED"))
        got = self.ctl("--tenant", t, "call", "Orchestrator.DequeueTasks", "worker_id=ctl-w",
                       "max=5", "wait_ms=1000")
        self.assertEqual([x["id"] for x in got["tasks"]], [task["id"]])
        lease = got["tasks"][0]["lease_token"]
        done = self.ctl("--tenant", t, "call", "Orchestrator.CompleteTask",
                        "task_id=" + task["id"], "lease_token=" + lease)
        self.assertEqual(done["task"]["status"], "TASK_STATUS_COMPLETED")
        stats = self.ctl("--tenant", t, "call", "Orchestrator.GetQueueStats")
        self.assertEqual(stats["completed"], "1")  # int64 as a string
        cap = self.ctl("call", "Admin.SetQueueCapacity", "tenant_id=" + t, "capacity=5")
        self.assertEqual(cap["capacity"], 5)


class WorkerExample(OrchCase):
    """clients/python/orchestrator_worker.py (the README's worker loop),
    run as a user would: it waits in its long poll, takes what is
    enqueued, completes it, or fails it until it is DEAD."""

    def test_worker_example(self):
        from orchcommon import SERVER
        t = self.c.new_tenant()
        env = dict(os.environ, PYTHONPATH=os.environ["ARBITER_PY_STUBS"])
        worker = subprocess.Popen(["/usr/bin/python3", WORKER, "--socket", SERVER.socket,
                                   "--tenant", t, "--tasks", "3"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env)
        time.sleep(0.5)  # in its long poll by now
        ok = [self.c.enqueue(t, "echo", payload_json='{"n": %d}' % i) for i in range(2)]
        bad = self.c.enqueue(t, "echo", payload_json='{"fail": true}', max_attempts=1)
        self.c.enqueue(t, "other")  # not its type
        out, err = worker.communicate(timeout=30)
        self.assertEqual(worker.returncode, 0, err)
        lines = sorted(out.split("\n")[:-1])
        self.assertEqual(lines, sorted(["%s TASK_STATUS_COMPLETED" % x.id for x in ok] +
                                       ["%s TASK_STATUS_DEAD" % bad.id]))
        got = self.c.call("GetTask", pb.GetTaskRequest(id=ok[1].id), t).task
        self.assertEqual(json.loads(got.result_json), {"echo": {"n": 1}})
        self.assertEqual(self.c.call("GetTask", pb.GetTaskRequest(id=bad.id), t).task.last_error,
                         "asked to fail")


if __name__ == "__main__":
    unittest.main()
