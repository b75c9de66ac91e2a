# The app-web runtime image: the release binary that `cargo xtask dist` put in the server
# archive, on a distroless base. Build it with `cargo xtask docker build`, which extracts that
# binary (the very bytes that were released) into an otherwise empty build context, checks its
# glibc requirement against the base image, and fills in the labels. Nothing is compiled here;
# to build from source without xtask, use app-web.source.Dockerfile.

# distroless/cc has glibc, libgcc and CA certificates and nothing else: no shell, no package
# manager. Its `nonroot` variant runs as 65532. Where no registry is reachable, build a Debian
# base with `cargo xtask docker base` and pass it here.
ARG BASE_IMAGE=gcr.io/distroless/cc-debian12:nonroot
FROM ${BASE_IMAGE}

ARG BASE_IMAGE
ARG VERSION
ARG REVISION
ARG CREATED
ARG SOURCE
LABEL org.opencontainers.image.title="app-web" \
      org.opencontainers.image.description="The application's web service" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

COPY app-web /usr/local/bin/app-web
# The folder for crash reports and symbols (APP_WEB_CRASH_DIR, a volume in compose), owned by
# the app's user so a fresh named volume starts out writable.
COPY --chown=65532:65532 state/ /var/lib/app-web/

# Numeric, so the user exists whatever the base's /etc/passwd says.
USER 65532:65532

# Inside the container app-web listens on every interface; publish the port on the address
# you want (compose and the tests publish on 127.0.0.1 only).
ENV APP_WEB_LISTEN=0.0.0.0:8080 \
    APP_WEB_LOG_FORMAT=json
EXPOSE 8080

# app-web probes its own /readyz: the image has no shell or curl to do it.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/app-web", "healthcheck"]

# SIGTERM starts a graceful shutdown: readiness turns 503, in-flight requests finish.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/app-web"]
CMD ["serve"]
