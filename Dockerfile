# syntax=docker/dockerfile:1
# lamin for Postgres: Postgres 15 with the lamin extension, plus the sidecar.
#   docker build -t lamin .
#   docker run -d --name lamin-db -e POSTGRES_PASSWORD=... -p 5432:5432 lamin
#   docker run -d --name lamin-sidecar --network container:lamin-db \
#       -e DATABASE_URL=postgresql://postgres:...@127.0.0.1:5432/lamin lamin lamin daemon
# Keep the versions below in step with scripts/lib.sh (PG_MAJOR, PGRX_VERSION).

ARG PG_MAJOR=15
ARG PGRX_VERSION=0.18.1

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
COPY docker/initdb-lamin.sql /docker-entrypoint-initdb.d/10-lamin.sql
RUN install -d -o postgres -g postgres /var/lib/lamin/storage
ENV POSTGRES_DB=lamin
# The default entry point runs Postgres; `lamin daemon` (with DATABASE_URL set)
# runs the sidecar from the same image: the official entry point execs any
# command that is not `postgres`.
EXPOSE 5432
