#!/bin/sh
# Runs once, when the official postgres image initialises an empty data volume, after
# 10-app-role.sh: creates the role the monitoring profile's postgres-exporter connects as.
# pg_monitor lets it read statistics and settings and nothing else; three connections are more
# than one exporter needs. The password is read from the secret file, as for the app role.
set -eu

password_file="${MONITOR_DB_PASSWORD_FILE:-/run/secrets/monitor_db_password}"
password="$(cat "$password_file")"

psql --no-psqlrc --set=ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    --set=password="$password" <<'SQL'
CREATE ROLE monitor LOGIN PASSWORD :'password' CONNECTION LIMIT 3 IN ROLE pg_monitor;
ALTER ROLE monitor SET statement_timeout = '10s';
SQL
