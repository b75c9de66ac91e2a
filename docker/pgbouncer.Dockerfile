# PgBouncer from Debian 13's package (1.24), which tracks prepared statements in transaction
# mode (max_prepared_statements); Debian 12's 1.18 does not, and sqlx needs it. The config is
# mounted from pgbouncer/pgbouncer.ini, the user list from a secret.
ARG BASE_IMAGE=debian:trixie-20251117-slim
FROM ${BASE_IMAGE}

RUN apt-get update \
    && apt-get install --yes --no-install-recommends 'pgbouncer=1.24.*' postgresql-client \
    && rm -rf /var/lib/apt/lists/*

USER postgres
EXPOSE 6432
ENTRYPOINT ["pgbouncer"]
CMD ["/etc/pgbouncer/pgbouncer.ini"]
