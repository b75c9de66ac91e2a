#!/bin/sh
# Runs once, when the official postgres image initialises an empty data volume (it runs every
# script in /docker-entrypoint-initdb.d): creates the role app-web connects as and the database
# it owns. The password is read from the secret file, so it never appears in the environment,
# a process list or this script. Time limits are set on the role, so they also hold for
# connections through PgBouncer, which cannot pass them as startup options.
set -eu

password_file="${APP_DB_PASSWORD_FILE:-/run/secrets/app_db_password}"
password="$(cat "$password_file")"

psql --no-psqlrc --set=ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    --set=password="$password" <<'SQL'
CREATE ROLE app LOGIN PASSWORD :'password';
ALTER ROLE app SET statement_timeout = '5s';
ALTER ROLE app SET idle_in_transaction_session_timeout = '30s';
CREATE DATABASE app OWNER app;
\connect app
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
SQL
