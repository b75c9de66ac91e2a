# Stand-in for postgres:15.13-bookworm where no registry is reachable (`cargo xtask docker
# stand-ins`): Debian 12's PostgreSQL 15 with the parts of the official image's contract the stack
# relies on: the postgres user and group with uid and gid 999, the server's programs on PATH,
# PGDATA=/var/lib/postgresql/data, POSTGRES_USER, POSTGRES_DB, POSTGRES_PASSWORD(_FILE),
# POSTGRES_INITDB_ARGS and /docker-entrypoint-initdb.d on a new data folder
# (postgres-entrypoint.sh).
# Required: the Debian base `cargo xtask docker stand-ins` passes (no default that a registry
# could answer for).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

# The user first, so the packages take its ids; no cluster of Debian's own; packages install
# without starting their services (as in Debian's own images).
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
    && chmod 0755 /usr/sbin/policy-rc.d \
    && groupadd --system --gid 999 postgres \
    && useradd --system --uid 999 --gid 999 --home-dir /var/lib/postgresql --shell /bin/sh postgres \
    && mkdir -p /etc/postgresql-common \
    && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf \
    && apt-get update \
    && apt-get install --yes --no-install-recommends postgresql-15 locales \
    && rm -rf /var/lib/apt/lists/* \
    && localedef -i en_US -c -f UTF-8 -A /usr/share/locale/locale.alias en_US.UTF-8 \
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql /docker-entrypoint-initdb.d \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
    && chmod 0700 /var/lib/postgresql/data

COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh

# The official image's locale, so a data folder it made opens here and text sorts the same.
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data \
    LANG=en_US.utf8
VOLUME /var/lib/postgresql/data
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["sh", "/usr/local/bin/docker-entrypoint.sh"]
CMD ["postgres"]
