#!/bin/sh
# Runs arbiterd against the database in $ARBITER_DATABASE_URL (set by
# tests/pg/with-postgres.sh), makes sure the tenant "demo" exists, and waits
# until arbiterd exits. Used by scripts/run.sh.
set -eu
cd "$(dirname "$0")/.."
export ARBITER_SOCKET="${ARBITER_SOCKET:-$PWD/arbiterd.sock}"

build/src/arbiterd serve "$@" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server; exit 0' INT TERM

# Wait until the server answers, then create the demo tenant (an existing
# one is fine: arbiterctl exits 16 = 10 + ALREADY_EXISTS).
i=0
until build/clients/c/arbiterctl call grpc.health.v1.Health.Check >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 $server 2>/dev/null; then
        echo "serve-demo.sh: arbiterd did not come up" >&2
        exit 1
    fi
    sleep 0.1
done
build/clients/c/arbiterctl call Admin.CreateTenant id=demo name="Demo tenant" >/dev/null 2>&1 || true

cat <<MSG

arbiterd is serving on $ARBITER_SOCKET with tenant "demo". Try, in another shell:
  build/clients/c/arbiterctl --socket $ARBITER_SOCKET --tenant demo call AgentRegistry.RegisterAgent agent.name=a1 agent.capabilities.languages=c
  build/clients/c/arbiterctl --socket $ARBITER_SOCKET --tenant demo call AgentRegistry.ListAgents
Ctrl-C stops arbiterd and PostgreSQL.

MSG
wait $server
