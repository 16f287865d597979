# syntax=docker/dockerfile:1
# `client-sim`: the simulated tenant application (`serve`, port 8080), the verifying SMTP sink
# (`sink`, SMTP 1025 and HTTP 8025) and the setup step (`setup`), one binary.
#
# Build from the repository root:
#   docker build -f deploy/docker/client-sim.Dockerfile -t mail-pressure/client-sim:0.1.0 .
# Needs a Docker engine with BuildKit (see mailproxy.Dockerfile).

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release -p client-sim --locked \
    && install -D -m 0755 target/release/client-sim /out/client-sim

# reqwest uses native-tls: libssl3 and CA certificates at run time.
FROM ${RUNTIME_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 clientsim \
    && useradd --system --uid 10001 --gid 10001 --no-create-home clientsim
COPY --from=build /out/client-sim /usr/local/bin/client-sim
# Containers listen on every interface; the binary's own defaults stay on loopback.
ENV CLIENT_LISTEN=0.0.0.0 \
    PORT=8080 \
    SINK_SMTP_LISTEN=0.0.0.0:1025 \
    SINK_HTTP_LISTEN=0.0.0.0:8025 \
    HEALTHCHECK_URL=http://127.0.0.1:8080/health
EXPOSE 8080 1025 8025
USER 10001:10001
# Probes HEALTHCHECK_URL (the sink: set it to http://127.0.0.1:8025/health); no curl needed.
HEALTHCHECK --interval=10s --timeout=6s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/client-sim", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/client-sim"]
CMD ["serve"]
