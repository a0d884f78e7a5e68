#!/bin/sh
# Writes the SHA-256 of the source file $1 as a C header to $2
# (ARBITER_VECTOR_SOURCE, see arbiter_vector_source() in arbiter_vector.c).
set -eu
hash=$(sha256sum <"$1" | cut -d' ' -f1)
printf '#define ARBITER_VECTOR_SOURCE "%s"\n' "$hash" >"$2"
