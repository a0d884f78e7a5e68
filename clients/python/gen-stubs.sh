#!/bin/sh
# Generates the Python gRPC stubs for every proto into OUTDIR (never
# committed): protoc's python plugin plus Debian's grpc_python_plugin.
# usage: gen-stubs.sh OUTDIR PROTO_ROOT [STAMP]
set -eu
out=$1; root=$2
mkdir -p "$out"
out=$(realpath "$out")
stamp=${3:+$(realpath "$(dirname "$3")")/$(basename "$3")}
cd "$root"
protoc -I. -I/usr/include \
    --python_out="$out" --grpc_python_out="$out" \
    --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" \
    $(find . -name '*.proto' | sed 's@^\./@@' | sort)
if [ -n "$stamp" ]; then touch "$stamp"; fi
