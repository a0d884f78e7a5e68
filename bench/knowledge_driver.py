#!/usr/bin/python3
"""Knowledge.StoreResults load for bench/knowledge.sh: keeps --inflight
calls of 100 (--batch) results in flight over --channels connections for
--duration seconds and prints one JSON line: calls, seconds, calls/s,
latency p50/p99 in ms, results inserted and duplicates, errors.

h2load cannot be used here: it sends one fixed body, and after the first
call every result of that body would be a duplicate. Every call of this
driver stores new contents: the base contents (--base, a JSON file of
{"titles", "contents", ...} arrays, the same pgbench uses) with a unique
suffix per call.

    knowledge_driver.py SOCKET TENANT QUERY_ID BASE_JSON [--duration S]
                        [--inflight N] [--channels N] [--warmup]
"""
import argparse
import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.environ.get("ARBITER_PY_STUBS", ""))
import grpc  # noqa: E402
from arbiter.v1 import knowledge_pb2 as kn  # noqa: E402
from arbiter.v1 import knowledge_pb2_grpc as kn_grpc  # noqa: E402


def requests(base, query_id):
    """An endless supply of StoreResultsRequest with unique contents."""
    n = 0
    prefix = "%d-%d" % (os.getpid(), int(time.time() * 1000))
    source = [kn.SourceType.Value("SOURCE_TYPE_" + s) for s in base["source_types"]]
    quality = [kn.Quality.Value("QUALITY_" + q) for q in base["qualities"]]
    while True:
        n += 1
        salt = " %s-%d" % (prefix, n)
        results = [kn.SearchResult(title=t, content=c + salt, url=u, source_type=s,
                                   relevance_score=r, credibility_score=cr, quality=q,
                                   provider=p)
                   for t, c, u, s, r, cr, q, p in zip(
                       base["titles"], base["contents"], base["urls"], source,
                       base["relevances"], base["credibilities"], quality, base["providers"])]
        yield kn.StoreResultsRequest(query_id=query_id, results=results)


async def worker(stub, md, gen, end, lat, totals):
    while time.monotonic() < end:
        req = next(gen)
        t0 = time.monotonic()
        try:
            r = await stub.StoreResults(req, metadata=md, timeout=30)
        except grpc.aio.AioRpcError as e:
            totals["errors"] += 1
            totals["last_error"] = "%s: %s" % (e.code().name, e.details())
            continue
        lat.append(time.monotonic() - t0)
        totals["inserted"] += r.inserted
        totals["duplicates"] += r.duplicates


async def run(args):
    with open(args.base) as f:
        base = json.load(f)
    gen = requests(base, args.query_id)
    channels = [grpc.aio.insecure_channel("unix://" + args.socket)
                for _ in range(args.channels)]
    stubs = [kn_grpc.KnowledgeStub(c) for c in channels]
    md = [("x-tenant-id", args.tenant)]
    lat, totals = [], {"inserted": 0, "duplicates": 0, "errors": 0, "last_error": ""}
    start = time.monotonic()
    end = start + args.duration
    await asyncio.gather(*(worker(stubs[i % len(stubs)], md, gen, end, lat, totals)
                           for i in range(args.inflight)))
    secs = time.monotonic() - start
    for c in channels:
        await c.close()
    lat.sort()

    def pct(p):
        return round(1000 * lat[min(len(lat) - 1, int(len(lat) * p))], 3) if lat else None

    return dict(calls=len(lat), seconds=round(secs, 3), rate=round(len(lat) / secs, 1),
                p50_ms=pct(0.50), p99_ms=pct(0.99), **totals)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("socket")
    ap.add_argument("tenant")
    ap.add_argument("query_id")
    ap.add_argument("base")
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--inflight", type=int, default=16)
    ap.add_argument("--channels", type=int, default=4)
    args = ap.parse_args()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
