#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs the real peers the tests
# talk to (Pebble, BIND 9, Knot, PowerDNS, moto, PostgreSQL) and the API contract tools
# (schemathesis, openapi-python-client) when they are missing, makes sure PostgreSQL
# answers on 127.0.0.1:5432, then runs `cargo test --workspace`.
#
# Extra arguments go to `cargo test` (for example `scripts/test.sh -p acmeport-domain`).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"

log() { printf '==> %s\n' "$*"; }

apt_packages=()
command -v pebble >/dev/null || apt_packages+=(pebble)
command -v named >/dev/null || apt_packages+=(bind9)
command -v dig >/dev/null || apt_packages+=(bind9-dnsutils)
# nsupdate (bind9-dnsutils) is also what the exec provider's test script runs.
command -v nsupdate >/dev/null || apt_packages+=(bind9-dnsutils)
# RFC 2136 interop beside BIND, and the PowerDNS HTTP API on a real pdns_server.
command -v knotd >/dev/null || apt_packages+=(knot)
command -v kdig >/dev/null || apt_packages+=(knot-dnsutils)
command -v pdns_server >/dev/null || apt_packages+=(pdns-server)
[ -f /usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql ] || apt_packages+=(pdns-backend-sqlite3)
command -v sqlite3 >/dev/null || apt_packages+=(sqlite3)
command -v pg_isready >/dev/null || apt_packages+=(postgresql postgresql-client)
# The README's quick start and curl session are run by tests.
command -v curl >/dev/null || apt_packages+=(curl)
command -v jq >/dev/null || apt_packages+=(jq)
if ((${#apt_packages[@]})); then
  log "installing ${apt_packages[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

if ! command -v moto_server >/dev/null; then
  log "installing moto[server]"
  python3 -m pip install -q 'moto[server]'
fi

# The API contract test (tests/e2e/contract.rs) runs schemathesis against the binary and
# generates a Python client from the OpenAPI document; pinned, as their output is part
# of the test.
SCHEMATHESIS_VERSION=4.32.5
OPENAPI_PYTHON_CLIENT_VERSION=0.29.1
# grep reads all of pip's output (no -q): with pipefail, an early exit would fail pip on SIGPIPE.
installed() { python3 -m pip show "$1" 2>/dev/null | grep -x "Version: $2" >/dev/null; }
if ! installed schemathesis "$SCHEMATHESIS_VERSION" ||
  ! installed openapi-python-client "$OPENAPI_PYTHON_CLIENT_VERSION"; then
  log "installing schemathesis $SCHEMATHESIS_VERSION, openapi-python-client $OPENAPI_PYTHON_CLIENT_VERSION"
  python3 -m pip install -q "schemathesis==$SCHEMATHESIS_VERSION" \
    "openapi-python-client==$OPENAPI_PYTHON_CLIENT_VERSION"
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  log "starting PostgreSQL on 127.0.0.1:5432"
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432

export ACMEPORT_TEST_DATABASE_URL="${ACMEPORT_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
log "cargo test --workspace $*"
cargo test --workspace "$@"
