# syntax=docker/dockerfile:1
# `pressure-operator`: runs PressureTest resources; /metrics, /healthz and /readyz on 8080.
#
# Build from the repository root:
#   docker build -f deploy/docker/operator.Dockerfile -t mail-pressure/pressure-operator:0.1.0 .
# Needs a Docker engine with BuildKit (see mailproxy.Dockerfile).

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release -p pressure-operator --locked \
    && install -D -m 0755 target/release/pressure-operator /out/pressure-operator

# kube's openssl-tls feature links libssl3; CA certificates for the API server's TLS.
FROM ${RUNTIME_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 operator \
    && useradd --system --uid 10001 --gid 10001 --no-create-home operator
COPY --from=build /out/pressure-operator /usr/local/bin/pressure-operator
ENV PRESSURE_HTTP_LISTEN=0.0.0.0:8080
EXPOSE 8080
USER 10001:10001
# Kubernetes uses the chart's probes on /healthz and /readyz; docker and compose use this.
HEALTHCHECK --interval=10s --timeout=5s --retries=3 CMD ["pressure-operator", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/pressure-operator"]
