#!/bin/bash
# Runs a command against a real PostgreSQL 15 cluster that this script starts
# and always stops again.
#
#   tests/pg/with-postgres.sh [--data-dir DIR] [--migrate ARBITERD] [--] CMD [ARGS...]
#
# Default: a throwaway cluster in a fresh temporary directory, removed at exit
# (also on failure, SIGINT and SIGTERM). --data-dir DIR: a persistent cluster
# in DIR (created on first use, reused afterwards); the server is still
# stopped at exit. The server listens on a Unix socket only, in a fresh
# world-accessible temporary directory. As root, initdb and postgres run as
# the unprivileged system user arbiter-pg (created if missing).
#
# Roles: postgres (superuser), arbiter_owner (LOGIN, owns database arbiter),
# arbiter_app (LOGIN, NOSUPERUSER, NOBYPASSRLS, owns nothing).
# --migrate ARBITERD runs `ARBITERD migrate --migrate-database-url <owner>`
# before the command.
#
# The command gets, in its environment:
#   ARBITER_TEST_DATABASE_URL   app role:   host=<dir> port=5432 dbname=arbiter user=arbiter_app
#   ARBITER_TEST_OWNER_URL      owner role
#   ARBITER_TEST_SUPERUSER_URL  superuser
#   ARBITER_TEST_PGDATA         the data directory
#   ARBITER_TEST_PG_BIN         /usr/lib/postgresql/15/bin (or $ARBITER_PG_BIN)
#   ARBITER_TEST_PG_RUNAS       user that pg_ctl must run as, or empty
#   ARBITER_TEST_PG_CTL         helper: `$ARBITER_TEST_PG_CTL stop -m fast`,
#                               `$ARBITER_TEST_PG_CTL start` (runs pg_ctl -D
#                               $PGDATA as the right user, logs to the run's log)
# With --data-dir, also ARBITER_DATABASE_URL and ARBITER_MIGRATE_DATABASE_URL,
# so `with-postgres.sh --data-dir .pgdata --migrate build/src/arbiterd
# build/src/arbiterd serve` needs no further flags.
#
# Exit code: the command's, or 1 when the cluster could not be set up.
set -u

PG_BIN=${ARBITER_PG_BIN:-/usr/lib/postgresql/15/bin}
RUNAS_USER=arbiter-pg
PORT=5432

data_dir=
migrate_bin=
while [ $# -gt 0 ]; do
    case "$1" in
    --data-dir) data_dir=$2; shift 2 ;;
    --data-dir=*) data_dir=${1#--data-dir=}; shift ;;
    --migrate) migrate_bin=$2; shift 2 ;;
    --migrate=*) migrate_bin=${1#--migrate=}; shift ;;
    --) shift; break ;;
    -*) echo "with-postgres.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
    esac
done
if [ $# -eq 0 ]; then
    echo "usage: with-postgres.sh [--data-dir DIR] [--migrate ARBITERD] [--] CMD [ARGS...]" >&2
    exit 2
fi
if [ ! -x "$PG_BIN/postgres" ]; then
    echo "with-postgres.sh: no PostgreSQL binaries in $PG_BIN" >&2
    exit 1
fi

log() { echo "with-postgres.sh: $*" >&2; }

runas=
if [ "$(id -u)" = 0 ]; then
    runas=$RUNAS_USER
    # Parallel test runs may race to create the user: retry, then re-check.
    for _ in 1 2 3 4 5; do
        getent passwd "$runas" >/dev/null && break
        useradd --system --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$runas" 2>/dev/null || sleep 0.2
    done
    if ! getent passwd "$runas" >/dev/null; then
        log "cannot create system user $runas"
        exit 1
    fi
fi

# Runs a command as the cluster's user.
as_pg() {
    if [ -n "$runas" ]; then
        runuser -u "$runas" -- "$@"
    else
        "$@"
    fi
}

run_dir=
pgdata=
child=
started=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ "$started" = 1 ] && [ -f "$pgdata/postmaster.pid" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$pgdata" -m fast -w -t 20 stop >/dev/null 2>&1 ||
            as_pg "$PG_BIN/pg_ctl" -D "$pgdata" -m immediate -w -t 10 stop >/dev/null 2>&1
    fi
    [ -n "$run_dir" ] && rm -rf "$run_dir"
    exit "$rc"
}
on_signal() {
    # Background jobs of a non-interactive shell ignore SIGINT, so forward
    # SIGTERM, wait for the command, then clean up.
    if [ -n "$child" ]; then
        kill -TERM "$child" 2>/dev/null
        wait "$child" 2>/dev/null
    fi
    exit "$1"
}
trap cleanup EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

run_dir=$(mktemp -d "${TMPDIR:-/tmp}/arbiter-pg.XXXXXX") || exit 1
chmod 0755 "$run_dir"
[ -n "$runas" ] && chown "$runas" "$run_dir"
logfile=$run_dir/postgres.log

