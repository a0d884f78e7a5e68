#!/bin/sh
# Guard: src/db/ is the only code that opens PostgreSQL connections (the C
# equivalent of a lint rule banning `new Pool(`). Fails when PQconnect* or
# PQsetdb* appears in any .c/.h outside src/db/, or when clients/ uses libpq
# at all.
#   tests/db/guard-libpq.sh [SOURCE_ROOT]
root=${1:-$(dirname "$0")/../..}
cd "$root" || exit 2
[ -d src/db ] || { echo "guard: $root is not the source root" >&2; exit 2; }

status=0
hits=$(grep -rnE '\bPQ(connect|setdb)[A-Za-z]*' --include='*.c' --include='*.h' \
    --exclude-dir=.git --exclude-dir=node_modules --exclude-dir='build*' . |
    grep -v '^\./src/db/')
if [ -n "$hits" ]; then
    echo "guard: PostgreSQL connections may only be opened in src/db/:" >&2
    echo "$hits" >&2
    status=1
fi
hits=$(grep -rnE 'libpq-fe\.h|\bPQ[a-z][A-Za-z]*\(' clients \
    --exclude-dir=node_modules 2>/dev/null)
if [ -n "$hits" ]; then
    echo "guard: clients/ talks to arbiterd, never to PostgreSQL:" >&2
    echo "$hits" >&2
    status=1
fi
[ "$status" = 0 ] && echo "guard: ok (libpq connections only in src/db/)"
exit "$status"
