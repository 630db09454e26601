#!/usr/bin/env bash
# Starts Debian's PostgreSQL cluster for the audit store's tests and prints
# the DSN they connect with (a database of their own, dropped and made anew).
# Everything but the DSN goes to stderr, so callers can take stdout as is.
set -euo pipefail

# as_postgres runs a command as the cluster's owner: runuser when root (a CI
# container has no sudo), sudo otherwise.
as_postgres() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

version=$(ls /usr/lib/postgresql | sort -n | tail -1)
cluster=main
# The package makes the cluster unless told not to (create_main_cluster =
# false), and a container may have lost its data directory: make it then.
if ! pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c { found = 1 } END { exit !found }'; then
	$SUDO pg_createcluster "$version" "$cluster" >&2
fi
if ! pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c && $4 == "online" { found = 1 } END { exit !found }'; then
	$SUDO pg_ctlcluster "$version" "$cluster" start >&2
fi
# The cluster's port, which is not 5432 when another cluster had it first.
port=$(pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c { print $3 }')

psql_as_postgres() {
	# From / so that psql does not warn it cannot enter the caller's directory.
	(cd / && as_postgres psql -p "$port" -v ON_ERROR_STOP=1 -qAt -c "$1")
}
ready=""
for _ in $(seq 1 30); do
	if psql_as_postgres 'SELECT 1' >/dev/null 2>&1; then
		ready=1
		break
	fi
	sleep 1
done
if [ -z "$ready" ]; then
	echo "postgres.sh: PostgreSQL $version/$cluster on port $port did not accept connections in 30s" >&2
	exit 1
fi

# FORCE: a test run killed midway may have left connections open. The
# role goes last, with every database it owns: the Temporal-on-PostgreSQL
# test makes databases of its own, which a killed run leaves behind.
for db in $(psql_as_postgres "SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE r.rolname = 'gatehouse_test'"); do
	psql_as_postgres "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >&2
done
psql_as_postgres "DROP DATABASE IF EXISTS gatehouse_test WITH (FORCE)" >&2
psql_as_postgres "DROP ROLE IF EXISTS gatehouse_test" >&2
# CREATEDB: that test creates (and drops) its Temporal databases.
psql_as_postgres "CREATE ROLE gatehouse_test LOGIN CREATEDB PASSWORD 'gatehouse_test'" >&2
psql_as_postgres "CREATE DATABASE gatehouse_test OWNER gatehouse_test" >&2
echo "postgres://gatehouse_test:gatehouse_test@127.0.0.1:$port/gatehouse_test?sslmode=disable"
