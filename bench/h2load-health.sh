#!/bin/sh
# Health/Check throughput and latency of arbiterd with h2load over the Unix
# socket, at the concurrency levels of issue 2 (-c 1 -m 1, -c 4 -m 32,
# -c 64 -m 16).
#
#   bench/h2load-health.sh            builds a release arbiterd in
#                                     $BUILD (default /tmp/arbiterd-bench)
#   ARBITERD=/path/to/arbiterd bench/h2load-health.sh
#
# Environment: N (requests per throughput run, default 1000000; the -c 1
# run uses N/5), LEVELS (default "1:1 4:32 64:16", as clients:streams).
#
# For each level it prints requests/s from a throughput run, then latency
# percentiles from a second, shorter run that logs every request
# (h2load --log-file costs the client a little, so it is kept apart).
# The body is a pre-encoded HealthCheckRequest: the 5-byte gRPC prefix of
# an empty message (00 00000000). h2load sends POST when given -d.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
N=${N:-1000000}
LEVELS=${LEVELS:-"1:1 4:32 64:16"}

if [ -z "${ARBITERD:-}" ]; then
    BUILD=${BUILD:-/tmp/arbiterd-bench}
    if [ ! -f "$BUILD/build.ninja" ]; then
        meson setup "$BUILD" "$src" --buildtype=release -Dtests=false >/dev/null
    fi
    ninja -C "$BUILD" src/arbiterd >/dev/null
    ARBITERD=$BUILD/src/arbiterd
fi
command -v h2load >/dev/null || { echo "h2load not found (apt-get install nghttp2-client)"; exit 1; }

tmp=$(mktemp -d /tmp/arbiterd-bench.XXXXXX)
sock=$tmp/arbiterd.sock
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

printf '\000\000\000\000\000' > "$tmp/body"
# h2load only sees HTTP statuses; the metrics endpoint tells whether every
# call really ended with grpc-status 0.
mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$ARBITERD" serve --socket "$sock" --log-level error --metrics-listen "127.0.0.1:$mport" &
pid=$!
i=0
while [ ! -S "$sock" ]; do
    i=$((i + 1))
    [ $i -gt 100 ] && { echo "arbiterd did not start"; exit 1; }
    sleep 0.05
done

url=http://localhost/grpc.health.v1.Health/Check
run_h2load() { # clients streams requests [extra h2load args]
    c=$1 m=$2 n=$3
    shift 3
    h2load -B "unix:$sock" -c "$c" -m "$m" -n "$n" -d "$tmp/body" \
        -H 'content-type: application/grpc' -H 'te: trailers' "$@" "$url"
}

echo "arbiterd Health/Check via h2load over a Unix socket"
echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min, before the runs)"
echo "h2load:  $(h2load --version | head -1)"
echo "server:  $ARBITERD"
echo
printf '%-14s %12s %9s %9s %9s %9s %9s  %s\n' level "req/s" "p50 us" "p90 us" "p99 us" \
    "p99.9 us" "max us" "failed"
for lv in $LEVELS; do
    c=${lv%%:*}
    m=${lv##*:}
    n=$N
    [ "$c" -eq 1 ] && [ "$m" -eq 1 ] && n=$((N / 5))
    run_h2load "$c" "$m" "$n" > "$tmp/out" 2>&1 || { cat "$tmp/out"; exit 1; }
    rps=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' "$tmp/out")
    failed=$(sed -n 's/^requests: .* \([0-9]*\) failed.*/\1/p' "$tmp/out")
    codes=$(sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' "$tmp/out")
    [ "$codes" = "$n" ] || failed="$failed (only $codes of $n 2xx)"
    # Latency: a quarter as many requests, every one logged (µs).
    rm -f "$tmp/lat"
    run_h2load "$c" "$m" $((n / 4)) --log-file="$tmp/lat" > /dev/null 2>&1
    pct=$(cut -f3 "$tmp/lat" | sort -n | awk '
        { v[NR] = $1 }
        END {
            printf "%9d %9d %9d %9d %9d", v[int(NR*0.50)], v[int(NR*0.90)],
                   v[int(NR*0.99)], v[int(NR*0.999)], v[NR]
        }')
    printf '%-14s %12.0f %s  %s\n' "-c $c -m $m" "$rps" "$pct" "$failed"
done
metrics=$(python3 -c "import urllib.request as u; print(u.urlopen('http://127.0.0.1:$mport/metrics').read().decode())")
ok=$(echo "$metrics" | sed -n 's/^arbiterd_calls_total{code="OK"} //p')
total=$(echo "$metrics" | awk '/^arbiterd_calls_total/ { s += $2 } END { print s }')
echo
echo "server: $ok of $total calls answered grpc-status OK"
echo "command: h2load -B unix:SOCKET -c C -m M -n N -d BODY -H 'content-type: application/grpc'" \
     "-H 'te: trailers' $url"
