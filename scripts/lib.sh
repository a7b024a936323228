# Shared helpers for the scripts in this folder. Source it; do not run it.
# shellcheck shell=bash

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LAMIN_HOME="${LAMIN_HOME:-$REPO_ROOT/.lamin}"
PG_MAJOR=15
PG_BINDIR="${PG_BINDIR:-/usr/lib/postgresql/$PG_MAJOR/bin}"
PG_CONFIG="$PG_BINDIR/pg_config"
# Settings read by the scripts that source this file.
# shellcheck disable=SC2034
{
    PGRX_VERSION=0.18.1
    DEFAULT_PORT=28815
    HADOLINT_VERSION=2.15.1
    MOTO_VERSION=5.1.4
    AZURITE_VERSION=3.35.0
    PYARROW_VERSION=21.0.0
    PSYCOPG_VERSION=3.3.9
    ANNDATA_VERSION=0.12.19
    CITUS_VERSION=13.2.2
    TILEDBSOMA_VERSION=2.3.0
    DUCKDB_NPM_VERSION=1.5.6-r.1
}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# psql on the maintenance database of the server the libpq variables name
# (scripts/up and scripts/fill-defaults source .lamin/env first).
psql_admin() { "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d postgres "$@"; }

# Run a command with root rights: directly as root, else through sudo.
as_root() {
    if is_root; then "$@"; else sudo "$@"; fi
}

# Postgres refuses to run as root, so as root we run its programs as the
# unprivileged `postgres` user that Debian's packages create.
pg_os_user() {
    if is_root; then echo postgres; else id -un; fi
}

as_pg_user() {
    if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

# As root, the postgres user must be able to reach a folder inside the checkout
# (which may sit under /root, mode 0700). Grant search (x) on each ancestor that
# lacks it: no listing, no reading, just passing through.
ensure_reachable_by_pg_user() {
    local target=$1 dir
    is_root || return 0
    dir=$target
    while [ "$dir" != "/" ]; do
        dir=$(dirname "$dir")
        if ! runuser -u postgres -- test -x "$dir"; then
            warn "granting other users search (x) permission on $dir so that the postgres user can reach $target"
            chmod o+x "$dir"
        fi
    done
}

# A TCP port on 127.0.0.1 that is free right now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

random_password() {
    python3 -c 'import secrets, string; a=string.ascii_letters+string.digits; print("".join(secrets.choice(a) for _ in range(32)))'
}

# cluster_init DATADIR PWFILE: a new cluster whose superuser `lamin` logs in
# with the password in PWFILE (scram-sha-256 everywhere, never trust).
cluster_init() {
    local datadir=$1 pwfile=$2
    as_pg_user "$PG_BINDIR/initdb" -D "$datadir" -U lamin --pwfile="$pwfile" \
        --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
}

# cluster_start DATADIR PORT LOGFILE: listen on 127.0.0.1 only, no Unix socket
# (its path would depend on the checkout's location and length). Bulk ontology
# imports write gigabytes: more WAL between checkpoints and a bigger cache.
cluster_start() {
    local datadir=$1 port=$2 logfile=$3
    touch "$logfile"
    if is_root; then chown postgres "$logfile"; fi
    if ! as_pg_user "$PG_BINDIR/pg_ctl" -D "$datadir" -l "$logfile" -w -t 60 \
        -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_wal_size=4GB -c shared_buffers=512MB -c maintenance_work_mem=256MB" start >/dev/null; then
        tail -n 20 "$logfile" >&2 || true
        die "Postgres did not start on 127.0.0.1:$port (log: $logfile)"
    fi
}

cluster_running() {
    as_pg_user "$PG_BINDIR/pg_ctl" -D "$1" status >/dev/null 2>&1
}

# cluster_stop DATADIR MODE (smart|fast|immediate)
cluster_stop() {
    if cluster_running "$1"; then
        as_pg_user "$PG_BINDIR/pg_ctl" -D "$1" -m "$2" -w -t 60 stop >/dev/null
    fi
}

# install_file SRC DEST: install SRC as DEST (mode 0644, through sudo when
# not root) atomically: written beside its old version and renamed over it,
# so a running server's backends keep the library they mapped (overwriting
# it in place made them crash) and new sessions load the new one whole. The
# copy's name is this process's own: two installs at once (two scripts/up in
# parallel tests) shared one name, and one's mv took the other's file before
# `install` had made it readable, leaving lamin.so mode 0600, unreadable to
# Postgres.
install_file() {
    as_root install -m 0644 "$1" "$2.lamin-new.$$"
    as_root mv -f "$2.lamin-new.$$" "$2"
}

# install_extension release|debug: build the extension and install it into the
# system Postgres, each file through install_file.
install_extension() {
    local flags=(--pg-config "$PG_CONFIG") staging file dest
    [ "$1" = release ] || flags+=(--debug)
    staging=$(mktemp -d -t lamin-package-XXXXXX)
    (cd "$REPO_ROOT/extension" && cargo pgrx package "${flags[@]}" --out-dir "$staging") || { rm -rf "$staging"; return 1; }
    while IFS= read -r file; do
        dest=/${file#"$staging"/}
        as_root install -d "$(dirname "$dest")"
        install_file "$file" "$dest"
    done < <(find "$staging" -type f)
    rm -rf "$staging"
    install_frozen_scripts
}

# The release this checkout builds: the workspace version in Cargo.toml.
workspace_version() {
    sed -n 's/^version = "\(.*\)"/\1/p' "$REPO_ROOT/Cargo.toml" | head -n 1
}

# The frozen install scripts of earlier releases (extension/sql/lamin--X.sql).
# cargo pgrx install generates the current release's script and copies the
# upgrade scripts (lamin--A--B.sql), not these; with them `CREATE EXTENSION
# lamin VERSION 'X'` installs release X exactly as its users got it (the
# upgrade test starts there).
install_frozen_scripts() {
    local extdir current script name
    extdir="$("$PG_CONFIG" --sharedir)/extension"
    current=$(workspace_version)
    for script in "$REPO_ROOT"/extension/sql/lamin--*.sql; do
        name=$(basename "$script")
        case "$name" in
            lamin--*--*) continue ;;              # upgrade scripts: pgrx copies them
            "lamin--$current.sql") continue ;;    # the current release: pgrx generates it
        esac
        install_file "$script" "$extdir/$name"
    done
}

# install_tiledb: the TileDB C library the sidecar reads TileDB-SOMA
# experiments with, taken from the pinned tiledbsoma wheel (which ships it,
# self-contained) into target/tools/tiledb, once. Prints its path, the value
# for LAMIN_TILEDB_LIBRARY.
install_tiledb() {
    local dir="$REPO_ROOT/target/tools/tiledb" lib
    lib=$(find "$dir/lib" -name 'libtiledb-*.so.*' 2>/dev/null | head -n 1 || true)
    if [ -z "$lib" ] || [ "$(cat "$dir/version" 2>/dev/null)" != "$TILEDBSOMA_VERSION" ]; then
        rm -rf "$dir"
        python3 -m venv "$dir/venv"
        "$dir/venv/bin/pip" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
            -d "$dir/wheel" "tiledbsoma==$TILEDBSOMA_VERSION" >&2
        unzip -q -o "$dir"/wheel/tiledbsoma-*.whl 'tiledbsoma.libs/libtiledb-*' -d "$dir/unpacked"
        mkdir -p "$dir/lib"
        mv "$dir"/unpacked/tiledbsoma.libs/libtiledb-* "$dir/lib/"
        rm -rf "$dir/venv" "$dir/wheel" "$dir/unpacked"
        echo "$TILEDBSOMA_VERSION" >"$dir/version"
        lib=$(find "$dir/lib" -name 'libtiledb-*.so.*' | head -n 1)
    fi
    [ -n "$lib" ] || die "no libtiledb in the tiledbsoma $TILEDBSOMA_VERSION wheel"
    echo "$lib"
}

# install_duckdb: the DuckDB C library the sidecar reads .duckdb files with,
# from the pinned npm package of DuckDB's Node bindings (which ships
# libduckdb.so, self-contained) into target/tools/duckdb, once. Prints its
# path, the value for LAMIN_DUCKDB_LIBRARY (x86-64 Linux: the package's only build).
install_duckdb() {
    local dir="$REPO_ROOT/target/tools/duckdb"
    if [ ! -f "$dir/lib/libduckdb.so" ] || [ "$(cat "$dir/version" 2>/dev/null)" != "$DUCKDB_NPM_VERSION" ]; then
        rm -rf "$dir"
        mkdir -p "$dir/lib"
        (cd "$dir" && npm pack --silent "@duckdb/node-bindings-linux-x64@$DUCKDB_NPM_VERSION" >/dev/null)
        tar xzf "$dir"/duckdb-node-bindings-linux-x64-*.tgz -C "$dir" package/libduckdb.so
        mv "$dir/package/libduckdb.so" "$dir/lib/"
        rm -rf "$dir/package" "$dir"/*.tgz
        echo "$DUCKDB_NPM_VERSION" >"$dir/version"
    fi
    [ -f "$dir/lib/libduckdb.so" ] || die "no libduckdb.so from npm's @duckdb/node-bindings-linux-x64@$DUCKDB_NPM_VERSION"
    echo "$dir/lib/libduckdb.so"
}

# install_citus: build Citus (the last release line for Postgres 15; AGPL-3.0)
# from its vendored source and install it into the system Postgres, once: a
# library of that version already installed is kept. The source tarball is
# $LAMIN_CITUS_TARBALL, else the vendor folder beside the checkout
# (../shared/vendor, with Debian 15.20's compatibility patch applied).
install_citus() {
    local lib control tarball build
    lib="$("$PG_CONFIG" --pkglibdir)/citus.so"
    control="$("$PG_CONFIG" --sharedir)/extension/citus.control"
    # (grep -c, not -q: -q stops reading early, strings gets SIGPIPE, and
    # pipefail would call the check failed.)
    if [ -f "$lib" ] && [ -f "$control" ] && strings "$lib" | grep -cx "$CITUS_VERSION" >/dev/null; then
        return 0
    fi
    tarball="${LAMIN_CITUS_TARBALL:-$REPO_ROOT/../shared/vendor/citus-$CITUS_VERSION.tar.gz}"
    [ -f "$tarball" ] || die "the Citus $CITUS_VERSION source is not at $tarball: set LAMIN_CITUS_TARBALL to citus-$CITUS_VERSION.tar.gz (github.com/citusdata/citus, tag v$CITUS_VERSION, with the Debian 15.20 patch of ../shared/vendor)"
    log "building Citus $CITUS_VERSION from $tarball (about 4 minutes)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q liblz4-dev libzstd-dev libkrb5-dev >/dev/null
    build="$REPO_ROOT/target/tools/citus-build"
    rm -rf "$build/citus-$CITUS_VERSION"
    mkdir -p "$build"
    tar xzf "$tarball" -C "$build"
    (cd "$build/citus-$CITUS_VERSION" && ./configure --without-libcurl PG_CONFIG="$PG_CONFIG" >"$build/configure.log" &&
        make -j"$(nproc)" >"$build/make.log" 2>&1) || die "Citus did not build: see $build/configure.log and $build/make.log"
    as_root make -C "$build/citus-$CITUS_VERSION" install >"$build/install.log" 2>&1 || die "Citus did not install: see $build/install.log"
}
