"""Helpers of bench/knowledge_graph.sh (run with /usr/bin/python3, the grpcio
stubs on ARBITER_PY_STUBS):

  load TARGET TENANT              10,000 entities (768 random dimensions) through
                                  UpsertEntities in batches of 1,000, then 50,000
                                  relationships through UpsertRelationships; prints
                                  "entities SECONDS" and "relationships SECONDS"
  bodies TARGET TENANT DIR CFILE  the gRPC request bodies of one VectorSearch,
                                  Traverse, HybridSearch and FindPath call for h2load
                                  (DIR/<Method>.bin), and for pgbench the same SQL
                                  (taken from the method table in CFILE) and values
                                  (DIR/<Method>.pgbench and .pgdefs)
  notok TARGET                    calls not answered OK so far (Admin.GetServerInfo)
  explain SUPERUSER_URL TENANT DIR  EXPLAIN (ANALYZE, BUFFERS) of every statement the
                                  searches run, nested ones included (auto_explain)
"""
import json
import os
import random
import re
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.environ.get("ARBITER_PY_STUBS", ""))

import grpc  # noqa: E402
from arbiter.v1 import admin_pb2, admin_pb2_grpc  # noqa: E402
from arbiter.v1 import knowledge_graph_pb2 as kg  # noqa: E402
from arbiter.v1 import knowledge_graph_pb2_grpc as kg_grpc  # noqa: E402
from google.protobuf import wrappers_pb2  # noqa: E402

DIMS = 768
OPTIONS = [("grpc.max_send_message_length", 16 << 20),
           ("grpc.max_receive_message_length", 16 << 20)]


def stub(target):
    ch = grpc.insecure_channel(target, options=OPTIONS)
    return kg_grpc.KnowledgeGraphStub(ch), admin_pb2_grpc.AdminStub(ch)


def load(target, tenant):
    kgs, admin = stub(target)
    admin.CreateTenant(admin_pb2.CreateTenantRequest(id=tenant, name=tenant))
    md = [("x-tenant-id", tenant)]
    rnd = random.Random(1)
    topics = ["graphs", "vectors", "agents", "search", "tenants", "queues", "caches", "proofs"]
    aspects = ["latency", "recall", "safety", "scale", "cost"]
    batches = [[kg.Entity(entity_type=1 + (g % 4), name="entity-%d" % g,
                          content="entity %d about %s and %s" % (g, topics[g % 8], aspects[g % 5]),
                          embedding=[rnd.random() - 0.5 for _ in range(DIMS)],
                          confidence=0.5 + rnd.random() / 2)
                for g in range(b * 1000 + 1, b * 1000 + 1001)] for b in range(10)]
    ids = []
    t0 = time.monotonic()
    for batch in batches:
        ids += kgs.UpsertEntities(kg.UpsertEntitiesRequest(entities=batch), metadata=md,
                                  timeout=120).ids
    print("entities %.2f" % (time.monotonic() - t0))
    seen, rels = set(), []
    while len(rels) < 50000:
        s, t = rnd.sample(range(len(ids)), 2)
        rtype = ["uses", "knows", "part_of"][len(rels) % 3]
        if (s, t, rtype) in seen:
            continue
        seen.add((s, t, rtype))
        rels.append(kg.Relationship(source_id=ids[s], target_id=ids[t], relationship_type=rtype,
                                    confidence=0.5 + rnd.random() / 2, strength=rnd.random(),
                                    bidirectional=rnd.random() < 0.2))
    t0 = time.monotonic()
    for i in range(0, len(rels), 1000):
        kgs.UpsertRelationships(kg.UpsertRelationshipsRequest(relationships=rels[i:i + 1000]),
                                metadata=md, timeout=120)
    print("relationships %.2f" % (time.monotonic() - t0))


# ---- the SQL of the method table ---------------------------------------------

def c_strings(fragment, macros):
    """The C string literals and macro names of |fragment|, concatenated."""
    out = []
    for m in re.finditer(r'"((?:[^"\\]|\\.)*)"|\b([A-Z][A-Z_]+)\b', fragment):
        if m.group(1) is not None:
            out.append(m.group(1).replace('\\"', '"'))
        elif m.group(2) in macros:
            out.append(macros[m.group(2)])
    return "".join(out)


def method_sql(cfile):
    src = open(cfile).read()
    macros = {}
    for m in re.finditer(r"#define (\w+)((?:.*\\\n)*.*\n)", src):
        macros[m.group(1)] = c_strings(m.group(2), macros)
    arrays = {m.group(1): c_strings(m.group(2), macros)
              for m in re.finditer(r"static const char (\w+)\[\] =((?:.|\n)*?);\n", src)}
    sql = {}
    for name in ("Traverse", "FindPath"):
        block = re.search(r'\.name = "%s",(?:.|\n)*?\.stmts = \{\{((?:.|\n)*?)SVC_PARAMS' % name,
                          src).group(1)
        sql[name] = c_strings(block, macros)
    sql["VectorSearch"] = arrays["vector_search"]
    sql["HybridSearch"] = arrays["hybrid_search"]
    return sql


