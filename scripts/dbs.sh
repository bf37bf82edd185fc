#!/usr/bin/env bash
# dbs.sh starts one throwaway PostgreSQL server and one MariaDB server on
# free ports of 127.0.0.1, for a whole test run, so that the test processes
# create their databases there instead of each starting its own servers
# (see internal/testdb).
#
#   eval "$(scripts/dbs.sh start [DIR])"
#       Starts both servers with their files under DIR (default: a new
#       temp directory) and prints, on standard output and nothing else,
#       the lines
#           export CUTOVER_POSTGRES_DSN='postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable'
#           export CUTOVER_MYSQL_DSN='root@tcp(127.0.0.1:PORT)/'
#           export CUTOVER_DBS_DIR='DIR'
#       Progress and errors go to standard error. If either server fails
#       to start, whatever was started is stopped and the exit status is 1.
#
#   scripts/dbs.sh stop DIR
#       Stops the servers started in DIR and removes DIR. It is safe to run
#       more than once, and on a DIR whose start failed half way, which
#       makes it suitable for a trap:
#           trap 'scripts/dbs.sh stop "$CUTOVER_DBS_DIR"' EXIT
#
# The servers run with durability off (fsync, doublewrite, log flushes) and
# must only ever hold test data. As root, PostgreSQL runs as the postgres
# OS user, because it refuses to run as root.
set -euo pipefail

