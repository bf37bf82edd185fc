#!/usr/bin/env bash
# test.sh runs the tests of the library's module, of the operator command's
# module, cmd/cutover, and of the proof suites' module, e2e (toxiproxy
# faults, SIGKILL crashes, races, soak), on SQLite, PostgreSQL and MariaDB:
#
#   scripts/test.sh [go test flags...]      e.g. scripts/test.sh -race -count=1
#
# The flags go to every run of go test, so they take flags only, no package
# paths (-run picks tests across the modules).
#
# It needs Go, the PostgreSQL server programs (initdb, pg_ctl, postgres),
# MariaDB (mariadbd, mariadb-install-db) and, for the browser test of the
# status page, Chromium (/usr/bin/chromium, or the program CUTOVER_CHROMIUM
# names). When MariaDB or Chromium is missing and this runs as root, it is
# installed with apt-get first; otherwise the script stops with a message
# saying what to install.
#
# Unless CUTOVER_POSTGRES_DSN and CUTOVER_MYSQL_DSN are both set already,
# it starts one PostgreSQL and one MariaDB server for the whole run with
# scripts/dbs.sh, so that the test processes do not each start their own,
# and stops them when it exits, whether the tests pass, fail or are
# interrupted. The tests of internal/testdb still start servers of their own
# to check that path. Then it runs go test "$@" ./... in the repository's
# root, then in cmd/cutover and then in e2e, on the same servers, and exits
# with the status of the first run that failed (0 if all passed).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'test.sh: %s\n' "$*" >&2; }

have_mariadbd() {
  command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || [ -x /usr/local/sbin/mariadbd ]
}

have_chromium() {
  [ -x "${CUTOVER_CHROMIUM:-/usr/bin/chromium}" ]
}

# apt_install installs the Debian packages named, without letting them
# start system-wide services: the tests start their own servers.
apt_install() {
  local policy=/usr/sbin/policy-rc.d made_policy= status=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
  fi
  { apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; } || status=$?
  if [ -n "$made_policy" ]; then
    rm -f "$policy"
  fi
  return "$status"
}

if ! have_mariadbd; then
  if [ "$(id -u)" -ne 0 ]; then
    say "MariaDB is not installed (no mariadbd) and installing it needs root; install the mariadb-server package (Debian/Ubuntu: sudo apt-get install mariadb-server) or set CUTOVER_MYSQL_DSN"
    exit 1
  fi
  say "installing mariadb-server with apt-get"
  if ! apt_install mariadb-server || ! have_mariadbd; then
    say "apt-get could not install mariadb-server"
    exit 1
  fi
fi

# The browser test of the status page (e2e/statuspage) drives Debian's
# chromium; it fails, never skips, without it.
if ! have_chromium; then
  if [ "$(id -u)" -ne 0 ]; then
    say "Chromium is not installed (no ${CUTOVER_CHROMIUM:-/usr/bin/chromium}) and installing it needs root; install the chromium package (Debian: sudo apt-get install chromium) or name the program in CUTOVER_CHROMIUM"
    exit 1
  fi
  say "installing chromium with apt-get"
  if ! apt_install chromium || ! have_chromium; then
    say "apt-get could not install chromium"
    exit 1
  fi
fi

if [ -z "${CUTOVER_POSTGRES_DSN:-}" ] || [ -z "${CUTOVER_MYSQL_DSN:-}" ]; then
  dbs_dir=$(mktemp -d "${TMPDIR:-/tmp}/cutover-dbs-XXXXXX")
  trap 'scripts/dbs.sh stop "$dbs_dir"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  given_pg=${CUTOVER_POSTGRES_DSN:-}
  given_my=${CUTOVER_MYSQL_DSN:-}
  env_lines=$(scripts/dbs.sh start "$dbs_dir")
  eval "$env_lines"
  # A server named by the caller wins over the one just started.
  if [ -n "$given_pg" ]; then export CUTOVER_POSTGRES_DSN=$given_pg; fi
  if [ -n "$given_my" ]; then export CUTOVER_MYSQL_DSN=$given_my; fi
fi

status=0
say "module github.com/cutover-go/cutover (the library)"
go test "$@" ./... || status=$?
say "module github.com/cutover-go/cutover/cmd/cutover (the operator command)"
cmd_status=0
go -C cmd/cutover test "$@" ./... || cmd_status=$?
say "module github.com/cutover-go/cutover/e2e (the proof suites)"
e2e_status=0
go -C e2e test "$@" ./... || e2e_status=$?
for s in "$cmd_status" "$e2e_status"; do
  if [ "$status" -eq 0 ]; then
    status=$s
  fi
done
exit "$status"
