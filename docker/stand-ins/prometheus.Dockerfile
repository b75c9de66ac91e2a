# Stand-in for prom/prometheus:v2.42.0 where no registry is reachable (`cargo xtask docker
# stand-ins`): Debian 12's Prometheus 2.42.0 with the parts of the official image's contract the
# stack relies on: /bin/prometheus, /bin/sh and wget (for the health check), the user nobody
# (65534), and /prometheus owned by it as the data folder and volume.
# Required: the Debian base `cargo xtask docker stand-ins` passes (no default that a registry
# could answer for).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

# /bin is /usr/bin, so /bin/prometheus is there. Packages install without starting their
# services (as in Debian's own images).
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
    && chmod 0755 /usr/sbin/policy-rc.d \
    && apt-get update \
    && apt-get install --yes --no-install-recommends 'prometheus=2.42.0*' wget \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /prometheus /etc/prometheus \
    && chown 65534:65534 /prometheus

USER 65534:65534
VOLUME /prometheus
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
