#!/bin/bash
# Runs a command as root inside a brand-new minimal Debian 12 root: what a new
# user's machine looks like (debootstrap --variant=minbase bookworm, then
# chroot), holding a clean clone of the commit checked out here.
#
#   scripts/fresh-root.sh CMD...      (as root; CMD runs in /root/project)
#
# The base system is cached as a tarball (ARBITER_FRESH_CACHE, default
# /var/tmp/arbiterd-fresh-bookworm.tar); every run unpacks it anew into a
# temporary directory that is removed afterwards. The host's apt sources,
# CA bundle and npm settings go into the root, so package downloads work
# wherever they work on the host (also through a TLS-inspecting proxy).
# Exit code: the command's.
set -eu
[ $# -gt 0 ] || { echo "usage: fresh-root.sh CMD..." >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "fresh-root.sh: needs root (debootstrap, chroot, mounts)" >&2; exit 2; }
src=$(cd "$(dirname "$0")/.." && pwd)
cache=${ARBITER_FRESH_CACHE:-/var/tmp/arbiterd-fresh-bookworm.tar}

if ! command -v debootstrap >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

if [ ! -f "$cache" ]; then
    tmp=$(mktemp -d /var/tmp/arbiterd-debootstrap.XXXXXX)
    echo "fresh-root: debootstrap bookworm (minbase) from $mirror"
    if ! debootstrap --variant=minbase bookworm "$tmp" "$mirror" >"$tmp.log" 2>&1; then
        echo "fresh-root: debootstrap failed:" >&2
        tail -n 30 "$tmp.log" >&2
        rm -rf "$tmp" "$tmp.log"
        exit 1
    fi
    tar -C "$tmp" -cf "$cache.part" . && mv "$cache.part" "$cache"
    rm -rf "$tmp" "$tmp.log"
fi

root=$(mktemp -d /var/tmp/arbiterd-fresh.XXXXXX)
chmod 755 "$root"
cleanup() {
    for m in dev/shm dev/pts dev proc sys; do
        umount -R -l "$root/$m" 2>/dev/null || true
    done
    # Never delete through a mount that is still there: it would reach the
    # host's /dev or /sys.
    if grep -q " $root/" /proc/mounts; then
        echo "fresh-root: mounts remain under $root; left in place" >&2
    else
        rm -rf "$root"
    fi
}
trap cleanup EXIT
tar -C "$root" -xf "$cache"
# The tarball's "." is debootstrap's mktemp directory (0700): without this,
# no other user (PostgreSQL's) could reach anything in the root.
chmod 755 "$root"

if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
    rm -f "$root/etc/apt/sources.list"
fi
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
[ -f /etc/npmrc ] && cp /etc/npmrc "$root/etc/npmrc"
mkdir -p "$root/etc/fresh-ca"
cp "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$root/etc/fresh-ca/bundle.crt"
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
    cp "$NODE_EXTRA_CA_CERTS" "$root/etc/fresh-ca/node-extra.crt"
else
    cp "$root/etc/fresh-ca/bundle.crt" "$root/etc/fresh-ca/node-extra.crt"
fi

# A clean clone of the commit under test: what is committed, nothing else.
git clone -q --no-hardlinks "$src" "$root/root/project"
git -C "$root/root/project" checkout -q "$(git -C "$src" rev-parse HEAD)"

mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs tmpfs "$root/dev/shm" 2>/dev/null || true

cmd=$(printf '%q ' "$@")
set +e
chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 CI=true \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    SSL_CERT_FILE=/etc/fresh-ca/bundle.crt NODE_EXTRA_CA_CERTS=/etc/fresh-ca/node-extra.crt \
    npm_config_cafile=/etc/fresh-ca/bundle.crt \
    /bin/bash -c "cd /root/project && $cmd"
rc=$?
set -e
exit "$rc"
