# Stand-in for redis:7.0.15-bookworm where no registry is reachable (`cargo xtask docker
# stand-ins`): Debian 12's Redis 7.0.15 with the parts of the official image's contract the stack
# relies on: the redis user and group with uid and gid 999, redis-server and redis-cli on PATH,
# /usr/local/etc/redis for the configuration, /data owned by redis as the working folder and volume,
# and `sh` for the stack's command.
# Required: the Debian base `cargo xtask docker stand-ins` passes (no default that a registry
# could answer for).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

# Packages install without starting their services (as in Debian's own images).
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
    && chmod 0755 /usr/sbin/policy-rc.d \
    && groupadd --system --gid 999 redis \
    && useradd --system --uid 999 --gid 999 --home-dir /data --shell /usr/sbin/nologin redis \
    && apt-get update \
    && apt-get install --yes --no-install-recommends 'redis-server=5:7.0.15-*' redis-tools \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data /usr/local/etc/redis \
    && chown redis:redis /data

VOLUME /data
WORKDIR /data
EXPOSE 6379
CMD ["redis-server"]
