# Stand-in for prom/blackbox-exporter:v0.23.0 where no registry is reachable (`cargo xtask docker
# stand-ins`): Debian 12's prometheus-blackbox-exporter with the parts of the official image's
# contract the stack relies on: /bin/blackbox_exporter as the entrypoint, taking the same flags and
# environment variables (--config.file), wget for the health check, and the user nobody (65534).
# Required: the Debian base `cargo xtask docker stand-ins` passes (no default that a registry
# could answer for).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

# Packages install without starting their services (as in Debian's own images).
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
    && chmod 0755 /usr/sbin/policy-rc.d \
    && apt-get update \
    && apt-get install --yes --no-install-recommends 'prometheus-blackbox-exporter=0.23.0*' wget ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /usr/bin/prometheus-blackbox-exporter /bin/blackbox_exporter

USER 65534:65534
EXPOSE 9115
ENTRYPOINT ["/bin/blackbox_exporter"]
