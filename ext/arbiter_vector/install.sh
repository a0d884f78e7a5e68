#!/bin/sh
# Installs the built arbiter_vector extension into the local PostgreSQL 15
# (module into `pg_config --pkglibdir`, control file and SQL script into
# `pg_config --sharedir`/extension), so that a migration can CREATE
# EXTENSION it. Needs root (CI and scripts/test.sh run as root); without
# root, or without a built module, it says so and changes nothing: the
# migration then uses its plain-SQL functions.
#
#   ext/arbiter_vector/install.sh [BUILD_DIR]     (default: build)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
module=$build/ext/arbiter_vector/arbiter_vector.so
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
[ -x "$PG_CONFIG" ] || PG_CONFIG=pg_config

if [ ! -f "$module" ]; then
    echo "arbiter_vector: not built ($module is missing; install postgresql-server-dev-15);" \
        "the knowledge graph uses its plain-SQL functions" >&2
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "arbiter_vector: not installed (needs root to write into $("$PG_CONFIG" --pkglibdir));" \
        "the knowledge graph uses its plain-SQL functions" >&2
    exit 0
fi
libdir=$("$PG_CONFIG" --pkglibdir)
extdir=$("$PG_CONFIG" --sharedir)/extension
install -m 0755 "$module" "$libdir/arbiter_vector.so"
install -m 0644 "$here/arbiter_vector.control" "$here/arbiter_vector--1.0.sql" "$extdir/"
echo "arbiter_vector: installed into $libdir and $extdir" >&2
