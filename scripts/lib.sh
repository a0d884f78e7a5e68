# Sourced by the scripts in scripts/: helpers they share.

# step LOG CMD [ARGS...]: runs CMD with its output in LOG, quietly; when it
# fails, says which command failed and prints the tail of LOG, so a failing
# setup or build step is never silent (issue 7: a missing .proto include
# stopped `meson setup` with exit 1 and nothing on screen).
step() {
    _log=$1
    shift
    mkdir -p "$(dirname "$_log")"
    if "$@" >"$_log" 2>&1; then
        return 0
    else
        _rc=$?
    fi
    echo "$(basename "$0"): '$*' failed (exit $_rc); the end of $_log:" >&2
    tail -n 40 "$_log" >&2
    return "$_rc"
}

# meson_setup DIR [OPTIONS...]: configures build directory DIR (again, when it
# exists) with OPTIONS, through step().
meson_setup() {
    _dir=$1
    shift
    if [ -f "$_dir/build.ninja" ]; then
        step "var/log/$_dir.setup.log" meson configure "$_dir" "$@"
    else
        step "var/log/$_dir.setup.log" meson setup "$_dir" "$@"
    fi
}
