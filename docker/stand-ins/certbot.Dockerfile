# Stand-in for certbot/certbot:v2.11.0 where no registry is reachable (`cargo xtask docker
# stand-ins`): Debian 12's certbot, which is 2.1.0, older than the pinned image but with every
# option nginx/certbot/cli.ini and run.sh use (webroot, ECDSA keys, deploy hooks). The parts of the
# official image's contract the stack relies on: certbot and /bin/sh with the usual tools (run.sh,
# the deploy hook, certificate-link.sh), root as the user, and /etc/letsencrypt and
# /var/lib/letsencrypt as volumes.
# Required: the Debian base `cargo xtask docker stand-ins` passes (no default that a registry
# could answer for).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

# Packages install without starting their services (as in Debian's own images).
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
    && chmod 0755 /usr/sbin/policy-rc.d \
    && apt-get update \
    && apt-get install --yes --no-install-recommends 'certbot=2.1.*' ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /etc/letsencrypt /var/lib/letsencrypt

VOLUME /etc/letsencrypt /var/lib/letsencrypt
EXPOSE 80 443
ENTRYPOINT ["certbot"]
