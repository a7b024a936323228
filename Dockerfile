# syntax=docker/dockerfile:1
# lamin for Postgres: Postgres 15 with the lamin extension, plus the sidecar.
#   docker build -t lamin .
#   docker run -d --name lamin-db -e POSTGRES_PASSWORD=... -p 5432:5432 lamin
#   docker run -d --name lamin-sidecar --network container:lamin-db \
#       -e DATABASE_URL=postgresql://postgres:...@127.0.0.1:5432/lamin lamin lamin daemon
# Keep the versions below in step with scripts/lib.sh (PG_MAJOR, PGRX_VERSION,
# TILEDBSOMA_VERSION, DUCKDB_NPM_VERSION).

ARG PG_MAJOR=15
ARG PGRX_VERSION=0.18.1
ARG TILEDBSOMA_VERSION=2.3.0
ARG DUCKDB_NPM_VERSION=1.5.6-r.1

# The TileDB and DuckDB C libraries the sidecar loads to read TileDB-SOMA
# experiments and .duckdb files: taken, as scripts/lib.sh does, from the
# tiledbsoma wheel and DuckDB's npm package, which ship them self-contained.
FROM python:3.11-slim-bookworm AS format-libraries
ARG TILEDBSOMA_VERSION
ARG DUCKDB_NPM_VERSION
WORKDIR /libs
RUN pip download --no-cache-dir --quiet --no-deps --only-binary=:all: -d /wheel "tiledbsoma==${TILEDBSOMA_VERSION}" \
    && python -c "import glob, shutil, zipfile; z = zipfile.ZipFile(glob.glob('/wheel/*.whl')[0]); n = [m for m in z.namelist() if m.startswith('tiledbsoma.libs/libtiledb-')][0]; shutil.copyfileobj(z.open(n), open('/libs/libtiledb.so', 'wb'))" \
    && python -c "import io, sys, tarfile, urllib.request; v = sys.argv[1]; t = tarfile.open(fileobj=io.BytesIO(urllib.request.urlopen(f'https://registry.npmjs.org/@duckdb/node-bindings-linux-x64/-/node-bindings-linux-x64-{v}.tgz').read())); open('/libs/libduckdb.so', 'wb').write(t.extractfile('package/libduckdb.so').read())" "${DUCKDB_NPM_VERSION}" \
    && rm -rf /wheel

FROM rust:1.95-bookworm AS build
ARG PG_MAJOR
ARG PGRX_VERSION
# Debian's point releases move package versions; the major version is pinned by name.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        "postgresql-${PG_MAJOR}" "postgresql-server-dev-${PG_MAJOR}" libclang-dev clang pkg-config libhdf5-dev \
    && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-pgrx --version "${PGRX_VERSION}" --locked \
    && cargo pgrx init "--pg${PG_MAJOR}" "/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config"
WORKDIR /src
COPY . .
RUN cargo build --release -p lamin-sidecar
# `cargo pgrx package` lays the extension out under target/release/lamin-pgNN/.
WORKDIR /src/extension
RUN cargo pgrx package --pg-config "/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config"

FROM postgres:${PG_MAJOR}-bookworm
ARG PG_MAJOR
# The sidecar reads AnnData .h5ad files with the HDF5 library.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libhdf5-103-1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/lamin-pg${PG_MAJOR}/usr/share/postgresql/ /usr/share/postgresql/
COPY --from=build /src/target/release/lamin-pg${PG_MAJOR}/usr/lib/postgresql/ /usr/lib/postgresql/
COPY --from=build /src/target/release/lamin /usr/local/bin/lamin
COPY --from=format-libraries /libs/ /usr/local/lib/lamin/
ENV LAMIN_TILEDB_LIBRARY=/usr/local/lib/lamin/libtiledb.so \
    LAMIN_DUCKDB_LIBRARY=/usr/local/lib/lamin/libduckdb.so
COPY docker/initdb-lamin.sql /docker-entrypoint-initdb.d/10-lamin.sql
RUN install -d -o postgres -g postgres /var/lib/lamin/storage
ENV POSTGRES_DB=lamin
# The default entry point runs Postgres; `lamin daemon` (with DATABASE_URL set)
# runs the sidecar from the same image: the official entry point execs any
# command that is not `postgres`.
EXPOSE 5432
