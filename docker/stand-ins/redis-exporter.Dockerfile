# Stand-in for oliver006/redis_exporter:v1.45.0-alpine where no registry is reachable (`cargo xtask
# docker stand-ins`): Debian 12's prometheus-redis-exporter with the parts of the official image's
# contract the stack relies on: /redis_exporter as the entrypoint, taking the same flags and
# environment variables (REDIS_ADDR, REDIS_PASSWORD_FILE), wget for the health check, and the user
# nobody (65534).
# Required: the Debian base `cargo xtask docker stand-ins` passes (no default that a registry
# could answer for).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

# Packages install without starting their services (as in Debian's own images).
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
    && chmod 0755 /usr/sbin/policy-rc.d \
    && apt-get update \
    && apt-get install --yes --no-install-recommends 'prometheus-redis-exporter=1.45.0*' wget \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /usr/bin/prometheus-redis-exporter /redis_exporter

USER 65534:65534
EXPOSE 9121
ENTRYPOINT ["/redis_exporter"]
