# Stand-in for prom/alertmanager:v0.25.0 where no registry is reachable (`cargo xtask docker
# stand-ins`): Debian 12's Alertmanager 0.25.0 with the parts of the official image's contract the
# stack relies on: /bin/alertmanager, /bin/sh with cat, tr and printf (render.sh), wget (for the
# health check), the user nobody (65534), and /alertmanager owned by it as the data folder and
# volume.
# Required: the Debian base `cargo xtask docker stand-ins` passes (no default that a registry
# could answer for).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

# Packages install without starting their services (as in Debian's own images).
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
    && chmod 0755 /usr/sbin/policy-rc.d \
    && apt-get update \
    && apt-get install --yes --no-install-recommends 'prometheus-alertmanager=0.25.0*' wget \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /usr/bin/prometheus-alertmanager /bin/alertmanager \
    && mkdir -p /alertmanager /etc/alertmanager \
    && chown 65534:65534 /alertmanager

USER 65534:65534
VOLUME /alertmanager
WORKDIR /alertmanager
EXPOSE 9093
ENTRYPOINT ["/bin/alertmanager"]
CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]
