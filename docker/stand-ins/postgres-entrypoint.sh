#!/bin/sh
# The PostgreSQL stand-in's entrypoint: what the stack needs of the official image's. Started
# as root, it gives the data folder to postgres and starts again as postgres. On an empty data
# folder it runs initdb with POSTGRES_INITDB_ARGS and the superuser POSTGRES_USER whose password
# is POSTGRES_PASSWORD or the file POSTGRES_PASSWORD_FILE names, lets clients on other hosts in
# with a password, creates POSTGRES_DB, and runs /docker-entrypoint-initdb.d's *.sh (sourced
# unless executable) and *.sql files against a server that listens on its unix socket only.
# Then it runs the command: postgres with the given options.
set -eu

if [ "${1#-}" != "$1" ]; then
    set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
    exec "$@"
fi

: "${PGDATA:=/var/lib/postgresql/data}"
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 0700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups sh "$0" "$@"
fi

# VAR or the file VAR_FILE names, never both.
from_file() {
    name="$1"
    eval "value=\${$name:-}"
    eval "file=\${${name}_FILE:-}"
    if [ -n "$value" ] && [ -n "$file" ]; then
        echo "postgres: set $name or ${name}_FILE, not both" >&2
        exit 1
    fi
    if [ -n "$file" ]; then
        value="$(cat "$file")"
    fi
    eval "$name=\$value"
    unset "${name}_FILE"
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    from_file POSTGRES_PASSWORD
    from_file POSTGRES_USER
    from_file POSTGRES_DB
    user="${POSTGRES_USER:-postgres}"
    database="${POSTGRES_DB:-$user}"
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "postgres: the data folder is empty and no superuser password is set; set POSTGRES_PASSWORD_FILE" >&2
        exit 1
    fi
    # The password reaches initdb through a pipe, never a file or an argument.
    # Word splitting of POSTGRES_INITDB_ARGS is wanted: it holds several options.
    # shellcheck disable=SC2086
    printf '%s\n' "$POSTGRES_PASSWORD" |
        initdb --username="$user" --pwfile=/dev/stdin ${POSTGRES_INITDB_ARGS:-} -D "$PGDATA"
    printf '\n# Added by the entrypoint: clients on other hosts sign in with a password.\nhost all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"

    # The command's options, each quoted for the shell pg_ctl starts the server with.
    options=""
    shift
    for option in "$@"; do
        options="$options '$(printf '%s' "$option" | sed "s/'/'\\\\''/g")'"
    done
    pg_ctl -D "$PGDATA" -w -o "$options -c listen_addresses='' -p 5432" start
    set -- postgres "$@"
    if [ "$database" != postgres ]; then
        psql --no-psqlrc --set=ON_ERROR_STOP=1 --username "$user" --dbname postgres \
            --set=name="$database" <<'SQL'
CREATE DATABASE :"name";
SQL
    fi
    export POSTGRES_USER="$user" POSTGRES_DB="$database"
    for script in /docker-entrypoint-initdb.d/*; do
        case "$script" in
            *.sh)
                echo "postgres: running $script"
                if [ -x "$script" ]; then
                    "$script"
                else
                    # shellcheck disable=SC1090
                    . "$script"
                fi
                ;;
            *.sql)
                echo "postgres: running $script"
                psql --no-psqlrc --set=ON_ERROR_STOP=1 --username "$user" --dbname "$database" --file "$script"
                ;;
            *) ;;
        esac
    done
    unset POSTGRES_PASSWORD
    pg_ctl -D "$PGDATA" -m fast -w stop
    echo "postgres: initialised $PGDATA"
fi

exec "$@"