fresh=1
if [ -n "$data_dir" ]; then
    case "$data_dir" in /*) ;; *) data_dir=$PWD/$data_dir ;; esac
    pgdata=$data_dir
    [ -f "$pgdata/PG_VERSION" ] && fresh=0
else
    pgdata=$run_dir/data
fi

if [ "$fresh" = 1 ]; then
    mkdir -p "$pgdata" && chmod 0700 "$pgdata" || exit 1
    [ -n "$runas" ] && chown "$runas" "$pgdata"
    if [ -n "$runas" ] && ! runuser -u "$runas" -- test -w "$pgdata"; then
        log "user $runas cannot reach $pgdata (a parent directory is not searchable);"
        log "choose a data directory under a path every user can traverse"
        exit 1
    fi
    if ! as_pg "$PG_BIN/initdb" -D "$pgdata" -U postgres --auth=trust --no-sync \
        -E UTF8 --locale=C >"$run_dir/initdb.log" 2>&1; then
        log "initdb failed:"; cat "$run_dir/initdb.log" >&2
        exit 1
    fi
    {
        echo "# arbiterd test cluster (tests/pg/with-postgres.sh)"
        echo "listen_addresses = ''"
        echo "shared_buffers = 16MB"
        echo "max_connections = 100"
        if [ -z "$data_dir" ]; then
            echo "fsync = off"
            echo "synchronous_commit = off"
            echo "full_page_writes = off"
        fi
        echo "include_if_exists = 'arbiter-run.conf'"
    } | as_pg tee -a "$pgdata/postgresql.conf" >/dev/null
fi
# Per run: the socket directory changes every time.
echo "unix_socket_directories = '$run_dir'" | as_pg tee "$pgdata/arbiter-run.conf" >/dev/null

# The helper tests use to stop and start the cluster.
pg_ctl_helper=$run_dir/pg_ctl
cat >"$pg_ctl_helper" <<HELPER
#!/bin/sh
# pg_ctl for the cluster of tests/pg/with-postgres.sh, as the right user.
case "\$1" in start|restart) set -- "\$@" -l "$logfile" ;; esac
if [ -n "$runas" ] && [ "\$(id -u)" = 0 ]; then
    exec runuser -u "$runas" -- "$PG_BIN/pg_ctl" -D "$pgdata" "\$@"
fi
exec "$PG_BIN/pg_ctl" -D "$pgdata" "\$@"
HELPER
chmod 0755 "$pg_ctl_helper"

# A persistent cluster may already be served by another run: never touch it.
if [ -f "$pgdata/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
    log "a PostgreSQL server is already running on $pgdata; stop it first"
    exit 1
fi
started=1
if ! "$pg_ctl_helper" start -w -t 30 >/dev/null; then
    log "PostgreSQL did not start:"; tail -n 30 "$logfile" >&2
    exit 1
fi

conn() { echo "host=$run_dir port=$PORT dbname=$1 user=$2"; }
super_url=$(conn arbiter postgres)
owner_url=$(conn arbiter arbiter_owner)
app_url=$(conn arbiter arbiter_app)

if [ "$fresh" = 1 ]; then
    if ! "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$(conn postgres postgres)" >"$run_dir/setup.log" 2>&1 <<'SQL'
CREATE ROLE arbiter_owner LOGIN NOSUPERUSER NOBYPASSRLS;
CREATE ROLE arbiter_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
CREATE DATABASE arbiter OWNER arbiter_owner;
SQL
    then
        log "creating roles failed:"; cat "$run_dir/setup.log" >&2
        exit 1
    fi
    # PostgreSQL 15 no longer lets everyone create in public; the owner
    # role owns the schema so migrations can create tables there.
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$super_url" \
        -c "ALTER SCHEMA public OWNER TO arbiter_owner" >/dev/null || exit 1
fi

if [ -n "$migrate_bin" ]; then
    if ! "$migrate_bin" migrate --migrate-database-url "$owner_url"; then
        log "migrate failed"
        exit 1
    fi
fi

export ARBITER_TEST_DATABASE_URL=$app_url
export ARBITER_TEST_OWNER_URL=$owner_url
export ARBITER_TEST_SUPERUSER_URL=$super_url
export ARBITER_TEST_PGDATA=$pgdata
export ARBITER_TEST_PG_BIN=$PG_BIN
export ARBITER_TEST_PG_RUNAS=$runas
export ARBITER_TEST_PG_CTL=$pg_ctl_helper
if [ -n "$data_dir" ]; then
    export ARBITER_DATABASE_URL=$app_url
    export ARBITER_MIGRATE_DATABASE_URL=$owner_url
fi

# In the background so that the signal traps run while it is running; an
# explicit stdin redirect keeps the terminal as its input.
"$@" <&0 &
child=$!
wait "$child"
rc=$?
child=
exit "$rc"
