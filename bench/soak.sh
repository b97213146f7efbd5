#!/usr/bin/env bash
# Hours of load (issue 11 item 8): the release server on PostgreSQL under a mixed load for a
# given time, sampled every 10 s.
#
#   bench/soak.sh [minutes]          (default 30)
#
# Creates a fresh PostgreSQL database (dropped at the end, also on Ctrl-C), registers the
# clients and users with the CLI, starts the release server with one worker pinned to CPU 0
# and the load generator (bench/soak.rs, `cargo run --example soak`) pinned to CPU 1. The load,
# paced at $SOAK_RATE operations/s (default 300) by $SOAK_CONCURRENCY workers (default 32):
# 70% client_credentials, 10% authorization-code flows through the sign-in and consent forms
# (remembered consent; a new browser, hence a sign-in, every 20th flow of a worker), 9%
# refreshes, 1% revocations, 5% introspections, 5% admin JSON API calls (half reads, half
# secrets added and deleted). Token lifetimes are short (access 120 s, refresh 300 s,
# sessions idle 120 s, purge every 10 s) so that purging is exercised within minutes.
#
# Every 10 s one CSV line ($SOAK_OUT/soak.csv, default target/soak/): operations/s, p50 and
# p99 per kind, errors by kind and status, the server's CPU, RSS and open descriptors,
# connections to the soak database (pg_stat_activity) and the row counts of the tables that
# grow. At the end bench/soak_report.py prints the summary and checks the targets (no 5xx, RSS
# and descriptors flat, purged tables bounded; exit 1 when one is missed), and gnuplot draws
# docs/soak.png (bench/soak.gp; the CSV is copied to docs/soak.csv beside it).
#
# Needs psql and a server at $BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test;
# the user must be allowed to create databases), python3, and gnuplot (Debian: gnuplot-nox) for
# the plot.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes="${1:-30}"
pg_admin="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
out="${SOAK_OUT:-$PWD/target/soak}"
for tool in psql python3 curl taskset; do
  command -v "$tool" >/dev/null || { echo "soak: $tool is not installed" >&2; exit 1; }
done

cargo build --release --quiet --bin portcullis --example soak
bin="$PWD/target/release/portcullis"
load="$PWD/target/release/examples/soak"
mkdir -p "$out"
server_pid="" load_pid="" pg_db=""
cleanup() {
  trap - EXIT INT TERM
  [ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null && wait "$load_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  [ -n "$pg_db" ] && psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'echo "soak: interrupted" >&2; cleanup; exit 130' INT TERM

pg_db="portcullis_soak_$$"
psql "$pg_admin" -qc "CREATE DATABASE $pg_db" >/dev/null
db_url="${pg_admin%/*}/$pg_db"
export PORTCULLIS_DATABASE_URL="$db_url"
PORTCULLIS_MASTER_KEY="$(head -c 32 /dev/urandom | base64)"
export PORTCULLIS_MASTER_KEY
export PORTCULLIS_LOG_LEVEL=warn
# Short lifetimes, so that expiry and purging happen many times within the run.
export PORTCULLIS_ACCESS_TOKEN_TTL=120
export PORTCULLIS_REFRESH_TOKEN_TTL=300
export PORTCULLIS_USAGE_FLUSH_SECONDS=10
export PORTCULLIS_SESSION_IDLE_SECONDS=120
export PORTCULLIS_USER_SESSION_IDLE_SECONDS=120

"$bin" migrate >/dev/null
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
created=$("$bin" client create --name soak-service --scope soak:read --output json)
export SOAK_CC_ID SOAK_CC_SECRET
SOAK_CC_ID=$(field '["client"]["client_id"]' <<<"$created")
SOAK_CC_SECRET=$(field '["client_secret"]' <<<"$created")
export SOAK_REDIRECT_URI=https://soak.example/cb SOAK_SCOPE=soak:read
created=$("$bin" client create --name soak-web --scope soak:read --redirect-uri "$SOAK_REDIRECT_URI" \
  --grant-type authorization_code --grant-type refresh_token --output json)
export SOAK_WEB_ID SOAK_WEB_SECRET
SOAK_WEB_ID=$(field '["client"]["client_id"]' <<<"$created")
SOAK_WEB_SECRET=$(field '["client_secret"]' <<<"$created")
created=$("$bin" client create --name soak-admin --scope portcullis:admin --output json)
export SOAK_ADMIN_ID SOAK_ADMIN_SECRET
SOAK_ADMIN_ID=$(field '["client"]["client_id"]' <<<"$created")
SOAK_ADMIN_SECRET=$(field '["client_secret"]' <<<"$created")
created=$("$bin" client create --name soak-scratch --scope soak:read --output json)
export SOAK_SCRATCH_CLIENT
SOAK_SCRATCH_CLIENT=$(field '["client"]["client_id"]' <<<"$created")
export SOAK_USERS="${SOAK_USERS:-20}" SOAK_USER_PREFIX=soak-user- SOAK_PASSWORD=soak-password-0123456789
for i in $(seq 0 $((SOAK_USERS - 1))); do
  printf '%s\n' "$SOAK_PASSWORD" | "$bin" user create --username "$SOAK_USER_PREFIX$i" >/dev/null
done

port=$((20000 + RANDOM % 20000))
export SOAK_URL="http://127.0.0.1:$port"
PORTCULLIS_BIND="127.0.0.1:$port" PORTCULLIS_WORKERS=1 \
  taskset -c 0 "$bin" serve >"$out/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do curl -fs "$SOAK_URL/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "$SOAK_URL/healthz" >/dev/null || { echo "soak: server did not start" >&2; cat "$out/server.log" >&2; exit 1; }

{
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (modified)')"
  echo "started: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "minutes: $minutes"
  echo "rate: ${SOAK_RATE:-300} ops/s, ${SOAK_CONCURRENCY:-32} workers"
  echo "cpu: $(nproc) x $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
  echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "postgres: $(psql "$pg_admin" -XAtc 'SHOW server_version')"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/meta.txt"

export SOAK_SECONDS=$((minutes * 60)) SOAK_CSV="$out/soak.csv" SOAK_SERVER_PID="$server_pid"
export SOAK_PSQL_URL="$db_url" SOAK_REFRESH_TTL="$PORTCULLIS_REFRESH_TOKEN_TTL"
echo "soak: $minutes min against $SOAK_URL (server pid $server_pid, database $pg_db); CSV: $SOAK_CSV" >&2
taskset -c 1 "$load" &
load_pid=$!
wait "$load_pid"
load_pid=""

{
  echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  if kill -0 "$server_pid" 2>/dev/null; then echo "server: alive at the end"; else echo "server: DIED"; fi
  echo "server log lines: $(wc -l <"$out/server.log") ($(grep -c ERROR "$out/server.log" || true) ERROR, $(grep -c WARN "$out/server.log" || true) WARN)"
} >>"$out/meta.txt"
kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
server_pid=""

cat "$out/meta.txt"
status=0
python3 bench/soak_report.py "$out/soak.csv" || status=$?
cp "$out/soak.csv" docs/soak.csv
if command -v gnuplot >/dev/null; then
  gnuplot -e "csv='$out/soak.csv'; png='docs/soak.png'" bench/soak.gp && echo "soak: plot in docs/soak.png"
else
  echo "soak: gnuplot is not installed (apt-get install gnuplot-nox): no plot" >&2
fi
exit "$status"
