#!/bin/sh
# Runs protoc-c over the given .proto files and writes the generated
# .pb-c.c/.pb-c.h files flat into OUTDIR, with their #include lines
# flattened to match. Meson's custom_target cannot declare outputs in
# subfolders, and flat names keep every consumer's include path simple.
# usage: protoc-c-flat.sh OUTDIR PROTO_ROOT file.proto...
set -eu
outdir=$1; root=$2; shift 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# protoc wants each file spelled under one of its proto paths.
root=$(realpath "$root")
for f in "$@"; do
    f=$(realpath "$f")
    case $f in
    "$root"/*) rel=${f#"$root"/} ;;
    /usr/include/*) rel=${f#/usr/include/} ;;
    *) echo "protoc-c-flat.sh: $f is outside the proto paths" >&2; exit 1 ;;
    esac
    set -- "$@" "$rel"
    shift
done
protoc-c --proto_path="$root" --proto_path=/usr/include --c_out="$tmp" "$@"
find "$tmp" -name '*.pb-c.[ch]' | while read -r f; do
    sed -E 's@^#include "([a-z0-9_]+/)+([a-z0-9_]+\.pb-c\.h)"@#include "\2"@' "$f" \
        > "$outdir/$(basename "$f")"
done
