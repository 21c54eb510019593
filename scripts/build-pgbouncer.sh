#!/usr/bin/env bash
# PgBouncer 1.24.1 for the integration tests: KILL_CLIENT (disconnect one client) is new in 1.24, and
# Debian bookworm ships 1.18. This builds the upstream tarball that Debian trixie ships (the Debian
# archive is a registry CI reaches), checksum pinned from trixie's Sources index, into
# ${TMPDIR:-/tmp}/pgrevoke-pgbouncer-1.24.1, world-readable: the tests run PgBouncer as an
# unprivileged user, who cannot reach into root's checkout. Nothing is built when it is there.
# Build needs: gcc, make, pkg-config, libevent-dev, libssl-dev (.ci/run installs them).
set -euo pipefail
VERSION=1.24.1
SHA256=da72a3aba13072876d055a3e58dd4aba4a5de4ed6148e73033185245598fd3e0
URL="http://deb.debian.org/debian/pool/main/p/pgbouncer/pgbouncer_${VERSION}.orig.tar.gz"
dest="${TMPDIR:-/tmp}/pgrevoke-pgbouncer-${VERSION}"
if [ -x "$dest/bin/pgbouncer" ]; then
  echo "$dest/bin/pgbouncer"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
curl -fsSL --retry 3 -o "$work/src.tar.gz" "$URL"
echo "$SHA256  $work/src.tar.gz" | sha256sum -c --quiet
tar -xzf "$work/src.tar.gz" -C "$work"
cd "$work/pgbouncer-${VERSION}"
./configure --prefix="$work/inst" --without-cares --without-systemd >"$work/configure.log" 2>&1 || { tail -20 "$work/configure.log"; exit 1; }
make -j"$(nproc)" >"$work/make.log" 2>&1 || { tail -20 "$work/make.log"; exit 1; }
make install >/dev/null
chmod -R a+rX "$work/inst"
# rename into place last: a half-built directory is never taken for a build
mkdir -p "$(dirname "$dest")"
mv "$work/inst" "$dest.tmp$$" && mv "$dest.tmp$$" "$dest"
echo "$dest/bin/pgbouncer"
