# sluice as a container: `docker build -t sluice .` then
#   docker run --rm -p 3456:3456 sluice                      # the mock
#   docker run --rm -p 3456:3456 -e SLUICE_UPSTREAM=https://api.anthropic.com sluice   # proxy
# The config is read from /etc/sluice/sluice.toml (SLUICE_CONFIG); mount your
# own over it: -v "$PWD/my.toml:/etc/sluice/sluice.toml:ro". Environment
# variables (FIRST_TOKEN_DELAY, ERROR_RATE, ...) override it.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# make builds jemalloc, sluice's allocator (the slim image has gcc but not make).
RUN apt-get update && apt-get install -y --no-install-recommends make && rm -rf /var/lib/apt/lists/*
COPY Cargo.toml Cargo.lock ./
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
# The admin listener (metrics, config, reload, faults) is on 127.0.0.1:9090 in
# the container; publish it with -e SLUICE_ADMIN_LISTEN=0.0.0.0:9090 -p 9090:9090
# (and set [admin] token if anything else can reach it).
EXPOSE 9090
# `sluice health` GETs /health on the configured port (the image has no curl).
HEALTHCHECK --interval=10s --timeout=3s --start-period=3s --retries=3 CMD ["sluice", "health"]
# No subcommand: the mock, or proxy mode when an upstream is configured
# (SLUICE_UPSTREAM or [upstream] url).
ENTRYPOINT ["sluice"]
