#!/usr/bin/env bash
# Throughput and CPU cost of POST /oauth/token (client_credentials, ES256 JWT) on one core.
#
#   bench/token.sh [sqlite|postgres|all] [seconds]
#
# The release server runs with one worker pinned to CPU 0; wrk (1 thread, 10 connections)
# runs pinned to CPU 1. Two cases per backend: a generated secret (SHA-256) and an
# admin-typed secret (argon2id, verified once and then remembered). Prints requests/s,
# latency p50/p99 and the server's CPU time per request (utime+stime from /proc/PID/stat).
# Needs wrk (Debian: apt-get install wrk) and, for postgres, psql and a server at
# $BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test).
set -euo pipefail
cd "$(dirname "$0")/.."

which_backends="${1:-all}"
secs="${2:-15}"
pg_admin="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
command -v wrk >/dev/null || { echo "bench: wrk is not installed (apt-get install wrk)" >&2; exit 1; }

[ -n "${BENCH_BIN:-}" ] || cargo build --release --quiet
bin="${BENCH_BIN:-$PWD/target/release/portcullis}"
work="$(mktemp -d)"
server_pid=""
pg_db=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  [ -n "$pg_db" ] && psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run_case() { # label auth_header
  local label="$1" auth="$2"
  cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "$auth"
LUA
  # Warm-up (also performs the one argon2 verification for a typed secret).
  taskset -c 1 wrk -t1 -c10 -d2s -s "$work/post.lua" "$url/oauth/token" >/dev/null
  local before after out
  before=$(cpu_ticks "$server_pid")
  out=$(taskset -c 1 wrk -t1 -c10 -d"${secs}s" --latency -s "$work/post.lua" "$url/oauth/token")
  after=$(cpu_ticks "$server_pid")
  if grep -q 'Non-2xx' <<<"$out"; then
    echo "bench: $label: some responses were not 200:" >&2; echo "$out" >&2; exit 1
  fi
  local total rps p50 p99 cpu_us
  total=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  cpu_us=$(awk -v t="$((after - before))" -v hz="$ticks" -v n="$total" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')
  printf '| %-8s | %-28s | %8s | %8s | %8s | %8s |\n' "$backend" "$label" "$rps" "$p50" "$p99" "$cpu_us"
}

run_backend() {
  backend="$1"
  local db
  if [ "$backend" = sqlite ]; then
    db="sqlite://$work/bench.db"
  else
    pg_db="portcullis_bench_$$"
    psql "$pg_admin" -qc "CREATE DATABASE $pg_db" >/dev/null
    db="${pg_admin%/*}/$pg_db"
    # PostgreSQL needs the master key given (SQLite makes bench.db.key beside the database).
    PORTCULLIS_MASTER_KEY="$(head -c 32 /dev/urandom | base64)"
    export PORTCULLIS_MASTER_KEY
  fi
  export PORTCULLIS_DATABASE_URL="$db"
  "$bin" migrate >/dev/null
  local created id gen typed
  created=$("$bin" client create --name "bench-$backend" --scope read --output json)
  id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client"]["client_id"])' <<<"$created")
  gen=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])' <<<"$created")
  typed="bench-typed-secret-$$-0123456789"
  printf '%s\n' "$typed" | "$bin" secret add "$id" --description typed --value - >/dev/null

  local port=$((20000 + RANDOM % 20000))
  url="http://127.0.0.1:$port"
  PORTCULLIS_BIND="127.0.0.1:$port" PORTCULLIS_WORKERS=1 PORTCULLIS_LOG_LEVEL=warn \
    taskset -c 0 "$bin" serve >"$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    curl -fs "$url/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fs "$url/healthz" >/dev/null || { echo "bench: server did not start" >&2; cat "$work/server.log" >&2; exit 1; }

  run_case "generated secret (SHA-256)" "Basic $(printf '%s:%s' "$id" "$gen" | base64 -w0)"
  run_case "typed secret (argon2id)" "Basic $(printf '%s:%s' "$id" "$typed" | base64 -w0)"

  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
  if [ -n "$pg_db" ]; then
    psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null; pg_db=""
  fi
}

echo "portcullis $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores, ${secs}s per case, wrk -t1 -c10"
printf '| %-8s | %-28s | %8s | %8s | %8s | %8s |\n' backend case "req/s" p50 p99 "CPU µs/req"
printf '|%s|%s|%s|%s|%s|%s|\n' ---------- ------------------------------ ---------- ---------- ---------- ----------
case "$which_backends" in
  sqlite|postgres) run_backend "$which_backends" ;;
  all) run_backend sqlite; run_backend postgres ;;
  *) echo "usage: bench/token.sh [sqlite|postgres|all] [seconds]" >&2; exit 2 ;;
esac
