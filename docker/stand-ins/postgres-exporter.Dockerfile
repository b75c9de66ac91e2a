# Stand-in for quay.io/prometheuscommunity/postgres-exporter:v0.11.1 where no registry is reachable
# (`cargo xtask docker stand-ins`): Debian 12's prometheus-postgres-exporter with the parts of the
# official image's contract the stack relies on: /bin/postgres_exporter as the entrypoint, taking
# the same flags and environment variables (DATA_SOURCE_URI, DATA_SOURCE_USER,
# DATA_SOURCE_PASS_FILE), wget for the health check, and the user nobody (65534).
# Required: the Debian base `cargo xtask docker stand-ins` passes (no default that a registry
# could answer for).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

# Packages install without starting their services (as in Debian's own images).
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
    && chmod 0755 /usr/sbin/policy-rc.d \
    && apt-get update \
    && apt-get install --yes --no-install-recommends 'prometheus-postgres-exporter=0.11.1*' wget \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /usr/bin/prometheus-postgres-exporter /bin/postgres_exporter

USER 65534:65534
EXPOSE 9187
ENTRYPOINT ["/bin/postgres_exporter"]
