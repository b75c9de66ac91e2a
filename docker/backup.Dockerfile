# The compose stack's `backup` service: the stack's own PostgreSQL image, whose pg_dump and
# pg_restore have the server's major version, with the released app-web binary (which holds
# the backup commands) copied out of the app-web image. Nothing is compiled here.
#
#     docker build -f docker/backup.Dockerfile --build-arg APP_WEB_IMAGE=app-web:<version> docker
#
# compose.yaml passes the same PostgreSQL image its `postgres` service runs. Where no registry
# is reachable, tests pass a Debian 12 base with postgresql-client-15 instead.
ARG POSTGRES_IMAGE=postgres:15.13-bookworm
# Required: the app-web image to take the binary from (`cargo xtask docker build` prints its tag).
ARG APP_WEB_IMAGE

FROM ${APP_WEB_IMAGE} AS app-web

FROM ${POSTGRES_IMAGE}
ARG POSTGRES_IMAGE
ARG APP_WEB_IMAGE
LABEL org.opencontainers.image.title="app-backup" \
      org.opencontainers.image.description="Encrypted PostgreSQL backups for the app stack (app-web backup)" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="${POSTGRES_IMAGE}" \
      app.web-image="${APP_WEB_IMAGE}"

COPY --from=app-web /usr/local/bin/app-web /usr/local/bin/app-web
# A fresh named volume takes this folder's owner, so the backups are the postgres user's.
RUN mkdir -p /backups && chown postgres:postgres /backups && chmod 0700 /backups

ENV APP_WEB_BACKUP_DIR=/backups \
    APP_WEB_BACKUP_METRICS_LISTEN=0.0.0.0:9187

# The postgres user of Debian's packages and of the official image (uid 999 in both).
USER postgres

# The schedule serves /readyz beside /metrics; app-web's own probe asks it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/app-web", "healthcheck", "--listen", "127.0.0.1:9187"]

ENTRYPOINT ["/usr/local/bin/app-web", "backup"]
CMD ["schedule"]
