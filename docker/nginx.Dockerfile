# nginx for the compose stack: Debian 12's nginx package, which is the nginx (1.22) the tests
# run the configuration on, so what is tested is what ships. The configuration is the
# template in nginx/, rendered at start from NGINX_* variables (nginx/docker-entrypoint.sh).
# Build from the workspace root: docker build -f docker/nginx.Dockerfile .
ARG BASE_IMAGE=debian:bookworm-20251117-slim
FROM ${BASE_IMAGE}

RUN apt-get update \
    && apt-get install --yes --no-install-recommends 'nginx=1.22.*' gettext-base openssl \
    && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/default \
    && mkdir -p /run/nginx /etc/nginx/certs /var/www/acme

COPY nginx/ /etc/app-nginx/

# root: nginx's master reads the private keys certbot writes, which only root may read, and
# hands every request to workers that run as www-data (the template's `user` line). Compose
# keeps only the capabilities that takes: CHOWN, SETUID and SETGID.
USER root
EXPOSE 80 443
STOPSIGNAL SIGQUIT
ENTRYPOINT ["sh", "/etc/app-nginx/docker-entrypoint.sh"]
