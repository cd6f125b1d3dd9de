#!/bin/sh
# The image's entrypoint: refuse to start without secrets, size the web server, then run the command.
set -eu

: "${SECRET_KEY:?SECRET_KEY is not set: refusing to start (32+ random characters, see README)}"
: "${DATABASE_URL:?DATABASE_URL is not set: refusing to start}"
: "${REDIS_URL:?REDIS_URL is not set: refusing to start}"

# uvicorn reads WEB_CONCURRENCY as its default --workers: one web process per core unless the operator says.
WEB_CONCURRENCY="${WEB_CONCURRENCY:-$(nproc)}"
export WEB_CONCURRENCY

# Prometheus multi-process files of this container's processes; stale files from a previous run would be summed.
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    rm -rf "${PROMETHEUS_MULTIPROC_DIR:?}"/*
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
fi

exec "$@"
