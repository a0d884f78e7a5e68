#!/bin/sh
# Quick start: installs what is missing, builds, starts a persistent local
# PostgreSQL 15 (data in ./var/pg, created on first run and reused after),
# applies the migrations, and runs arbiterd in the foreground on
# ./arbiterd.sock (or $ARBITER_SOCKET) with a tenant "demo". Ctrl-C stops
# arbiterd and PostgreSQL. Extra arguments go to `arbiterd serve`.
set -eu
cd "$(dirname "$0")/.."
root=$PWD
. scripts/lib.sh

scripts/setup-deps.sh
if [ ! -f build/build.ninja ]; then
    meson_setup build
fi
step var/log/build.ninja.log ninja -C build
ext/arbiter_vector/install.sh build # the knowledge graph's vector functions (root only)

data_dir=$root/var/pg
# As root, PostgreSQL runs as an unprivileged user, which must be able to
# reach the data directory; a checkout under a private home cannot offer
# that, so the cluster then lives in /var/tmp instead.
if [ "$(id -u)" -eq 0 ] && ! runuser -u nobody -- test -x "$root" 2>/dev/null; then
    data_dir=/var/tmp/arbiterd-dev-pg
    echo "run.sh: $root is private to root; keeping the PostgreSQL data in $data_dir"
fi
mkdir -p "$(dirname "$data_dir")"

exec tests/pg/with-postgres.sh --data-dir "$data_dir" --migrate build/src/arbiterd \
    scripts/serve-demo.sh "$@"
