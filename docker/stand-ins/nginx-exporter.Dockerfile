# Stand-in for nginx/nginx-prometheus-exporter:0.11.0 where no registry is reachable (`cargo xtask
# docker stand-ins`): Debian 12's prometheus-nginx-exporter with the parts of the official image's
# contract the stack relies on: /usr/bin/nginx-prometheus-exporter as the entrypoint, taking the
# same flags and environment variables (-nginx.scrape-uri), and the user nobody (65534).
# Required: the Debian base `cargo xtask docker stand-ins` passes (no default that a registry
# could answer for).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

# Packages install without starting their services (as in Debian's own images).
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
    && chmod 0755 /usr/sbin/policy-rc.d \
    && apt-get update \
    && apt-get install --yes --no-install-recommends 'prometheus-nginx-exporter=0.11.0*' \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /usr/bin/prometheus-nginx-exporter /usr/bin/nginx-prometheus-exporter

USER 65534:65534
EXPOSE 9113
ENTRYPOINT ["/usr/bin/nginx-prometheus-exporter"]
