#!/bin/sh
# Installs what arbiterd needs to build, run and test on Debian 12:
# the C libraries, the build tools, PostgreSQL 15, the gRPC peers used by
# the tests (Python grpcio, Node @grpc/grpc-js) and the benchmark tools.
# Safe to run again: apt and npm skip what is already there.
set -eu
cd "$(dirname "$0")/.."

# libprotobuf-dev ships google/protobuf/*.proto (timestamp, wrappers) that
# proto/ imports; util-linux and mount give runuser, setsid and unshare;
# postgresql-server-dev-15 builds the arbiter_vector extension.
PACKAGES="build-essential pkg-config meson ninja-build git ca-certificates
  libuv1-dev libnghttp2-dev libpq-dev libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev
  libjson-c-dev zlib1g-dev libssl-dev libcriterion-dev
  postgresql-15 postgresql-client-15 postgresql-contrib postgresql-server-dev-15
  python3 python3-grpcio python3-protobuf python3-h2 protobuf-compiler protobuf-compiler-grpc
  nghttp2-client valgrind clang libclang-rt-14-dev util-linux mount passwd"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $p"
done
# Node.js: the machine image ships Node 20 with npm; Debian's own packages
# are only a fallback (mixing them with another nodejs build conflicts).
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup-deps: installing$missing"
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

# Node packages of the Node client and its tests (package-lock.json pins them).
if [ ! -d clients/node/node_modules/@grpc/grpc-js ]; then
    (cd clients/node && npm ci --no-audit --no-fund --loglevel=error)
fi
