"""Tenant isolation matrix of the Orchestrator: for every method, tenant B
can neither see nor change tenant A's tasks and assignments (checked by
reading as A afterwards), B's long poll is not woken by A's tasks and
cannot take them, B's WatchQueue carries none of A's changes, and a
forged NOTIFY hint carries nothing across. At the SQL level the app role
without a tenant setting sees no row of the queue's tables and cannot
insert one."""
import concurrent.futures
import time
import unittest

from orchcommon import (Client, Code, Collector, OrchCase, admin_pb2, ar, harness, pb, psql,
                        sql_value, start_server, status_name, stop_server)
import orchcommon

TABLES = ("queue_settings", "tasks", "task_events", "task_assignments")
POOL = concurrent.futures.ThreadPoolExecutor(max_workers=4)


def setUpModule():
    start_server()


def tearDownModule():
    stop_server()


class Isolation(OrchCase):
    @classmethod
    def setUpClass(cls):
        """A's world, made once: a QUEUED, a LEASED and a DEAD task, an
        agent with an assignment, a capacity of its own. Each test compares
        what A sees before and after it."""
        c = Client(orchcommon.SERVER)
        cls.A = c.new_tenant("a")
        A = cls.A
        c.admin.SetQueueCapacity(admin_pb2.SetQueueCapacityRequest(tenant_id=A, capacity=50))
        cls.queued = c.enqueue(A, "iso", idempotency_key="shared-key")
        c.enqueue(A, "iso")
        cls.leased = c.dequeue(A, max=1, lease_ms=600000)[0]
        x = c.enqueue(A, "iso", max_attempts=1)
        y = [t for t in c.dequeue(A, max=5) if t.id == x.id][0]
        cls.dead = c.call("FailTask", pb.FailTaskRequest(task_id=y.id, lease_token=y.lease_token),
                          A).task
        cls.agent = c.reg.RegisterAgent(ar.RegisterAgentRequest(agent=ar.Agent(name="ag")),
                                        metadata=harness.tenant_md(A), timeout=10)
        cls.assignment = c.call("AssignTask", pb.AssignTaskRequest(
            task_id=cls.leased.id, agent_id=cls.agent.id,
            routing_strategy=pb.ROUTING_STRATEGY_UCB), A)

    def setUp(self):
        super().setUp()
        self.B = self.c.new_tenant("b")  # a fresh B each time
        self.snapshot = self.view_of_a()

    def view_of_a(self):
        tasks = self.c.call("ListTasks", pb.ListTasksRequest(page_size=100), self.A).tasks
        stats = self.c.call("GetQueueStats", pb.GetQueueStatsRequest(), self.A)
        stats.ClearField("as_of")
        stats.ClearField("oldest_queued_age_ms")
        load = self.c.reg.GetAgent(ar.GetAgentRequest(id=self.agent.id),
                                   metadata=harness.tenant_md(self.A), timeout=10).load
        rows = sql_value("SELECT string_agg(id || status, ',' ORDER BY id) FROM task_assignments"
                         " WHERE tenant_id = '%s'" % self.A)
        return (sorted(t.SerializeToString(deterministic=True) for t in tasks),
                stats.SerializeToString(deterministic=True), load.active_tasks, rows)

    def assertAUnchanged(self):
        self.assertEqual(self.view_of_a(), self.snapshot)

    def test_b_cannot_read(self):
        B = self.B
        for tid in (self.queued.id, self.leased.id, self.dead.id):
            self.assertCode(Code.NOT_FOUND, "GetTask", pb.GetTaskRequest(id=tid), B)
        self.assertEqual(len(self.c.call("ListTasks", pb.ListTasksRequest(), B).tasks), 0)
        s = self.c.call("GetQueueStats", pb.GetQueueStatsRequest(), B)
        self.assertEqual((s.queued, s.leased, s.dead, s.capacity), (0, 0, 0, 1000))
        self.assertEqual(len(self.c.dequeue(B, max=10)), 0)
        self.assertAUnchanged()

    def test_b_cannot_write(self):
        B, leased = self.B, self.leased
        lease = dict(task_id=leased.id, lease_token=leased.lease_token)
        self.assertCode(Code.NOT_FOUND, "Heartbeat", pb.HeartbeatRequest(**lease), B)
        self.assertCode(Code.NOT_FOUND, "CompleteTask", pb.CompleteTaskRequest(**lease), B)
        self.assertCode(Code.NOT_FOUND, "FailTask", pb.FailTaskRequest(**lease), B)
        for tid in (self.queued.id, leased.id):
            self.assertCode(Code.NOT_FOUND, "CancelTask", pb.CancelTaskRequest(id=tid), B)
        self.assertCode(Code.NOT_FOUND, "RetryDeadTask", pb.RetryDeadTaskRequest(id=self.dead.id),
                        B)
        b_agent = self.c.reg.RegisterAgent(ar.RegisterAgentRequest(agent=ar.Agent(name="ag")),
                                           metadata=harness.tenant_md(B), timeout=10)
        b_task = self.c.enqueue(B, "iso")
        for task_id, agent_id in ((self.queued.id, self.agent.id), (self.queued.id, b_agent.id),
                                  (b_task.id, self.agent.id)):
            self.assertCode(Code.FAILED_PRECONDITION, "AssignTask", pb.AssignTaskRequest(
                task_id=task_id, agent_id=agent_id, routing_strategy=pb.ROUTING_STRATEGY_UCB), B)
        self.assertCode(Code.NOT_FOUND, "UpdateAssignment", pb.UpdateAssignmentRequest(
            id=self.assignment.id, status=pb.ASSIGNMENT_STATUS_COMPLETED), B)
        # A's idempotency key is B's own key: a new task of B's
        mine = self.c.enqueue(B, "iso", idempotency_key="shared-key")
        self.assertNotEqual(mine.id, self.queued.id)
        # A's capacity is A's: B still has its default
        self.c.call("EnqueueTasks", pb.EnqueueTasksRequest(tasks=[pb.Task(task_type="x")] * 60),
                    B)
        self.assertAUnchanged()

    def test_b_long_poll_is_not_woken_by_a(self):
        began = time.monotonic()
        fut = POOL.submit(self.c.dequeue, self.B, wait_ms=1500, timeout=10)
        time.sleep(0.2)
        a_task = self.c.enqueue(self.A, "iso")
        self.assertEqual(len(fut.result(timeout=10)), 0)
        self.assertGreater(time.monotonic() - began, 1.4)
        self.assertIn(a_task.id, [t.id for t in self.c.call("ListTasks", pb.ListTasksRequest(
            status=pb.TASK_STATUS_QUEUED), self.A).tasks])

    def test_b_stream_carries_nothing_of_a(self):
        a_col = Collector(self.c.watch(self.A))
        b_col = Collector(self.c.watch(self.B))
        a_task = self.c.enqueue(self.A, "iso")
        self.c.call("CancelTask", pb.CancelTaskRequest(id=a_task.id), self.A)
        a_col.wait_for(lambda evs: len([e for e in evs if not e.resync]) >= 2)
        self.snapshot = self.view_of_a()  # A changed itself
        b_task = self.c.enqueue(self.B, "iso")  # B's own change does arrive
        b_events = b_col.wait_for(lambda evs: any(e.task_id == b_task.id for e in evs))
        time.sleep(0.3)
        a_col.close()
        b_col.close()
        self.assertEqual([(e.task_id, status_name(e.status)) for e in b_col.events if not e.resync],
                         [(b_task.id, "QUEUED")])
        self.assertNotIn(b_task.id, [e.task_id for e in a_col.events])
        self.assertTrue(b_events)
        self.assertAUnchanged()

    def test_forged_hint_carries_nothing(self):
        """The channel is open to the database's roles: a NOTIFY naming B
        only makes B's streams and polls look again."""
        b_col = Collector(self.c.watch(self.B))
        psql("NOTIFY arbiter_queue, 'A 1 %s'; NOTIFY arbiter_queue, 'garbage';" % self.B)
        time.sleep(0.3)
        b_col.close()
        self.assertEqual([e for e in b_col.events if not e.resync], [])

    def test_no_tenant_is_refused(self):
        self.assertCode(Code.INVALID_ARGUMENT, "GetQueueStats", pb.GetQueueStatsRequest(), None,
                        "x-tenant-id")
        self.assertCode(Code.INVALID_ARGUMENT, "DequeueTasks",
                        pb.DequeueTasksRequest(worker_id="w"), None, "x-tenant-id")

    def test_sql_without_tenant_sees_and_writes_nothing(self):
        url = harness.database_url()
        for table in TABLES:
            self.assertEqual(sql_value("SELECT count(*) FROM %s" % table, url), "0", table)
        rc, _, err = psql("INSERT INTO tasks (tenant_id, task_type) VALUES ('%s', 'x')" % self.A,
                          url, check=False)
        self.assertNotEqual(rc, 0)
        self.assertIn("row-level security", err)
        rc, _, err = psql("DELETE FROM tasks", url, check=False)
        self.assertNotEqual(rc, 0)  # no DELETE granted at all
        self.assertIn("permission denied", err)
        self.assertAUnchanged()


if __name__ == "__main__":
    unittest.main()