def frame(msg):
    pb = msg.SerializeToString()
    return b"\x00" + struct.pack(">I", len(pb)) + pb


def pg_array(v):
    return "{" + ",".join("%.9g" % struct.unpack("<f", struct.pack("<f", x))[0] for x in v) + "}"


def bodies(target, tenant, outdir, cfile):
    os.makedirs(outdir, exist_ok=True)
    kgs, _ = stub(target)
    md = [("x-tenant-id", tenant)]
    rnd = random.Random(3)
    q = [rnd.random() - 0.5 for _ in range(DIMS)]
    ents = kgs.ListEntities(kg.ListEntitiesRequest(page_size=200), metadata=md).entities
    # a start whose 2-hop neighbourhood has the median size
    sizes = sorted((len(kgs.Traverse(kg.TraverseRequest(start_id=e.id, max_hops=2),
                                     metadata=md).nodes), e.id) for e in ents[:41])
    start = sizes[len(sizes) // 2][1]
    pair = (ents[0].id, ents[1].id)
    for a, b in zip(ents[50:], ents[51:]):
        if kgs.FindPath(kg.FindPathRequest(source_id=a.id, target_id=b.id), metadata=md).found:
            pair = (a.id, b.id)
            break
    requests = {
        "VectorSearch": (kg.VectorSearchRequest(embedding=q, limit=10),
                         [pg_array(q), "10", "{}", "-1", "false"]),
        "Traverse": (kg.TraverseRequest(start_id=start, max_hops=2),
                     [start, "2", "0.5", "{}", "100"]),
        "HybridSearch": (kg.HybridSearchRequest(embedding=q, query_text="vectors latency",
                                                limit=10),
                         [pg_array(q), "vectors latency", "10", "2", "{}", "0.5", "false"]),
        "FindPath": (kg.FindPathRequest(source_id=pair[0], target_id=pair[1]),
                     [pair[0], pair[1], "5"]),
    }
    sql = method_sql(cfile)
    params = {}
    for name, (req, values) in requests.items():
        with open(os.path.join(outdir, name + ".bin"), "wb") as f:
            f.write(frame(req))
        # the pool's pipeline for one call: the tenant settings, the statement, one Sync
        stmt = re.sub(r"\$(\d+)", lambda m: ":p" + m.group(1), sql[name])
        with open(os.path.join(outdir, name + ".pgbench"), "w") as f:
            f.write("\\startpipeline\n"
                    "SELECT set_config('app.current_tenant', :tenant, true),"
                    " set_config('statement_timeout', '30000', true);\n"
                    "%s;\n\\endpipeline\n" % stmt)
        with open(os.path.join(outdir, name + ".pgdefs"), "w") as f:
            f.write("-Dtenant=%s\n" % tenant)
            for i, v in enumerate(values):
                f.write("-Dp%d=%s\n" % (i + 1, v))
        params[name] = (sql[name], values)
    with open(os.path.join(outdir, "params.json"), "w") as f:
        json.dump(params, f)


def notok(target):
    _, admin = stub(target)
    info = admin.GetServerInfo(admin_pb2.GetServerInfoRequest(), timeout=10)
    print(info.calls_total - sum(s.count for s in info.calls_by_status if s.code == 0))


def explain(superuser_url, tenant, workdir):
    params = json.load(open(os.path.join(workdir, "params.json")))
    script = ["LOAD 'auto_explain';",
              "SET auto_explain.log_min_duration = 0;", "SET auto_explain.log_analyze = on;",
              "SET auto_explain.log_buffers = on;", "SET auto_explain.log_timing = on;",
              "SET auto_explain.log_nested_statements = on;",
              "SET auto_explain.log_level = notice;", "SET client_min_messages = notice;",
              "SET ROLE arbiter_app;"]
    for name, (sql, values) in params.items():
        lit = sql
        for i in range(len(values), 0, -1):
            lit = lit.replace("$%d" % i, "'%s'" % values[i - 1].replace("'", "''"))
        script += ["\\warn ==== %s" % name, "BEGIN;",
                   "SELECT set_config('app.current_tenant', '%s', true) \\g /dev/null" % tenant,
                   "%s \\g /dev/null" % lit, "ROLLBACK;"]
    pg_bin = os.environ.get("ARBITER_TEST_PG_BIN", "/usr/lib/postgresql/15/bin")
    # notices and \warn both go to stderr, in order
    p = subprocess.run([os.path.join(pg_bin, "psql"), "-X", "-q", superuser_url],
                       input="\n".join(script) + "\n", stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    for line in p.stdout.splitlines():  # the query vector is 768 numbers long
        print(line if len(line) < 200 else line[:200] + " ...")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"load": load, "bodies": bodies, "notok": notok, "explain": explain}[cmd](*args)
