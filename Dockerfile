# sluice as a container: `docker build -t sluice .` then
#   docker run --rm -p 3456:3456 sluice                      # the mock
#   docker run --rm -p 3456:3456 -e SLUICE_UPSTREAM=https://api.anthropic.com sluice   # proxy
# The config is read from /etc/sluice/sluice.toml (SLUICE_CONFIG); mount a
# folder holding your sluice.toml over /etc/sluice, not the single file, so
# edits on the host reach sluice: -v "$PWD/conf:/etc/sluice:ro"
# (docs/live-control.md). Environment variables (FIRST_TOKEN_DELAY,
# ERROR_RATE, ...) override it.
# scripts/image-test.sh builds this image and runs its checks.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# make builds jemalloc, sluice's allocator (the slim image has gcc but not make).
RUN apt-get update && apt-get install -y --no-install-recommends make && rm -rf /var/lib/apt/lists/*
# The image's binary has no line tables or symbols: about 8 MB instead of 54.
ENV CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=symbols
# The dependencies first, in a layer of their own (a stand-in crate with the
# same Cargo.toml and Cargo.lock), so that a change in src/ rebuilds sluice
# alone.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' >src/main.rs && touch src/lib.rs \
    && cargo build --release --locked && rm -rf src target/release/sluice* target/release/deps/sluice-* target/release/deps/libsluice-* target/release/.fingerprint/sluice-*
COPY src ./src
# The same build command CI runs (scripts/test.sh).
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin sluice
COPY --from=build /src/target/release/sluice /usr/local/bin/sluice
COPY config/sluice.toml /etc/sluice/sluice.toml
ENV SLUICE_CONFIG=/etc/sluice/sluice.toml
USER sluice
EXPOSE 3456
# The admin listener (metrics, config, reload, faults) stays on the
# container's 127.0.0.1:9090, so it is not exposed. Publish it with
# -e SLUICE_ADMIN_LISTEN=0.0.0.0:9090 -p 9090:9090 (and set [admin] token if
# anything else can reach it).
# `sluice health` GETs /__sluice/health on sluice's port: the configured one,
# or the --listen that sluice (PID 1) was started with. The image has no curl.
# Podman keeps HEALTHCHECK only with `podman build --format docker`.
HEALTHCHECK --interval=10s --timeout=3s --start-period=3s --retries=3 CMD ["sluice", "health"]
# No subcommand: the mock, or proxy mode when an upstream is configured
# (SLUICE_UPSTREAM or [upstream] url). shutdown_grace (8 s by default) stays
# below `docker stop`'s 10 s, so open streams get their farewell event and
# sluice exits 0 before Docker would kill it.
ENTRYPOINT ["sluice"]
