"""Four competing workers over 10,000 tasks, through the real arbiterd and
PostgreSQL: every task completes exactly once; no task is handed out twice
while a lease on it holds; tasks of a worker that "crashes" (takes them
and never answers) come back after their lease expired; attempts and DEAD
follow max_attempts; a retry never comes before its backoff.

Kinds of task (payload {"kind": ...}): ok (complete at once), flaky (fail
retryably on the first attempt, complete on the second), doomed (always
fail retryably; max_attempts 2, so DEAD after the second), crash (the
first holder drops it; timeout_ms 300 is its lease)."""
import json
import threading
import time
import unittest

import grpc

from orchcommon import Client, OrchCase, admin_pb2, pb, sql_value, start_server, stop_server
import orchcommon

N_TASKS = 10000
WORKERS = 4
KINDS = {"flaky": 150, "doomed": 60, "crash": 60}  # the rest are "ok"


def setUpModule():
    start_server()


def tearDownModule():
    stop_server()


def ms(t):
    return t.ToNanoseconds() / 1e6


class Journal:
    """What the workers saw, under one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.leases = {}      # task id -> [(leased_at ms, lease_expires_at ms, token, attempts)]
        self.ends = {}        # (task id, token) -> (how, server time ms, run_after ms)
        self.completed = {}   # task id -> count of CompleteTask answered OK
        self.lost = 0         # calls answered "lease lost"
        self.errors = []

    def leased(self, task):
        with self.lock:
            self.leases.setdefault(task.id, []).append(
                (ms(task.updated_at), ms(task.lease_expires_at), task.lease_token, task.attempts))

    def ended(self, task_id, token, how, task):
        with self.lock:
            self.ends[(task_id, token)] = (how, ms(task.updated_at), ms(task.run_after))
            if how == "completed":
                self.completed[task_id] = self.completed.get(task_id, 0) + 1


def work(client, tenant, name, kinds, journal, stop):
    """One worker: long-poll for up to 20 tasks, then handle each."""
    md_call = client.call
    while not stop.is_set():
        try:
            tasks = client.dequeue(tenant, worker=name, max=20, wait_ms=200, timeout=10)
        except grpc.RpcError as e:
            journal.errors.append(("dequeue", e.code(), e.details()))
            time.sleep(0.05)
            continue
        for task in tasks:
            journal.leased(task)
            kind = kinds[task.id]
            try:
                if kind == "crash" and task.attempts == 1:
                    continue  # "crashed": never answers, the lease runs out
                if kind == "doomed" or (kind == "flaky" and task.attempts == 1):
                    r = md_call("FailTask", pb.FailTaskRequest(
                        task_id=task.id, lease_token=task.lease_token, error=kind,
                        retryable=True), tenant).task
                    journal.ended(task.id, task.lease_token, "failed", r)
                    continue
                r = md_call("CompleteTask", pb.CompleteTaskRequest(
                    task_id=task.id, lease_token=task.lease_token, result_json='{"by": "%s"}'
                    % name), tenant).task
                journal.ended(task.id, task.lease_token, "completed", r)
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.FAILED_PRECONDITION:
                    with journal.lock:
                        journal.lost += 1
                else:
                    journal.errors.append((kind, e.code(), e.details()))


class CompetingWorkers(OrchCase):
    def test_ten_thousand_tasks(self):
        c, t = self.c, self.c.new_tenant("load")
        c.admin.SetQueueCapacity(admin_pb2.SetQueueCapacityRequest(tenant_id=t,
                                                                   capacity=N_TASKS))
        plan = []
        for kind, n in KINDS.items():
            plan += [kind] * n
        plan += ["ok"] * (N_TASKS - len(plan))
        kinds = {}
        for start in range(0, N_TASKS, 1000):
            batch = [pb.Task(task_type="load", payload_json=json.dumps({"kind": k}),
                             max_attempts=2 if k == "doomed" else 3,
                             timeout_ms=300 if k == "crash" else 30000)
                     for k in plan[start:start + 1000]]
            got = c.call("EnqueueTasks", pb.EnqueueTasksRequest(tasks=batch), t).tasks
            for task in got:
                kinds[task.id] = json.loads(task.payload_json)["kind"]
        self.assertEqual(len(kinds), N_TASKS)

        journal, stop = Journal(), threading.Event()
        workers = [threading.Thread(target=work, args=(Client(orchcommon.SERVER), t, "w%d" % i,
                                                       kinds, journal, stop))
                   for i in range(WORKERS)]
        began = time.monotonic()
        for w in workers:
            w.start()
        try:
            while time.monotonic() - began < 120:
                s = c.call("GetQueueStats", pb.GetQueueStatsRequest(), t)
                if s.queued == 0 and s.leased == 0:
                    break
                time.sleep(0.2)
        finally:
            stop.set()
            for w in workers:
                w.join(15)
        took = time.monotonic() - began
        self.assertEqual(journal.errors, [])
        s = c.call("GetQueueStats", pb.GetQueueStatsRequest(), t)
        done = N_TASKS - KINDS["doomed"]
        self.assertEqual((s.queued, s.leased, s.completed, s.dead), (0, 0, done, KINDS["doomed"]),
                         "after %.1f s" % took)
        self.assertEqual(s.rescued_total, KINDS["crash"])
        print("\n%d tasks, %d workers: %.1f s" % (N_TASKS, WORKERS, took))

        # Exactly once: one successful CompleteTask per task that completes.
        for tid, kind in kinds.items():
            self.assertEqual(journal.completed.get(tid, 0), 0 if kind == "doomed" else 1,
                             "%s task %s" % (kind, tid))

        # Attempts follow the kinds and max_attempts.
        want = {"ok": 1, "flaky": 2, "doomed": 2, "crash": 2}
        for tid, kind in kinds.items():
            leases = journal.leases[tid]
            self.assertEqual([a for _, _, _, a in leases], list(range(1, want[kind] + 1)),
                             "%s task %s" % (kind, tid))
        self.assertEqual(sql_value(
            "SELECT count(*) FROM tasks WHERE tenant_id = '%s' AND status = 'DEAD'"
            " AND attempts = max_attempts AND max_attempts = 2" % t), str(KINDS["doomed"]))

        # Never two leases at once; a crash's task only after the lease
        # ran out; a retry only after its backoff.
        for tid, leases in journal.leases.items():
            for (at1, exp1, tok1, n1), (at2, _, tok2, _) in zip(leases, leases[1:]):
                end = journal.ends.get((tid, tok1))
                if end is None:  # the holder crashed
                    self.assertEqual(kinds[tid], "crash")
                    self.assertGreaterEqual(at2, exp1, "re-leased while the lease held")
                else:
                    how, when, run_after = end
                    self.assertEqual(how, "failed")
                    self.assertGreaterEqual(at2, when)
                    self.assertGreaterEqual(at2, run_after, "retried before its backoff")
                    backoff = run_after - when
                    self.assertGreaterEqual(backoff, 500 * 2 ** (n1 - 1) - 1)
                    self.assertLessEqual(backoff, 1000 * 2 ** (n1 - 1) + 1)
        self.assertEqual(journal.lost, 0)


if __name__ == "__main__":
    unittest.main()
