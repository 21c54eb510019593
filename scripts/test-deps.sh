#!/usr/bin/env bash
# What the integration tests need beyond npm (run by `npm test` first, as `pretest`): Debian's
# postgresql-client-15 (pg_basebackup, for the PostgreSQL 14/15 standbys), Debian's pgbouncer (1.18),
# and PgBouncer 1.24.1 (KILL_CLIENT) built from Debian's source by scripts/build-pgbouncer.sh.
# Installs what is missing with apt-get when it can (root); otherwise says what to install. Quick
# when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
[ -x /usr/lib/postgresql/15/bin/pg_basebackup ] || need+=(postgresql-client-15)
command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
built="${TMPDIR:-/tmp}/pgrevoke-pgbouncer-1.24.1/bin/pgbouncer"
if [ ! -x "$built" ]; then
  for tool in curl make gcc pkg-config; do command -v "$tool" >/dev/null || need+=("$tool"); done
  for dev in libevent-dev libssl-dev; do dpkg -s "$dev" >/dev/null 2>&1 || need+=("$dev"); done
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "the integration tests need: ${need[*]} (Debian package names); install them, then run npm test again" >&2
    exit 1
  fi
  echo "test-deps: installing ${need[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null ||
    { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null; }
fi
if [ ! -x "$built" ]; then
  echo "test-deps: building PgBouncer 1.24.1 into $(dirname "$(dirname "$built")")" >&2
  scripts/build-pgbouncer.sh >/dev/null
fi
