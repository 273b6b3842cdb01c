#!/bin/sh
# Runs once, when the postgres image initialises an empty data volume
# (/docker-entrypoint-initdb.d): one role and one database per service that
# owns tables (the architecture's "no service reads another's"), and
# Keycloak's. Passwords come from the container's environment, which
# docker-compose.yml fills from COMFORT_*_DB_PASSWORD.
set -eu

create() {
  name=$1 password=$2
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v name="$name" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'name', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name') \gexec
SQL
}

create data "$COMFORT_DATA_DB_PASSWORD"
create device "$COMFORT_DEVICE_DB_PASSWORD"
create notify "$COMFORT_NOTIFY_DB_PASSWORD"
create keycloak "$COMFORT_KEYCLOAK_DB_PASSWORD"