say() { printf 'dbs.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
now_ms() { date +%s%3N; }

# run_pg runs a PostgreSQL program, as the postgres user when we are root.
run_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# pg_bindir prints the directory holding initdb, pg_ctl and postgres.
pg_bindir() {
  local p
  if p=$(command -v initdb 2>/dev/null); then
    p=$(dirname "$(readlink -f "$p")")
    if [ -x "$p/pg_ctl" ] && [ -x "$p/postgres" ]; then
      echo "$p"
      return
    fi
  fi
  p=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  [ -n "$p" ] && [ -x "$p/initdb" ] || return 1
  echo "$p"
}

# find_prog prints the path of program $1, looked up on PATH and in the
# other arguments' directories.
find_prog() {
  local name=$1 d
  shift
  if command -v "$name" >/dev/null 2>&1; then
    command -v "$name"
    return
  fi
  for d in "$@"; do
    if [ -x "$d/$name" ]; then
      echo "$d/$name"
      return
    fi
  done
  return 1
}

# free_port prints a port of 127.0.0.1 on which nothing listens now. A
# server can still lose it to another process; start_* retry on failure.
free_port() {
  local port _
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  return 1
}

start_postgres() {
  local dir=$1 bin port attempt t0
  bin=$(pg_bindir) || die "PostgreSQL (initdb, pg_ctl, postgres) not found on PATH or in /usr/lib/postgresql/*/bin"
  mkdir -p "$dir/pg"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$dir/pg"
  fi
  t0=$(now_ms)
  run_pg "$bin/initdb" -D "$dir/pg/data" -U postgres -A trust --no-sync -E UTF8 --locale=C \
    >>"$dir/pg/setup.log" 2>&1 || { tail -n 30 "$dir/pg/setup.log" >&2; die "initdb failed"; }
  for attempt in 1 2 3; do
    port=$(free_port) || die "no free port found"
    if run_pg "$bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/postgres.log" -w -t 30 \
      -o "-p $port -k $dir/pg -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=500 -c wal_level=logical -c max_replication_slots=100 -c max_wal_senders=100" \
      start >>"$dir/pg/setup.log" 2>&1; then
      echo "$port" >"$dir/pg/port"
      say "PostgreSQL ready on 127.0.0.1:$port in $(($(now_ms) - t0)) ms"
      return
    fi
    say "PostgreSQL did not start on port $port (attempt $attempt)"
  done
  tail -n 30 "$dir/pg/postgres.log" >&2 || true
  die "PostgreSQL failed to start"
}

start_mariadb() {
  local dir=$1 mariadbd install port attempt t0 pid _ user=()
  mariadbd=$(find_prog mariadbd /usr/sbin /usr/local/sbin /usr/libexec) ||
    die "mariadbd not found; install MariaDB (Debian: apt-get install mariadb-server; scripts/test.sh does it as root)"
  install=$(find_prog mariadb-install-db /usr/bin /usr/local/bin "$(dirname "$mariadbd")") ||
    die "mariadb-install-db not found; install MariaDB"
  if [ "$(id -u)" -eq 0 ]; then
    user=(--user=root)
  fi
  mkdir -p "$dir/mariadb"
  t0=$(now_ms)
  "$install" --no-defaults --datadir="$dir/mariadb/data" --auth-root-authentication-method=normal \
    --skip-test-db --skip-name-resolve "${user[@]}" >>"$dir/mariadb/setup.log" 2>&1 ||
    { tail -n 30 "$dir/mariadb/setup.log" >&2; die "mariadb-install-db failed"; }
  for attempt in 1 2 3; do
    port=$(free_port) || die "no free port found"
    nohup "$mariadbd" --no-defaults --datadir="$dir/mariadb/data" --port="$port" --bind-address=127.0.0.1 \
      --socket="$dir/mariadb/mariadbd.sock" --pid-file="$dir/mariadb/mariadbd.pid" --tmpdir="$dir/mariadb" \
      --skip-log-bin --skip-name-resolve --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 \
      --innodb-buffer-pool-size=256M --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
      --max-connections=1000 "${user[@]}" </dev/null >>"$dir/mariadb/mariadb.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/mariadb/pid"
    for _ in $(seq 1 1500); do # 30 s
      if ! kill -0 "$pid" 2>/dev/null; then
        break
      fi
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "$port" >"$dir/mariadb/port"
        say "MariaDB ready on 127.0.0.1:$port in $(($(now_ms) - t0)) ms"
        return
      fi
      sleep 0.02
    done
    stop_pid "$pid"
    say "MariaDB did not start on port $port (attempt $attempt)"
  done
  tail -n 30 "$dir/mariadb/mariadb.log" >&2 || true
  die "MariaDB failed to start"
}

# stop_pid sends SIGTERM to pid $1, waits up to 10 s, then sends SIGKILL.
stop_pid() {
  local pid=$1 _
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 500); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.02
  done
  say "pid $pid did not stop in 10 s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

stop_all() {
  local dir=$1 bin pid
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  [ -e "$dir/.cutover-dbs" ] || die "$dir was not made by dbs.sh start; not touching it"
  if [ -f "$dir/pg/data/postmaster.pid" ]; then
    pid=$(head -n 1 "$dir/pg/data/postmaster.pid")
    if bin=$(pg_bindir) && run_pg "$bin/pg_ctl" -D "$dir/pg/data" -m fast -w -t 10 stop >>"$dir/pg/setup.log" 2>&1; then
      :
    else
      stop_pid "$pid"
    fi
  fi
  if [ -f "$dir/mariadb/pid" ]; then
    stop_pid "$(cat "$dir/mariadb/pid")"
  fi
  rm -rf "$dir"
}

case "${1:-}" in
start)
  dir=${2:-}
  if [ -z "$dir" ]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/cutover-dbs-XXXXXX")
  else
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
  fi
  chmod 755 "$dir" # the postgres user must reach $dir/pg
  touch "$dir/.cutover-dbs"
  # shellcheck disable=SC2154 # rc is assigned in the trap itself
  trap 'rc=$?; if [ "$rc" -ne 0 ]; then stop_all "$dir"; fi' EXIT
  start_postgres "$dir"
  start_mariadb "$dir"
  printf "export CUTOVER_POSTGRES_DSN='postgres://postgres@127.0.0.1:%s/postgres?sslmode=disable'\n" "$(cat "$dir/pg/port")"
  printf "export CUTOVER_MYSQL_DSN='root@tcp(127.0.0.1:%s)/'\n" "$(cat "$dir/mariadb/port")"
  printf "export CUTOVER_DBS_DIR='%s'\n" "$dir"
  ;;
stop)
  [ $# -eq 2 ] || die "usage: dbs.sh stop DIR"
  stop_all "$2"
  ;;
*)
  die "usage: eval \"\$(dbs.sh start [DIR])\" | dbs.sh stop DIR"
  ;;
esac
