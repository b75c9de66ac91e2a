# Stand-in for the debian:bookworm-<date>-slim base of docker/nginx.Dockerfile where no registry
# is reachable (`cargo xtask docker stand-ins`): the debootstrap minbase system with apt and a
# shell, which refuses to start services while packages install, as Debian's own images do.
# Required: the Debian base `cargo xtask docker stand-ins` passes (no default that a registry
# could answer for).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
    && chmod 0755 /usr/sbin/policy-rc.d

CMD ["bash"]
