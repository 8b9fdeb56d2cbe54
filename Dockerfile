# steward as a container's init: PID 1, reaping orphans, exiting with `exit_with`'s code.
#
#   docker build -t steward .
#   docker run --rm -p 7070:7070 -e STEWARD_TOKEN=change-me \
#     -v "$PWD/deploy/docker/config:/etc/steward:ro" steward
#
# Not built in steward's CI (no Docker engine there): CI lints this file with hadolint.
# See docs/OPERATIONS.md.

# --- build: a release binary from the locked dependencies ---------------------------------
# The toolchain steward is developed and tested with (rustc 1.95).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin steward \
 && install -D -m 0755 target/release/steward /out/steward \
 && strip /out/steward

# --- runtime: a slim Debian with steward and curl (for HEALTHCHECK) -------------------------
FROM debian:bookworm-slim
# Versions float with the Debian point release on purpose: security fixes come with a rebuild.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/steward --create-home steward
COPY --from=build /out/steward /usr/local/bin/steward

# The config comes from a volume (a ConfigMap on Kubernetes); state (pid files, cloned
# sources, install markers) goes where `settings.state_dir` says, e.g. /var/lib/steward.
VOLUME ["/etc/steward"]
WORKDIR /var/lib/steward
USER 10001:10001
ENV STEWARD_LOG=info
EXPOSE 7070

# docker stop sends this to PID 1 (steward), which stops every service within
# `shutdown_timeout`; give `docker stop -t` more than that.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:7070/health/live"]

# steward itself is PID 1 (no tini in between: it reaps orphans and forwards nothing).
# A non-loopback listen address requires the bearer token: pass STEWARD_TOKEN.
ENTRYPOINT ["/usr/local/bin/steward", "up", "--config", "/etc/steward"]
CMD ["--listen", "0.0.0.0:7070", "--token-env", "STEWARD_TOKEN", "--log-format", "json"]
