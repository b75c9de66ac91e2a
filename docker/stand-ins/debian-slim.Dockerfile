# Stand-in for the debian:bookworm-<date>-slim base of docker/nginx.Dockerfile where no registry
# is reachable (`cargo xtask docker stand-ins`): the debootstrap minbase system with apt and a
# shell, which refuses to start services while packages install, as Debian's own images do.
ARG BASE_IMAGE=app-base/debian:bookworm-minbase
FROM ${BASE_IMAGE}

RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
    && chmod 0755 /usr/sbin/policy-rc.d

CMD ["bash"]
