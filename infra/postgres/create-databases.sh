#!/usr/bin/env bash
# Runs once on a fresh PostgreSQL volume (docker-entrypoint-initdb.d): one database per service, owned by the app user.
set -euo pipefail
for database in ${CITYBLOCKS_DATABASES}; do
  echo "creating database ${database}"
  psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --dbname postgres \
    -c "CREATE DATABASE \"${database}\" OWNER \"${POSTGRES_USER}\""
done
