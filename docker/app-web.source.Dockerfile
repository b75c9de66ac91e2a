# app-web built from source, for people who build images without xtask. From the workspace
# root:
#
#     DOCKER_BUILDKIT=1 docker build -f docker/app-web.source.Dockerfile -t app-web:dev .
#
# Released images come from app-web.Dockerfile instead, around the binary `cargo xtask dist`
# built. BuildKit cache mounts keep cargo's registry and target folder from one build to the
# next, so after a change to the source only the workspace's own crates compile again and the
# dependencies stay built. The toolchain is the one rust-toolchain.toml pins (a tidy test
# keeps the two equal), so rustup in the image has nothing to download.
ARG RUST_IMAGE=rust:1.95.0-bookworm
ARG BASE_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,id=app-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=app-target,target=/src/target \
    cargo build --release --locked --package app-web \
    && cp target/release/app-web /usr/local/bin/app-web \
    && mkdir -p /state/crashes

FROM ${BASE_IMAGE}
COPY --from=build /usr/local/bin/app-web /usr/local/bin/app-web
COPY --from=build --chown=65532:65532 /state/ /var/lib/app-web/
USER 65532:65532
ENV APP_WEB_LISTEN=0.0.0.0:8080 \
    APP_WEB_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/app-web", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/app-web"]
CMD ["serve"]
