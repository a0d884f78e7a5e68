#!/bin/sh
# Runs the Node client's tests (node --test) against the real arbiterd.
# usage: run-node-tests.sh CLIENTS_NODE_DIR
# Installs the npm dependencies from package-lock.json when they are missing
# (needs the npm registry); exits 77 (SKIP) when that is impossible.
set -eu
dir=$1
cd "$dir"
if [ ! -d node_modules/@grpc/grpc-js ] || [ ! -d node_modules/@grpc/proto-loader ]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "SKIP: no node_modules and no npm" >&2
        exit 77
    fi
    npm ci --no-audit --no-fund --loglevel=error || {
        echo "SKIP: npm ci failed (no registry?)" >&2
        exit 77
    }
fi
exec node --test test/
