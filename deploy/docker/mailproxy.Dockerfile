# syntax=docker/dockerfile:1
# The mail proxy (`mailproxy`): REST API, sync loop and SMTP dispatch on port 8000.
#
# Build from the repository root (the context must hold the whole workspace):
#   docker build -f deploy/docker/mailproxy.Dockerfile -t mail-pressure/mailproxy:0.1.0 .
# Needs a Docker engine with BuildKit; the project's CI machines have none, so the kind
# workflow (.github/workflows/kind.yml) is where these images are built and exercised.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# The caches keep the crate registry and the target folder between builds on one machine.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release -p mailproxy --locked \
    && install -D -m 0755 target/release/mailproxy /out/mailproxy

# reqwest and lettre use native-tls, so the runtime needs libssl3 and CA certificates:
# debian:bookworm-slim with both, rather than distroless/cc (which has no libssl3).
FROM ${RUNTIME_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 mailproxy \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home mailproxy \
    && install -d -o 10001 -g 10001 -m 0750 /data
COPY --from=build /out/mailproxy /usr/local/bin/mailproxy
# Every interface: the container must be reachable. Without GMP_API_TOKEN the proxy refuses to
# start on 0.0.0.0 (anyone could act as admin); set the token, or GMP_HOST=127.0.0.1, or
# GMP_ALLOW_REMOTE_WITHOUT_TOKEN=true.
ENV GMP_HOST=0.0.0.0 \
    GMP_PORT=8000 \
    GMP_DB_PATH=/data/mail_service.db
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
USER 10001:10001
# `mailproxy healthcheck` GETs http://127.0.0.1:$GMP_PORT/health and exits 0 on 2xx: no curl needed.
HEALTHCHECK --interval=10s --timeout=6s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/mailproxy", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/mailproxy"]
