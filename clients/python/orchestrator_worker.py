#!/usr/bin/python3
"""A worker of arbiterd's task queue (arbiter.v1.Orchestrator) in Python:
long-poll for a task, keep its lease alive with heartbeats while it runs,
complete it, or fail it (retried with backoff until max_attempts, then
DEAD).

    PYTHONPATH=build/clients/python/gen python3 clients/python/orchestrator_worker.py \
        [--socket ./arbiterd.sock] [--tenant demo] [--task-type echo] [--tasks N]

The work here is a stand-in: it echoes the payload back as the result, and
fails tasks whose payload says {"fail": true}. --tasks N stops after N
tasks (default: run until Ctrl-C).
"""
import argparse
import json
import os
import sys
import threading

if os.environ.get("ARBITER_PY_STUBS"):
    sys.path.insert(0, os.environ["ARBITER_PY_STUBS"])

import grpc  # noqa: E402
from arbiter.v1 import orchestrator_pb2 as pb  # noqa: E402
from arbiter.v1 import orchestrator_pb2_grpc as pb_grpc  # noqa: E402

LEASE_MS = 30000


def run(task):
    """The work: returns the result (a JSON object) or raises."""
    payload = json.loads(task.payload_json)
    if payload.get("fail"):
        raise RuntimeError("asked to fail")
    return {"echo": payload}


def keep_lease(stub, md, task, done):
    """Extends the lease every third of it until |done| is set; stops when
    the lease is lost (expired, or the task was cancelled)."""
    while not done.wait(LEASE_MS / 3000):
        try:
            stub.Heartbeat(pb.HeartbeatRequest(task_id=task.id, lease_token=task.lease_token,
                                               extend_ms=LEASE_MS), metadata=md, timeout=5)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.FAILED_PRECONDITION:
                return  # lease lost: whatever we finish will be refused


def work(stub, md, worker_id, task_type, limit=None):
    """The worker loop; returns after |limit| tasks (None: never)."""
    handled = 0
    while limit is None or handled < limit:
        # Waits up to 20 s inside arbiterd, holding no database connection,
        # and returns as soon as a task is enqueued (or empty at the end).
        tasks = stub.DequeueTasks(pb.DequeueTasksRequest(
            worker_id=worker_id, task_types=[task_type], max=1, lease_ms=LEASE_MS,
            wait_ms=20000), metadata=md, timeout=25).tasks
        for task in tasks:
            done = threading.Event()
            beat = threading.Thread(target=keep_lease, args=(stub, md, task, done), daemon=True)
            beat.start()
            try:
                result = run(task)
            except Exception as e:  # the task failed: retry later, or DEAD
                now = stub.FailTask(pb.FailTaskRequest(
                    task_id=task.id, lease_token=task.lease_token, error=str(e),
                    retryable=True), metadata=md, timeout=5).task
            else:
                now = stub.CompleteTask(pb.CompleteTaskRequest(
                    task_id=task.id, lease_token=task.lease_token,
                    result_json=json.dumps(result)), metadata=md, timeout=5).task
            finally:
                done.set()
                beat.join()
            handled += 1
            print("%s %s" % (task.id, pb.TaskStatus.Name(now.status)), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--socket", default=os.environ.get("ARBITER_SOCKET", "./arbiterd.sock"))
    p.add_argument("--tenant", default="demo")
    p.add_argument("--task-type", default="echo")
    p.add_argument("--worker-id", default="py-worker-%d" % os.getpid())
    p.add_argument("--tasks", type=int, default=None)
    args = p.parse_args()
    # grpc-core sends the socket path as :authority; arbiterd accepts it.
    channel = grpc.insecure_channel("unix://" + os.path.abspath(args.socket))
    stub = pb_grpc.OrchestratorStub(channel)
    try:
        work(stub, [("x-tenant-id", args.tenant)], args.worker_id, args.task_type, args.tasks)
    except KeyboardInterrupt:
        return 0
    except grpc.RpcError as e:
        print("error: %s: %s" % (e.code().name, e.details()), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
